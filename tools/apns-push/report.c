/* apns-push: what the user sees. One JSON line per notification (stdout or --results), a progress line on stderr
 * rewritten in place, and a summary at the end: counts by status and reason, tokens to delete, rate and latency
 * percentiles from a fixed-size histogram (a million sends cost no more memory than ten).
 *
 * Result lines are formatted by bulk.c into one buffer and leave it in large write(2)s. A failed write (EPIPE: the
 * reader went away) is remembered, not fatal: the caller asks push_report_write_error and stops cleanly. Anything
 * on stderr that may hold outside bytes (a server's reason, a line's text) goes through bulk_escape_text. */
#include "push.h"

#include "bulk.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_KINDS 64 /* distinct (status, reason) pairs kept apart; the rest are counted as "other" */

typedef struct kind {
  int status; /* 0: no response, reason is the error's name */
  char reason[64];
  uint64_t count;
} kind;

#define OUT_CAP (256 * 1024)   /* results buffered before a write */
#define OUT_FLUSH (192 * 1024) /* written once this much is buffered */

struct push_report {
  int out_fd;
  int results; /* 0: results are counted, not written (--dry-run writes its own lines through push_report_write) */
  char *obuf;
  size_t olen, ocap;
  int out_errno;    /* the first failed write of the results, or 0 */
  int stderr_errno; /* the first failed write on stderr, or 0 */
  int progress;
  int tty;
  int drawn; /* a progress line is on the terminal now */
  size_t drawn_len;
  uint64_t last_draw_ns;
  uint64_t t0_ns;
  uint64_t accepted, rejected, failed, bad;
  uint64_t unexpected; /* statuses APNs does not answer with (1xx, 3xx, 2xx but 200, 600+) */
  uint64_t dead;
  unsigned list_dead;
  char **dead_list;
  size_t dead_listed;
  FILE *dead_file;
  kind kinds[MAX_KINDS];
  size_t nkinds;
  uint64_t other_kinds;
  push_hist hist;
};

/* ---- histogram: 32 linear sub-buckets per power of two of microseconds ---- */

static size_t hist_index(uint64_t us) {
  if (us < 32) return (size_t)us;
  int e = 63 - __builtin_clzll(us); /* us in [2^e, 2^(e+1)), e >= 5 */
  size_t sub = (size_t)((us >> (e - 5)) & 31);
  size_t idx = (size_t)(e - 4) * 32 + sub;
  size_t max = sizeof(((push_hist *)0)->buckets) / sizeof(uint64_t) - 1;
  return idx > max ? max : idx;
}

static uint64_t hist_value(size_t idx) {
  if (idx < 32) return idx;
  int e = (int)(idx / 32) + 4;
  uint64_t sub = idx % 32;
  uint64_t lo = (32 + sub) << (e - 5);
  uint64_t width = (uint64_t)1 << (e - 5);
  return lo + width / 2;
}

void push_hist_add(push_hist *h, uint64_t us) {
  h->buckets[hist_index(us)]++;
  h->count++;
}

uint64_t push_hist_quantile(const push_hist *h, double q) {
  if (h->count == 0) return 0;
  uint64_t rank = (uint64_t)ceil(q * (double)h->count);
  if (rank == 0) rank = 1;
  uint64_t seen = 0;
  size_t n = sizeof h->buckets / sizeof h->buckets[0];
  for (size_t i = 0; i < n; i++) {
    seen += h->buckets[i];
    if (seen >= rank) return hist_value(i);
  }
  return hist_value(n - 1);
}

/* ---- results ---- */

push_report *push_report_new(int out_fd, int results, int progress, unsigned list_dead, FILE *dead_file,
                             uint64_t now_ns) {
  push_report *r = calloc(1, sizeof *r);
  if (r == NULL) return NULL;
  r->out_fd = out_fd;
  r->results = results;
  r->ocap = OUT_CAP;
  if ((r->obuf = malloc(r->ocap)) == NULL) {
    free(r);
    return NULL;
  }
  r->progress = progress;
  r->tty = isatty(2);
  r->t0_ns = now_ns;
  r->list_dead = list_dead;
  r->dead_file = dead_file;
  if (list_dead && (r->dead_list = calloc(list_dead, sizeof *r->dead_list)) == NULL) {
    free(r->obuf);
    free(r);
    return NULL;
  }
  return r;
}

