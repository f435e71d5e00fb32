/* apns-push: send one notification, or a stream of them, and say what became of each.
 *
 * Everything runs on one libuv loop: the client (a pool of HTTP/2 connections), the bulk input (read in chunks,
 * paused while the client's queue is full and resumed at its low-water mark), a timer for the progress line. Each
 * non-blank input line ends in exactly one result line: a response, a failure, or the reason it was not sent. */
#include "push.h"

#include "bulk.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PUSH_MAX_BAD_SHOWN 1000 /* bad lines told on stderr one by one; the result lines have them all */
#define PUSH_TICK_MS 250        /* progress redraw, and the back-pressure safety net */
/* Lines taken in one go before the loop gets a turn: it then writes what was posted and reads the answers. Without
 * it, a refill of thousands of lines held the loop for tens of milliseconds with streams left idle. */
#define PUSH_BURST 256

typedef struct app app;

/* A notification handed to the pool, until its answer. Records are reused from free lists (one for the usual
 * 64-digit tokens, one for longer ones): a bulk run makes no allocation of its own per line, and the tens of
 * thousands in flight stay small (they are touched again at each answer, long after: cache misses). */
#define PENDING_SMALL 64
#define PENDING_BIG (APNS_CHANNEL_ID_MAX > APNS_DEVICE_TOKEN_MAX ? APNS_CHANNEL_ID_MAX : APNS_DEVICE_TOKEN_MAX)
typedef struct pending {
  app *a;
  struct pending *next_free;
  uint64_t line;
  uint64_t t0_ns;
  int big;
  int channel;  /* a broadcast: token holds the channel id */
  char token[]; /* PENDING_SMALL + 1 bytes, or PENDING_BIG + 1 when big */
} pending;

struct app {
  uv_loop_t loop;
  push_opts o;
  int out_fd; /* stdout or --results */
  FILE *dead;
  push_report *rep;
  apns_notification *n; /* the payload of the command line (flags or PAYLOAD_JSON), or NULL */
  apns_client *client;
  push_input *in;
  uv_timer_t tick;
  uv_timer_t resume;
  uv_signal_t sigint, sigterm;
  int timers_open;
  int interrupted; /* 1: stop reading and let what was sent finish; 2: cancel it too */
  int ever_up;     /* a connection has been ready at least once */
  int unreachable; /* gave up: no connection could be made */
  uint64_t start_ns;
  uint64_t lines;    /* non-blank lines taken: each gets one result */
  uint64_t requests; /* --dry-run: requests printed */
  uint64_t outstanding;
  uint64_t bad_shown;
  unsigned burst; /* lines taken since the loop last had a turn */
  int input_done;
  int input_paused;
  int closing;
  int read_error;
  int stopped;
  int output_broken; /* a write of the results (or of stderr) failed: the run stops */
  int output_errno;
  size_t low_water;
  char *scratch; /* bulk_line_parse's, for the longest line */
  size_t scratch_cap;
  pending *free_pending[2];   /* small, big */
  apns_send_request sr_cache; /* the headers of the last line without options of its own */
  int sr_cached, sr_background;
};

/* A pending record for a post of line `line` to name (a device token or a channel id, len bytes), its clock
 * started; NULL when memory runs out. */
static pending *pending_get(app *a, uint64_t line, const char *name, size_t len, int channel) {
  int big = len > PENDING_SMALL;
  pending *p = a->free_pending[big];
  if (p) {
    a->free_pending[big] = p->next_free;
  } else {
    p = malloc(sizeof *p + (big ? PENDING_BIG : PENDING_SMALL) + 1);
    if (p == NULL) return NULL;
    p->big = big;
  }
  p->a = a;
  p->line = line;
  p->t0_ns = uv_hrtime();
  p->channel = channel;
  memcpy(p->token, name, len + 1);
  return p;
}

static void pending_put(app *a, pending *p) {
  p->next_free = a->free_pending[p->big];
  a->free_pending[p->big] = p;
}

static void give_up(app *a);

/* After anything was written: a failed write (EPIPE: the reader of stdout went away) stops the run cleanly, once.
 * Returns 1 when the output is broken. */
static int output_broken(app *a) {
  int on_stderr, e = push_report_write_error(a->rep, &on_stderr);
  if (e == 0) return 0;
  if (!a->output_broken) {
    a->output_broken = 1;
    a->output_errno = e;
    push_report_stderr(a->rep, "%s: %s: stopping; what was sent is canceled",
                       on_stderr ? "writing to stderr" : "writing the results", strerror(e));
  }
  return 1;
}

static void maybe_finish(app *a);

/* ---- results ---- */

static void bad_line_to(app *a, uint64_t lineno, const char *token, const char *channel, int err, const char *why) {
  push_result r;
  memset(&r, 0, sizeof r);
  r.line = lineno;
  r.token = token;
  r.channel = channel;
  r.err = err;
  r.message = why;
  r.bad_line = 1;
  r.latency_ms = -1;
  push_report_result(a->rep, &r);
  if (a->bad_shown < PUSH_MAX_BAD_SHOWN) {
    push_report_stderr(a->rep, "line %llu: %s", (unsigned long long)lineno, why);
  } else if (a->bad_shown == PUSH_MAX_BAD_SHOWN) {
    push_report_stderr(a->rep, "more bad lines are not shown here (the result lines have every one)");
  }
  a->bad_shown++;
}

static void bad_line(app *a, uint64_t lineno, const char *token, int err, const char *why) {
  bad_line_to(a, lineno, token, NULL, err, why);
}

static void on_response(int err, const apns_response *res, void *data) {
  pending *p = data;
  app *a = p->a;
  push_result r;
  memset(&r, 0, sizeof r);
  r.line = p->line;
  r.token = p->channel ? NULL : p->token;
  r.channel = p->channel ? p->token : NULL;
  r.err = err;
  r.res = res;
  r.latency_ms = (double)(uv_hrtime() - p->t0_ns) / 1e6;
  push_report_result(a->rep, &r);
  pending_put(a, p);
  a->outstanding--;
  if (output_broken(a) && !a->closing) give_up(a);
  maybe_finish(a);
}

/* ---- one request ---- */

static int payload_err(int rv) {
  return rv == APNS_EBADJSON || rv == APNS_EBADUTF8 || rv == APNS_EPAYLOADEMPTY || rv == APNS_EPAYLOADTOOLARGE;
}

/* The path and headers of a notification to token, in the caller's **sr or, for a line with none of its own
 * options, in a->sr_cache (*sr then points there), which keeps the headers of the previous such line: only the path
 * differs (the token was checked by the scan with the rule the send uses). Building them is a good part of a line's
 * cost. */
static int send_request(app *a, const char *token, size_t tlen, const bulk_line *bl, int background,
                        const apns_send_options *so, apns_send_request **sr) {
  int plain = bl && !bl->topic && !bl->collapse_id && !bl->apns_id && !bl->has_push_type && !bl->priority &&
              !bl->has_expiration && tlen <= APNS_DEVICE_TOKEN_MAX;
  if (plain && a->sr_cached && a->sr_background == background) {
    *sr = &a->sr_cache;
    memcpy((*sr)->path + 10, token, tlen + 1); /* after "/3/device/" */
    return 0;
  }
  if (plain) *sr = &a->sr_cache, a->sr_cached = 0;
  int rv = apns_build_send_request(a->o.send.topic, token, so, background, *sr, sizeof **sr);
  if (rv == 0 && plain) a->sr_cached = 1, a->sr_background = background;
  return rv;
}

/* --dry-run: the request as a result line, counted as sent. */
static void print_dry_run(app *a, const apns_send_request *sr, const char *body, size_t len) {
  char line[16384], *big = NULL, *p = line;
  size_t k = push_dry_run_line(line, sizeof line, sr, body, len);
  if (k >= sizeof line && (p = big = malloc(k + 1)) != NULL) push_dry_run_line(big, k + 1, sr, body, len);
  if (p) push_report_write(a->rep, p, k);
  free(big);
  a->requests++;
}

/* What a post's return means for its line (token or channel): on its way, wait for room (the line is read again),
 * the client stopped (a fatal answer such as BadCertificate: nothing more can be sent), or refused. Returns
 * PUSH_LINE_*. */