void push_report_free(push_report *r) {
  if (r == NULL) return;
  for (size_t i = 0; i < r->dead_listed; i++) free(r->dead_list[i]);
  free(r->dead_list);
  free(r->obuf);
  free(r);
}

/* ---- the results' output ---- */

int push_report_flush(push_report *r) {
  size_t off = 0;
  while (off < r->olen && !r->out_errno && r->out_fd >= 0) {
    ssize_t n = write(r->out_fd, r->obuf + off, r->olen - off);
    if (n > 0) {
      off += (size_t)n;
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      /* A descriptor shared with a non-blocking one (a terminal libuv opened): wait until it takes more. */
      struct pollfd pfd = {r->out_fd, POLLOUT, 0};
      poll(&pfd, 1, -1);
    } else {
      r->out_errno = n < 0 ? errno : EIO;
    }
  }
  r->olen = 0; /* after a failure there is no one to write to: what is left goes */
  return r->out_errno ? -r->out_errno : 0;
}

void push_report_write(push_report *r, const char *s, size_t len) {
  if (r->out_errno || r->out_fd < 0) return;
  if (r->olen + len > r->ocap) {
    push_report_flush(r);
    if (len > r->ocap) { /* bigger than the buffer: straight out */
      size_t keep = r->olen;
      char *saved = r->obuf;
      r->obuf = (char *)s;
      r->olen = len;
      push_report_flush(r);
      r->obuf = saved;
      r->olen = keep;
      return;
    }
  }
  memcpy(r->obuf + r->olen, s, len);
  r->olen += len;
  if (r->olen >= OUT_FLUSH) push_report_flush(r);
}

int push_report_write_error(const push_report *r, int *on_stderr) {
  if (on_stderr) *on_stderr = r->out_errno == 0 && r->stderr_errno != 0;
  return r->out_errno ? r->out_errno : r->stderr_errno;
}

static void check_stderr(push_report *r) {
  if (!r->stderr_errno && ferror(stderr)) r->stderr_errno = errno ? errno : EIO;
}

static void count_kind(push_report *r, int status, const char *reason) {
  if (reason == NULL) reason = "";
  for (size_t i = 0; i < r->nkinds; i++) {
    if (r->kinds[i].status == status && strcmp(r->kinds[i].reason, reason) == 0) {
      r->kinds[i].count++;
      return;
    }
  }
  if (r->nkinds == MAX_KINDS) {
    r->other_kinds++;
    return;
  }
  kind *k = &r->kinds[r->nkinds++];
  k->status = status;
  snprintf(k->reason, sizeof k->reason, "%s", reason);
  k->count = 1;
}

static void clear_progress(push_report *r) {
  if (!r->drawn) return;
  if (r->tty)
    fputs("\r\033[K", stderr);
  else
    fputc('\n', stderr);
  r->drawn = 0;
}

void push_report_stderr(push_report *r, const char *fmt, ...) {
  char text[2048], safe[4096];
  va_list ap;
  clear_progress(r);
  va_start(ap, fmt);
  int n = vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  /* The message may carry a server's bytes: no control character reaches the terminal or the log. */
  bulk_escape_text(safe, sizeof safe, text, (size_t)n < sizeof text ? (size_t)n : sizeof text - 1);
  fprintf(stderr, "apns-push: %s\n", safe);
  check_stderr(r);
}