static int posted(app *a, pending *p, int rv, uint64_t lineno, const char *token, const char *channel) {
  if (rv == 0) {
    a->outstanding++;
    return PUSH_LINE_DONE;
  }
  pending_put(a, p);
  if (rv == APNS_EQUEUEFULL) return PUSH_LINE_PAUSE;
  if (rv == APNS_ESTOPPED || rv == APNS_ECLOSED) {
    push_result r;
    memset(&r, 0, sizeof r);
    r.line = lineno;
    r.token = token;
    r.channel = channel;
    r.err = rv;
    r.latency_ms = -1;
    push_report_result(a->rep, &r);
    a->stopped = 1;
    return PUSH_LINE_STOP;
  }
  bad_line_to(a, lineno, token, channel, rv, apns_strerror(rv));
  return output_broken(a) ? PUSH_LINE_STOP : PUSH_LINE_DONE;
}

/* Posts one notification on the pool, its result reported in on_response. Returns PUSH_LINE_*. */
static int post(app *a, uint64_t lineno, const char *token, size_t tlen, const apns_send_request *sr,
                const char *body, size_t len, const apns_send_options *so) {
  pending *p = tlen <= APNS_DEVICE_TOKEN_MAX ? pending_get(a, lineno, token, tlen, 0) : NULL;
  if (p == NULL) {
    bad_line(a, lineno, token, APNS_ENOMEM, "out of memory");
    return output_broken(a) ? PUSH_LINE_STOP : PUSH_LINE_DONE;
  }
  apns_request req = APNS_REQUEST_INIT;
  req.path = sr->path;
  req.headers = sr->headers;
  req.num_headers = sr->num_headers;
  req.body = body;
  req.body_len = len;
  req.timeout_ms = so->timeout_ms ? so->timeout_ms : a->o.apns.timeout_ms;
  return posted(a, p, apns_pool_post(apns_client_pool(a->client), &req, on_response, p), lineno, token, NULL);
}

/* Sends (or, with --dry-run, prints) one notification: the payload of line bl when it has one, else n. What the
 * client's send does, through the pool: the same checks and headers (apns_build_send_request), the payload's
 * bytes as the line has them, already checked by the scan. Returns PUSH_LINE_*. */
static int submit(app *a, uint64_t lineno, const char *token, apns_notification *n, const bulk_line *bl,
                  const apns_send_options *so) {
  char why[256];
  apns_send_request local, *sr = &local;
  const char *body = NULL;
  size_t len = 0, tlen = strlen(token);
  int rv = 0, from_line = bl && bl->payload;
  int background = from_line ? bl->payload_background : apns_notification_is_background(n);
  if (from_line) {
    body = bl->payload;
    len = bl->payload_len;
    if (!bl->payload_checked) { /* a case the scan leaves to the library */
      apns_notification *raw;
      rv = apns_notification_new_raw(&raw, body, len);
      if (rv == 0) background = apns_notification_is_background(raw);
      if (rv == 0) apns_notification_free(raw);
    }
  }
  if (rv == 0) rv = send_request(a, token, tlen, bl, background, so, &sr);
  if (rv == 0 && from_line && len > apns_payload_limit(sr->push_type)) rv = APNS_EPAYLOADTOOLARGE;
  if (rv == 0 && !from_line) rv = apns_notification_serialize(n, apns_payload_limit(sr->push_type), &body, &len);
  if (rv < 0) {
    snprintf(why, sizeof why, "%s%s", from_line && payload_err(rv) ? "payload: " : "", apns_strerror(rv));
    bad_line(a, lineno, token, rv, why);
    return output_broken(a) ? PUSH_LINE_STOP : PUSH_LINE_DONE;
  }
  if (a->o.dry_run) {
    print_dry_run(a, sr, body, len);
    return output_broken(a) ? PUSH_LINE_STOP : PUSH_LINE_DONE;
  }
  return post(a, lineno, token, tlen, sr, body, len, so);
}

/* A bulk line with "channel": a broadcast (apns_client_broadcast_json), the same checks and dry run as --channel.
 * The line's topic is the bundle id; collapse_id and apns_id have no place in a broadcast. Returns PUSH_LINE_*. */
static int submit_broadcast(app *a, uint64_t lineno, const bulk_line *bl) {
  char why[256];
  const char *channel = bl->channel, *body = NULL;
  size_t len = 0;
  int rv = 0;
  if (bl->collapse_id || bl->apns_id) {
    snprintf(why, sizeof why, "\"%s\" does not go with \"channel\"", bl->collapse_id ? "collapse_id" : "apns_id");
    bad_line_to(a, lineno, NULL, channel, APNS_EINVAL, why);
    return output_broken(a) ? PUSH_LINE_STOP : PUSH_LINE_DONE;
  }
  apns_push_type pt = bl->has_push_type ? bl->push_type : a->o.send.push_type;
  if (pt != APNS_PUSH_TYPE_DEFAULT && pt != APNS_PUSH_TYPE_LIVEACTIVITY) rv = APNS_EBADPUSHTYPE;
  apns_broadcast_options bo = APNS_BROADCAST_OPTIONS_INIT;
  bo.priority = bl->priority ? bl->priority : a->o.send.priority;
  bo.expiration = bl->has_expiration ? bl->expiration : a->o.send.has_expiration ? a->o.send.expiration : 0;
  bo.bundle_id = bl->topic;
  bo.timeout_ms = a->o.apns.timeout_ms;
  apns_broadcast_request br;
  if (rv == 0) rv = apns_build_broadcast_request(a->o.send.topic, channel, &bo, &br, sizeof br);
  if (rv == 0 && bl->payload) {
    body = bl->payload;
    len = bl->payload_len;
    if (!bl->payload_checked) {
      apns_notification *raw;
      rv = apns_notification_new_raw(&raw, body, len);
      if (rv == 0) apns_notification_free(raw);
    }
    if (rv == 0 && len > APNS_PAYLOAD_MAX_BROADCAST) rv = APNS_EPAYLOADTOOLARGE;
  } else if (rv == 0) {
    rv = apns_notification_serialize(a->n, APNS_PAYLOAD_MAX_BROADCAST, &body, &len);
  }
  if (rv < 0) {
    snprintf(why, sizeof why, "%s%s", payload_err(rv) ? "payload: " : "", apns_strerror(rv));
    bad_line_to(a, lineno, NULL, channel, rv, why);
    return output_broken(a) ? PUSH_LINE_STOP : PUSH_LINE_DONE;
  }
  if (a->o.dry_run) {
    char line[16384];
    size_t k =
        push_dry_run_request(line, sizeof line, NULL, br.path, br.headers, br.num_headers, "payload", body, len);
    if (k < sizeof line) push_report_write(a->rep, line, k); /* 5120 bytes of payload, escaped headers: fits */
    a->requests++;
    return output_broken(a) ? PUSH_LINE_STOP : PUSH_LINE_DONE;
  }
  size_t clen = strlen(channel);
  pending *p = pending_get(a, lineno, channel, clen, 1);
  if (p == NULL) {
    bad_line_to(a, lineno, NULL, channel, APNS_ENOMEM, "out of memory");
    return output_broken(a) ? PUSH_LINE_STOP : PUSH_LINE_DONE;
  }
  rv = apns_client_broadcast_json(a->client, channel, body, len, &bo, on_response, p);
  return posted(a, p, rv, lineno, NULL, channel);
}

/* ---- bulk input ---- */

static void on_resume(uv_timer_t *t);