void push_report_result(push_report *r, const push_result *x) {
  const apns_response *res = x->res;
  int status = x->err == 0 && res ? res->status : 0;
  const char *reason = status && res->reason_text ? res->reason_text : NULL;
  if (!r->results || r->out_errno) goto count; /* --dry-run, or no one reads: counted, not written */
  bulk_result br;
  br.line = x->line;
  br.token = x->token;
  br.apns_id = res ? res->apns_id : NULL;
  br.status = status;
  br.reason = reason;
  br.timestamp_ms = status && res->timestamp_ms ? res->timestamp_ms : 0;
  br.attempts = res ? res->attempts : 0;
  br.latency_ms = x->latency_ms;
  br.error = NULL;
  br.message = NULL;
  br.channel = x->channel;
  br.request_id = x->channel ? apns_response_header(res, "apns-request-id") : NULL;
  br.unique_id = x->channel ? apns_response_header(res, "apns-unique-id") : NULL;
  if (x->err != 0 || x->bad_line) {
    int err = x->err ? x->err : APNS_EINVAL;
    br.error = apns_err_name(err);
    br.message = x->message ? x->message : apns_strerror(err);
  }
  size_t room = r->ocap - r->olen;
  size_t n = bulk_result_format(&br, r->obuf + r->olen, room);
  if (n >= room) {
    /* Did not fit: flush, and grow the buffer for a line longer than it (a server's very long reason). */
    push_report_flush(r);
    if (r->out_errno) goto count;
    if (n + 1 > r->ocap) {
      char *nb = realloc(r->obuf, n + 1);
      if (nb == NULL) {
        r->out_errno = ENOMEM;
        goto count;
      }
      r->obuf = nb;
      r->ocap = n + 1;
    }
    n = bulk_result_format(&br, r->obuf, r->ocap);
  }
  r->olen += n;
  if (r->olen >= OUT_FLUSH) push_report_flush(r);

count:
  if (x->latency_ms >= 0) push_hist_add(&r->hist, (uint64_t)(x->latency_ms * 1000.0 + 0.5));
  if (x->bad_line) {
    r->bad++;
    count_kind(r, 0, "bad line");
  } else if (x->err != 0) {
    r->failed++;
    count_kind(r, 0, apns_err_name(x->err));
  } else if (status == 200) {
    r->accepted++;
    count_kind(r, 200, "");
  } else if (status < 400 || status > 599) {
    /* 1xx, 3xx, other 2xx: not an answer APNs gives. Neither accepted nor a rejection: told apart. */
    r->unexpected++;
    count_kind(r, status, reason);
  } else {
    r->rejected++;
    count_kind(r, status, reason);
    if (apns_reason_is_token_dead(res->reason) && x->token) {
      r->dead++;
      if (r->dead_listed < r->list_dead) r->dead_list[r->dead_listed++] = strdup(x->token);
      if (r->dead_file) fprintf(r->dead_file, "%s\n", x->token);
    }
  }
}

uint64_t push_report_done(const push_report *r) {
  return r->accepted + r->rejected + r->failed + r->bad + r->unexpected;
}

int push_report_exit_code(const push_report *r) {
  if (r->rejected || r->failed || r->bad || r->unexpected || r->accepted == 0) return PUSH_EXIT_FAILED;
  return PUSH_EXIT_OK;
}

static void fmt_duration(char *buf, size_t len, double s) {
  if (s < 0 || s > 1e7) {
    snprintf(buf, len, "?");
    return;
  }
  unsigned long t = (unsigned long)(s + 0.5);
  if (t >= 3600)
    snprintf(buf, len, "%lu:%02lu:%02lu", t / 3600, t / 60 % 60, t % 60);
  else
    snprintf(buf, len, "%lu:%02lu", t / 60, t % 60);
}

void push_report_progress(push_report *r, uint64_t now_ns, uint64_t lines_read, int total_known, uint64_t bytes,
                          int64_t size, int final) {
  char line[256], total[48], eta[32];
  if (!r->progress) return;
  if (!final && r->drawn && now_ns - r->last_draw_ns < 200000000ull) return;
  r->last_draw_ns = now_ns;
  uint64_t done = push_report_done(r);
  double elapsed = (double)(now_ns - r->t0_ns) / 1e9;
  double rate = elapsed > 0 ? (double)done / elapsed : 0;
  double est = -1;
  if (total_known) {
    est = (double)lines_read;
    snprintf(total, sizeof total, "%llu", (unsigned long long)lines_read);
  } else if (size > 0 && bytes > 0) {
    est = (double)lines_read * (double)size / (double)bytes;
    snprintf(total, sizeof total, "~%.0f", est);
  } else {
    snprintf(total, sizeof total, "?");
  }
  if (est > 0 && rate > 0)
    fmt_duration(eta, sizeof eta, est > (double)done ? (est - (double)done) / rate : 0);
  else
    snprintf(eta, sizeof eta, "?");
  int n = snprintf(line, sizeof line, "%llu/%s done, %.0f/s, %llu accepted, %llu rejected, %llu failed, ETA %s",
                   (unsigned long long)done, total, rate, (unsigned long long)r->accepted,
                   (unsigned long long)r->rejected, (unsigned long long)(r->failed + r->bad), eta);
  if (n < 0) return;
  size_t len = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
  if (r->tty) {
    fprintf(stderr, "\r%s\033[K", line);
  } else {
    /* Not a terminal (a log file): the same \r rewriting, padded over a longer previous line. */
    fprintf(stderr, "\r%s%*s", line, r->drawn_len > len ? (int)(r->drawn_len - len) : 0, "");
  }
  r->drawn_len = len;
  r->drawn = 1;
  if (final) {
    fputc('\n', stderr);
    r->drawn = 0;
  }
  fflush(stderr);
  check_stderr(r);
}