static int on_line(void *ctx, const char *text, size_t len, uint64_t lineno, int too_long) {
  app *a = ctx;
  char why[320];
  bulk_line bl;
  if (++a->burst > PUSH_BURST && !a->closing) {
    a->input_paused = 1;
    uv_timer_start(&a->resume, on_resume, 0, 0);
    return PUSH_LINE_PAUSE;
  }
  if (too_long) {
    a->lines++;
    snprintf(why, sizeof why, "longer than %d bytes: skipped", PUSH_MAX_LINE);
    bad_line(a, lineno, NULL, APNS_EINVAL, why);
    return output_broken(a) ? PUSH_LINE_STOP : PUSH_LINE_DONE;
  }
  int rv = bulk_line_parse(text, len, &bl, a->scratch, a->scratch_cap, why, sizeof why);
  if (rv < 0) {
    a->lines++;
    bad_line(a, lineno, NULL, rv, why);
    return output_broken(a) ? PUSH_LINE_STOP : PUSH_LINE_DONE;
  }
  if (bl.payload == NULL && a->n == NULL) {
    a->lines++;
    bad_line_to(a, lineno, bl.token, bl.channel, APNS_EPAYLOADEMPTY,
                "no \"payload\" in the line, and no payload flags (--alert, ...) on the command line");
    return output_broken(a) ? PUSH_LINE_STOP : PUSH_LINE_DONE;
  }
  if (bl.channel) {
    int r = submit_broadcast(a, lineno, &bl);
    if (r != PUSH_LINE_PAUSE) a->lines++;
    if (r == PUSH_LINE_PAUSE) a->input_paused = 1;
    return r;
  }
  /* The command line's defaults with the line's own fields over them. */
  apns_send_options so = a->o.send;
  if (bl.topic) so.topic = bl.topic;
  if (bl.collapse_id) so.collapse_id = bl.collapse_id;
  if (bl.apns_id) so.apns_id = bl.apns_id;
  if (bl.has_push_type) so.push_type = bl.push_type;
  if (bl.priority) so.priority = bl.priority;
  if (bl.has_expiration) so.has_expiration = 1, so.expiration = bl.expiration;
  int r = submit(a, lineno, bl.token, a->n, &bl, &so);
  if (r != PUSH_LINE_PAUSE) a->lines++;
  if (r == PUSH_LINE_PAUSE) a->input_paused = 1;
  return r;
}

static void on_input_end(void *ctx, int err) {
  app *a = ctx;
  if (err < 0) {
    push_report_stderr(a->rep, "reading %s: %s", strcmp(a->o.bulk, "-") == 0 ? "stdin" : a->o.bulk, uv_strerror(err));
    a->read_error = 1;
  }
  a->input_done = 1;
  maybe_finish(a);
}

static void on_resume(uv_timer_t *t) {
  app *a = t->data;
  a->burst = 0;
  if (a->input_paused && !a->input_done && !a->closing) {
    a->input_paused = 0;
    push_input_resume(a->in);
  }
}

static void on_low_water(apns_client *c) {
  app *a = apns_client_data(c);
  /* Not from inside the pool's dispatch: the next loop turn reads on. */
  if (a->input_paused && !a->closing) uv_timer_start(&a->resume, on_resume, 0, 0);
}

static void give_up(app *a);

/* A server that cannot be reached would have every queued notification wait out its whole deadline, batch after
 * batch: a million lines would take hours. So, until a first connection is up: a failure no retry can mend
 * (certificate refused, no h2, name not found) gives up at once; any other gives up once --timeout has passed. */
static int fatal_connect_error(int err) {
  return err == APNS_ECERTVERIFY || err == APNS_EALPN || err == APNS_ETLS || err == APNS_EBADCERT ||
         err == APNS_EBADKEY || err == UV_EAI_NONAME || err == UV_EAI_NODATA || err == UV_EAI_FAIL;
}

static void on_event(apns_pool *pool, const apns_pool_event *ev) {
  app *a = apns_pool_data(pool);
  if (ev->type == APNS_POOL_EVENT_CONN_UP) a->ever_up = 1;
  if (ev->type == APNS_POOL_EVENT_CONN_DOWN && !a->ever_up && !a->unreachable &&
      (fatal_connect_error(ev->err) || uv_hrtime() - a->start_ns >= a->o.apns.timeout_ms * 1000000ULL)) {
    push_report_stderr(a->rep, "cannot connect to the server: %s (%s); giving up",
                       ev->reason && ev->reason[0] ? ev->reason : apns_strerror(ev->err), apns_err_name(ev->err));
    a->unreachable = 1;
    give_up(a);
    return;
  }
  if (ev->type == APNS_POOL_EVENT_CONN_DOWN) {
    push_report_stderr(a->rep, "connection %u: %s (%s)", ev->conn_index,
                       ev->reason && ev->reason[0] ? ev->reason : apns_strerror(ev->err), apns_err_name(ev->err));
  } else if (ev->type == APNS_POOL_EVENT_STOPPED) {
    push_report_stderr(a->rep, "stopped: the server answered %s; nothing more can be sent with this certificate",
                       ev->reason ? ev->reason : "a fatal error");
    a->stopped = 1;
  }
}