static int kind_cmp(const void *a, const void *b) {
  const kind *x = a, *y = b;
  /* Responses by status, then the failures (status 0) last. */
  int sx = x->status ? x->status : 1000, sy = y->status ? y->status : 1000;
  if (sx != sy) return sx < sy ? -1 : 1;
  return strcmp(x->reason, y->reason);
}

void push_report_summary(push_report *r, uint64_t now_ns, const char *note) {
  uint64_t done = push_report_done(r);
  double elapsed = (double)(now_ns - r->t0_ns) / 1e9;
  clear_progress(r);
  fprintf(stderr,
          "apns-push: %llu notifications in %.2f s (%.0f/s): %llu accepted, %llu rejected, %llu failed, "
          "%llu bad lines\n",
          (unsigned long long)done, elapsed, elapsed > 0 ? (double)done / elapsed : 0.0,
          (unsigned long long)r->accepted, (unsigned long long)r->rejected, (unsigned long long)r->failed,
          (unsigned long long)r->bad);
  if (r->unexpected)
    fprintf(stderr,
            "  %llu answers with a status APNs does not give (1xx, 3xx, ...): neither accepted nor rejected\n",
            (unsigned long long)r->unexpected);
  qsort(r->kinds, r->nkinds, sizeof r->kinds[0], kind_cmp);
  for (size_t i = 0; i < r->nkinds; i++) {
    const kind *k = &r->kinds[i];
    char label[480], reason[sizeof k->reason * 6];
    bulk_escape_text(reason, sizeof reason, k->reason, strlen(k->reason)); /* a server's text */
    if (k->status)
      snprintf(label, sizeof label, "%d%s%s%s", k->status, reason[0] ? " " : "", reason,
               k->status != 200 && (k->status < 400 || k->status > 599) ? " (unexpected status)" : "");
    else
      snprintf(label, sizeof label, "no response: %s", reason);
    if (strcmp(k->reason, "bad line") == 0) snprintf(label, sizeof label, "bad line");
    fprintf(stderr, "  %-40s %10llu\n", label, (unsigned long long)k->count);
  }
  if (r->other_kinds) fprintf(stderr, "  %-40s %10llu\n", "(other)", (unsigned long long)r->other_kinds);
  if (r->hist.count) {
    fprintf(stderr, "  latency: p50 %.1f ms, p99 %.1f ms\n", (double)push_hist_quantile(&r->hist, 0.5) / 1000.0,
            (double)push_hist_quantile(&r->hist, 0.99) / 1000.0);
  }
  if (r->dead) {
    fprintf(stderr, "  tokens to delete (Unregistered, ExpiredToken, BadDeviceToken, DeviceTokenNotForTopic): %llu\n",
            (unsigned long long)r->dead);
    for (size_t i = 0; i < r->dead_listed; i++) fprintf(stderr, "    %s\n", r->dead_list[i] ? r->dead_list[i] : "?");
    if (r->dead > r->dead_listed)
      fprintf(stderr, "    ... and %llu more (all of them: --dead-tokens FILE, or the result lines)\n",
              (unsigned long long)(r->dead - r->dead_listed));
  }
  if (note) fprintf(stderr, "apns-push: %s\n", note);
  fflush(stderr);
  check_stderr(r);
}