static void progress(app *a, int final) {
  if (a->in)
    push_report_progress(a->rep, uv_hrtime(), a->lines, a->input_done, push_input_bytes(a->in),
                         push_input_size(a->in), final);
  else
    push_report_progress(a->rep, uv_hrtime(), a->lines, 1, 0, -1, final);
}

static void on_tick(uv_timer_t *t) {
  app *a = t->data;
  progress(a, 0);
  /* Results reach a file or a pipe at least this often, not only when the buffer fills. */
  push_report_flush(a->rep);
  if (output_broken(a) && !a->closing) {
    give_up(a);
    return;
  }
  /* The safety net of back-pressure: if the low-water signal was missed (requests that expired in the queue
   * without a dispatch), read on once the queue is low. */
  if (a->input_paused && a->client && !a->closing) {
    apns_pool_stats st;
    apns_client_get_stats(a->client, &st, sizeof st);
    if (st.queued <= a->low_water) on_resume(&a->resume);
  }
}

/* ---- the end ---- */

static void on_timer_closed(uv_handle_t *h) {
  (void)h;
}

static void close_timers(app *a) {
  if (!a->timers_open) return;
  a->timers_open = 0;
  uv_close((uv_handle_t *)&a->tick, on_timer_closed);
  uv_close((uv_handle_t *)&a->resume, on_timer_closed);
  uv_close((uv_handle_t *)&a->sigint, on_timer_closed);
  uv_close((uv_handle_t *)&a->sigterm, on_timer_closed);
}

static void on_client_closed(apns_client *c) {
  (void)c;
}

static void maybe_finish(app *a) {
  if (a->closing || !a->input_done || a->outstanding > 0) return;
  a->closing = 1;
  if (a->in) push_input_close(a->in);
  a->in = NULL;
  close_timers(a);
  if (a->client) {
    apns_client_close(a->client, 0, on_client_closed);
    a->client = NULL;
  }
}

/* Stops reading and cancels what was handed to the client: each still gets its result line. */
static void give_up(app *a) {
  if (a->in) push_input_close(a->in);
  a->in = NULL;
  a->input_done = 1;
  a->input_paused = 0;
  if (a->client && !a->closing) {
    a->closing = 1;
    close_timers(a);
    apns_client_close(a->client, 0, on_client_closed);
    a->client = NULL;
  }
}

/* Ctrl-C (or SIGTERM) once: read no more lines, let the notifications already sent get their answers, then the
 * summary. Twice: cancel those too (each still gets its result line, with error APNS_ECANCELED). */
static void on_signal(uv_signal_t *h, int signum) {
  app *a = h->data;
  a->interrupted++;
  if (a->interrupted == 1) {
    push_report_stderr(a->rep, "%s: no more lines are read; waiting for %llu sent (again to cancel them)",
                       signum == SIGINT ? "interrupted" : "terminated", (unsigned long long)a->outstanding);
    if (a->in) push_input_close(a->in);
    a->in = NULL;
    a->input_done = 1;
    a->input_paused = 0;
    maybe_finish(a);
    return;
  }
  if (a->client && !a->closing) {
    push_report_stderr(a->rep, "canceling %llu sent", (unsigned long long)a->outstanding);
    give_up(a);
  }
}

/* ---- setup ---- */

static FILE *open_out(const char *flag, const char *path) {
  FILE *f = fopen(path, "w");
  if (f == NULL) push_err("%s %s: %s", flag, path, strerror(errno));
  return f;
}

/* The flag a request-level error points at, for a single notification. */
static const char *flag_of(int rv) {
  switch (rv) {
  case APNS_EBADTOKEN:
    return "TOKEN";
  case APNS_EBADTOPIC:
    return "--topic";
  case APNS_EBADPRIORITY:
    return "--priority";
  case APNS_EBADPUSHTYPE:
    return "--push-type";
  case APNS_EBADCOLLAPSEID:
    return "--collapse-id";
  case APNS_EBADAPNSID:
    return "--apns-id";
  case APNS_EINVAL:
    return "--expiration";
  default:
    return "payload";
  }
}

/* Checks a single notification before anything connects: a mistake there is a usage error. */
static int check_single(app *a) {
  apns_send_request sr;
  const char *json;
  size_t len;
  int rv = apns_build_send_request(a->o.send.topic, a->o.token, &a->o.send, apns_notification_is_background(a->n),
                                   &sr, sizeof sr);
  if (rv < 0) {
    push_err("%s: %s", flag_of(rv), apns_strerror(rv));
    return -1;
  }
  rv = apns_notification_serialize(a->n, apns_payload_limit(sr.push_type), &json, &len);
  if (rv == APNS_EPAYLOADTOOLARGE) {
    push_err("payload: %zu bytes, more than the %zu allowed for push type %s", len, apns_payload_limit(sr.push_type),
             apns_push_type_string(sr.push_type));
    return -1;
  }
  if (rv < 0) {
    push_err("payload: %s", apns_strerror(rv));
    return -1;
  }
  return 0;
}

static int open_client(app *a) {
  char errbuf[512] = "";
  apns_client_options co;
  apns_tls_options co_tls;
  apns_args_client(&a->o.apns, &co, &co_tls);
  if (a->o.bulk) {
    co.max_queued = a->o.max_queued;
    co.low_water = a->o.max_queued / 2;
    co.on_low_water = on_low_water;
  }
  a->low_water = co.low_water;
  co.on_event = on_event;
  co.data = a;
  apns_proxy_options *proxy = NULL;
  if (push_proxy(&a->o, &proxy) != 0) return -1;
  co.proxy = proxy;
  int rv = apns_client_open(&a->loop, &a->client, &co, errbuf, sizeof errbuf);
  apns_proxy_options_free(proxy); /* copied by the open */
  if (rv < 0) {
    push_err("%s (%s)", errbuf[0] ? errbuf : apns_strerror(rv), apns_err_name(rv));
    return -1;
  }
  if (a->o.apns.insecure) push_err("warning: --insecure: the server's certificate is not verified");
  return 0;
}

static int run(app *a) {
  int rv;
  a->start_ns = uv_hrtime();
  if (a->o.bulk) {
    rv = push_input_open(&a->loop, a->o.bulk, on_line, on_input_end, a, &a->in);
    if (rv < 0) {
      push_err("--bulk %s: %s", a->o.bulk, uv_strerror(rv));
      return PUSH_EXIT_USAGE;
    }
  }
  if (!a->o.dry_run && open_client(a) != 0) {
    if (a->in) push_input_close(a->in);
    a->in = NULL;
    uv_run(&a->loop, UV_RUN_DEFAULT);
    return PUSH_EXIT_USAGE;
  }
  uv_timer_init(&a->loop, &a->tick);
  uv_timer_init(&a->loop, &a->resume);
  uv_signal_init(&a->loop, &a->sigint);
  uv_signal_init(&a->loop, &a->sigterm);
  a->tick.data = a->resume.data = a->sigint.data = a->sigterm.data = a;
  a->timers_open = 1;
  uv_signal_start(&a->sigint, on_signal, SIGINT);
  uv_signal_start(&a->sigterm, on_signal, SIGTERM);
  /* The signal handlers must not keep the loop alive once the work is done. */
  uv_unref((uv_handle_t *)&a->sigint);
  uv_unref((uv_handle_t *)&a->sigterm);
  if (!a->o.dry_run) uv_timer_start(&a->tick, on_tick, PUSH_TICK_MS, PUSH_TICK_MS);
  if (a->in) {
    push_input_resume(a->in);
  } else {
    a->lines = 1;
    submit(a, 1, a->o.token, a->n, NULL, &a->o.send);
    a->input_done = 1;
    maybe_finish(a);
  }
  uv_run(&a->loop, UV_RUN_DEFAULT);
  push_report_flush(a->rep);
  output_broken(a);
  if (a->o.dry_run) {
    if (a->o.bulk) {
      uint64_t bad = a->lines - a->requests;
      fprintf(stderr, "apns-push: dry run: %llu requests, %llu bad lines\n", (unsigned long long)a->requests,
              (unsigned long long)bad);
      return bad || a->read_error || a->output_broken ? PUSH_EXIT_FAILED : PUSH_EXIT_OK;
    }
    return a->requests == 1 && !a->output_broken ? PUSH_EXIT_OK : PUSH_EXIT_FAILED;
  }
  progress(a, 1);
  const char *note = NULL;
  char buf[160];
  if (a->output_broken) {
    snprintf(buf, sizeof buf, "stopped: the output could not be written (%s); %llu lines read",
             strerror(a->output_errno), (unsigned long long)a->lines);
    note = buf;
  } else if (a->stopped) {
    snprintf(buf, sizeof buf, "stopped after a fatal answer: %llu lines read, the rest not sent",
             (unsigned long long)a->lines);
    note = buf;
  } else if (a->read_error) {
    note = "the input could not be read to its end";
  } else if (a->unreachable) {
    note = "the server could not be reached: nothing more was read";
  } else if (a->interrupted) {
    snprintf(buf, sizeof buf, "interrupted after %llu lines: the rest of the input was not read",
             (unsigned long long)a->lines);
    note = buf;
  }
  push_report_summary(a->rep, uv_hrtime(), note);
  if (a->stopped || a->read_error || a->interrupted || a->unreachable || a->output_broken) return PUSH_EXIT_FAILED;
  return push_report_exit_code(a->rep);
}

int push_main(int argc, char **argv) {
  app a;
  int rc;
  memset(&a, 0, sizeof a);
  a.out_fd = -1;
  rc = push_parse_args(argc, argv, &a.o);
  if (rc == 1) return PUSH_EXIT_OK;
  if (rc != 0) return rc;
  rc = PUSH_EXIT_USAGE;
  if (a.o.results && strcmp(a.o.results, "-") != 0) {
    if ((a.out_fd = open(a.o.results, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666)) < 0) {
      push_err("--results %s: %s", a.o.results, strerror(errno));
      goto done;
    }
  } else {
    a.out_fd = 1;
  }
  if (a.o.dead_file && (a.dead = open_out("--dead-tokens", a.o.dead_file)) == NULL) goto done;
  if (a.o.channel_op) {
    rc = push_channel_main(&a.o, a.out_fd);
    goto done;
  }
  a.scratch_cap = BULK_SCRATCH(PUSH_MAX_LINE);
  if ((a.scratch = malloc(a.scratch_cap)) == NULL) {
    push_err("out of memory");
    goto done;
  }

  if (a.o.payload_json) {
    char *mini;
    size_t len;
    int rv = push_json_minify(a.o.payload_json, strlen(a.o.payload_json), &mini, &len);
    if (rv == 0) {
      rv = apns_notification_new_raw(&a.n, mini, len);
      free(mini);
    }
    if (rv < 0) {
      push_err("PAYLOAD_JSON: %s", apns_strerror(rv));
      goto done;
    }
  } else if (push_flags_notification(&a.o, &a.n) < 0) {
    goto done;
  }
  if (a.o.channel) {
    rc = push_broadcast_main(&a.o, a.n, a.out_fd);
    goto done;
  }
  if (!a.o.bulk && check_single(&a) != 0) goto done;

  int show = a.o.progress >= 0 ? a.o.progress : isatty(2);
  a.rep = push_report_new(a.out_fd, !a.o.dry_run, show && !a.o.dry_run, a.o.list_dead, a.dead, uv_hrtime());
  if (a.rep == NULL || uv_loop_init(&a.loop) != 0) {
    push_err("out of memory");
    goto done;
  }
  rc = run(&a);
  close_timers(&a);
  uv_run(&a.loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&a.loop) != 0) push_err("internal: handles left open at exit");

done:
  if (a.rep && push_report_flush(a.rep) < 0 && !a.output_broken) {
    push_err("writing the results: %s", strerror(-push_report_flush(a.rep)));
    if (rc == PUSH_EXIT_OK) rc = PUSH_EXIT_FAILED;
  }
  if (a.out_fd > 2 && close(a.out_fd) != 0 && rc == PUSH_EXIT_OK) rc = PUSH_EXIT_FAILED;
  if (a.dead && fclose(a.dead) != 0 && rc == PUSH_EXIT_OK) rc = PUSH_EXIT_FAILED;
  push_report_free(a.rep);
  free(a.scratch);
  for (int k = 0; k < 2; k++) {
    while (a.free_pending[k]) {
      pending *p = a.free_pending[k];
      a.free_pending[k] = p->next_free;
      free(p);
    }
  }
  apns_notification_free(a.n);
  push_opts_free(&a.o);
  return rc;
}
