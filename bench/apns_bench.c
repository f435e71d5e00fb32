/* apns-bench: throughput, client CPU, latency and memory of libapns's pool, side by side with h2load.
 *
 * The server is apns-mock started as a separate process (so that getrusage of this process measures the client
 * alone), or any server given with --host. Each comparison sends the same requests (path, headers, payload) over
 * the same number of connections and streams with libapns and with h2load, alternating, and reports the median of
 * --runs runs. Then: latency at half the measured rate (paced at every loop turn), memory per queued notification
 * (the mock paused with SIGUSR2, a million notifications queued, RSS and heap growth divided by the count), and with
 * --sweep, how the cost per notification moves with connections (1..8) and with N (10^3..10^6).
 *
 * Everything this program starts is reaped; every loop is bounded by a count and a deadline. */
/* wait4 (the child's rusage, not the sum of all children) and usleep are GNU/BSD, not POSIX. */
#define _GNU_SOURCE
#include <apns.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <malloc.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#ifndef APNS_PUSH_BIN_DEFAULT
#define APNS_PUSH_BIN_DEFAULT "apns-push"
#endif
#ifndef APNS_MOCK_BIN_DEFAULT
#define APNS_MOCK_BIN_DEFAULT "apns-mock"
#endif

extern char **environ;

/* 64 hex digits (32 bytes), as Apple issues them: the mock refuses an odd length with BadDeviceToken. */
#define TOKEN "4f6d1e6cbb3a4c2b9a8e0d7c6b5a4938271605f4e3d2c1b0a998877665544332"
#define TOPIC "com.example.app"
#define DEFAULT_PAYLOAD                                                                                              \
  "{\"aps\":{\"alert\":{\"title\":\"apns-bench\",\"body\":\"Hello from "                                             \
  "libapns\"},\"badge\":1,\"sound\":\"default\"}}"

/* ---- allocation counting (apns_replace_allocator and uv_replace_allocator) ----------------------------------- */

static struct {
  uint64_t allocs; /* malloc, calloc, realloc calls */
  int64_t live;    /* usable bytes allocated minus freed while track_live is set (a delta, not a total) */
} count_apns, count_uv;
/* Sizes are looked up (malloc_usable_size) only while measuring memory: the throughput runs count calls only. */
static int track_live;
#define USABLE(p) (track_live && (p) ? (int64_t)malloc_usable_size(p) : 0)

static void *cnt_malloc(size_t n) {
  void *p = malloc(n);
  count_apns.allocs++;
  count_apns.live += USABLE(p);
  return p;
}
static void *cnt_calloc(size_t c, size_t n) {
  void *p = calloc(c, n);
  count_apns.allocs++;
  count_apns.live += USABLE(p);
  return p;
}
static void *cnt_realloc(void *old, size_t n) {
  int64_t before = USABLE(old);
  void *p = realloc(old, n);
  count_apns.allocs++;
  if (p) count_apns.live += USABLE(p) - before;
  return p;
}
static void cnt_free(void *p) {
  count_apns.live -= USABLE(p);
  free(p);
}
static void *uvc_malloc(size_t n) {
  void *p = malloc(n);
  count_uv.allocs++;
  count_uv.live += USABLE(p);
  return p;
}
static void *uvc_calloc(size_t c, size_t n) {
  void *p = calloc(c, n);
  count_uv.allocs++;
  count_uv.live += USABLE(p);
  return p;
}
static void *uvc_realloc(void *old, size_t n) {
  int64_t before = USABLE(old);
  void *p = realloc(old, n);
  count_uv.allocs++;
  if (p) count_uv.live += USABLE(p) - before;
  return p;
}
static void uvc_free(void *p) {
  count_uv.live -= USABLE(p);
  free(p);
}

/* ---- latency histogram: 64 sub-buckets per power of two (< 1.6% error), nanoseconds ---------------------------- */

#define H_SUB 64
#define H_BUCKETS (2 * H_SUB + 58 * H_SUB)

typedef struct {
  uint64_t counts[H_BUCKETS];
  uint64_t n, max;
} hist;

static size_t h_index(uint64_t v) {
  if (v < 2 * H_SUB) return (size_t)v;
  int msb = 63 - __builtin_clzll(v);
  int shift = msb - 6; /* v >> shift is in [64, 128) */
  size_t i = 2 * H_SUB + (size_t)(shift - 1) * H_SUB + (size_t)((v >> shift) - H_SUB);
  return i < H_BUCKETS ? i : H_BUCKETS - 1;
}

/* The upper edge of a bucket: percentiles are never understated. */
static uint64_t h_value(size_t i) {
  if (i < 2 * H_SUB) return i;
  size_t shift = (i - 2 * H_SUB) / H_SUB + 1, sub = (i - 2 * H_SUB) % H_SUB + H_SUB;
  return ((uint64_t)(sub + 1) << shift) - 1;
}

static void h_add(hist *h, uint64_t v) {
  h->counts[h_index(v)]++;
  h->n++;
  if (v > h->max) h->max = v;
}

static double h_pct_us(const hist *h, double pct) {
  if (h->n == 0) return 0;
  uint64_t want = (uint64_t)ceil(pct / 100.0 * (double)h->n), seen = 0;
  if (want == 0) want = 1;
  for (size_t i = 0; i < H_BUCKETS; i++) {
    seen += h->counts[i];
    if (seen >= want) {
      uint64_t v = h_value(i);
      return (double)(v < h->max ? v : h->max) / 1000.0;
    }
  }
  return (double)h->max / 1000.0;
}

/* ---- configuration --------------------------------------------------------------------------------------------- */

typedef struct {
  uint64_t n;
  unsigned conns, streams, runs;
  uint64_t mem_n;
  int json, sweep, no_h2load, no_latency, client_auth, verbose;
  const char *host; /* NULL: start apns-mock */
  int port;
  const char *ca, *cert, *key, *verify_name;
  int insecure;
  const char *mock_bin, *h2load_bin, *push_bin;
  int no_push;       /* skip the apns-push runs */
  uint32_t delay_ms; /* the mock holds every response this long (--delay-ms): the latency-bound limit */
  const char *payload_file;
  char *payload;
  size_t payload_len;
  uint64_t deadline_s; /* bound on any one phase */
} config;

static config cfg;
static char workdir[256];
static char payload_path[300];
static pid_t mock_pid = -1;
static int mock_port;

static void vlog(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void vlog(const char *fmt, ...) {
  if (cfg.json && !cfg.verbose) return;
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static double now_s(void) {
  return (double)uv_hrtime() / 1e9;
}

static double cpu_s(int who) {
  struct rusage ru;
  getrusage(who, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
         (double)ru.ru_stime.tv_usec / 1e6;
}

static long max_rss_kb(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

static int64_t rss_bytes(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long size = 0, res = 0;
  if (f == NULL) return 0;
  if (fscanf(f, "%ld %ld", &size, &res) != 2) res = 0;
  fclose(f);
  return (int64_t)res * sysconf(_SC_PAGESIZE);
}

/* The mock's CPU seconds so far (user + system), from /proc; -1 when unknown. */
static pid_t mock_pid_for_cpu(void);
static double server_cpu_s(void) {
  char p[64], buf[1024];
  pid_t pid = mock_pid_for_cpu();
  if (pid <= 0) return -1;
  snprintf(p, sizeof p, "/proc/%d/stat", (int)pid);
  FILE *f = fopen(p, "r");
  if (f == NULL) return -1;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  const char *q = strrchr(buf, ')'); /* the command name may hold spaces */
  unsigned long ut, st;
  if (q == NULL || sscanf(q + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2) return -1;
  return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* ---- the mock as a child process ------------------------------------------------------------------------------- */

static pid_t mock_pid_for_cpu(void) {
  return mock_pid;
}

static void mock_stop(void) {
  if (mock_pid <= 0) return;
  kill(mock_pid, SIGTERM);
  for (int i = 0; i < 500; i++) { /* 5 s, then SIGKILL */
    if (waitpid(mock_pid, NULL, WNOHANG) == mock_pid) {
      mock_pid = -1;
      return;
    }
    usleep(10000);
  }
  kill(mock_pid, SIGKILL);
  waitpid(mock_pid, NULL, 0);
  mock_pid = -1;
}

static void cleanup(void) {
  static const char *const files[] = {"ca.pem",         "server.pem",   "server-key.pem", "client.pem",
                                      "client-key.pem", "payload.json", "mock.err",       NULL};
  char p[512];
  mock_stop();
  if (workdir[0] == '\0') return;
  for (int i = 0; files[i]; i++) {
    snprintf(p, sizeof p, "%s/%s", workdir, files[i]);
    unlink(p);
  }
  snprintf(p, sizeof p, "%s/certs", workdir);
  rmdir(p);
  rmdir(workdir);
  workdir[0] = '\0';
}

static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "apns-bench: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  cleanup();
  exit(1);
}

static void mock_start(void) {
  int fds[2];
  char certdir[300], errpath[300];
  posix_spawn_file_actions_t fa;
  snprintf(certdir, sizeof certdir, "%s", workdir); /* certificates straight in the work dir */
  snprintf(errpath, sizeof errpath, "%s/mock.err", workdir);
  if (pipe(fds) != 0) die("pipe: %s", strerror(errno));
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_addclose(&fa, fds[0]);
  posix_spawn_file_actions_addclose(&fa, fds[1]);
  posix_spawn_file_actions_addopen(&fa, 2, errpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  /* h2load sends neither a client certificate nor a provider token: both clients go without, so the comparison
   * is of the same work (--client-auth puts certificates back, for ours alone). */
  char delay[16];
  snprintf(delay, sizeof delay, "%u", cfg.delay_ms);
  char *argv[12];
  size_t na = 0;
  argv[na++] = (char *)cfg.mock_bin;
  argv[na++] = "--listen";
  argv[na++] = "127.0.0.1:0";
  argv[na++] = "--self-signed";
  argv[na++] = certdir;
  argv[na++] = "--no-token-auth";
  if (!cfg.client_auth) argv[na++] = "--no-client-auth";
  if (cfg.delay_ms) argv[na++] = "--delay-ms", argv[na++] = delay;
  argv[na] = NULL;
  int rv = posix_spawn(&mock_pid, cfg.mock_bin, &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  close(fds[1]);
  if (rv != 0) {
    mock_pid = -1;
    close(fds[0]);
    die("cannot start %s: %s", cfg.mock_bin, strerror(rv));
  }
  char line[32];
  size_t got = 0;
  double until = now_s() + 15;
  while (got < sizeof line - 1 && memchr(line, '\n', got) == NULL) {
    struct pollfd pfd = {fds[0], POLLIN, 0};
    int ms = (int)((until - now_s()) * 1000);
    if (ms <= 0 || poll(&pfd, 1, ms) <= 0) break;
    ssize_t r = read(fds[0], line + got, sizeof line - 1 - got);
    if (r <= 0) break;
    got += (size_t)r;
  }
  close(fds[0]);
  line[got] = '\0';
  mock_port = atoi(line);
  if (mock_port <= 0) die("apns-mock did not print its port (see %s)", errpath);
}

/* ---- one run of libapns ---------------------------------------------------------------------------------------- */

typedef struct {
  int ok_run; /* every notification accepted */
  uint64_t n, accepted, failed;
  double wall_s, rate, cpu_us; /* cpu per notification */
  double server_cpu_us;        /* the mock's CPU per notification, -1 when unknown */
  double allocs, uv_allocs;    /* per notification */
  double p50, p99, p999, max;  /* microseconds */
  long max_rss_kb;
} our_result;

typedef struct {
  uv_loop_t loop;
  apns_pool *pool;
  apns_request req;
  apns_header headers[3];
  char path[128];
  int ups, closed, timed_out;
  uint64_t target, posted, completed, accepted, failed, window;
  int first_err;
  hist *h;
  /* pacing */
  uv_idle_t pace;
  uv_timer_t guard;
  double rate;
  uint64_t pace_start;
} run_ctx;

static void on_pool_event(apns_pool *p, const apns_pool_event *ev) {
  run_ctx *r = apns_pool_data(p);
  if (ev->type == APNS_POOL_EVENT_CONN_UP) r->ups++;
  if (ev->type == APNS_POOL_EVENT_CONN_DOWN && cfg.verbose)
    fprintf(stderr, "apns-bench: connection %u down: %s (%s)\n", ev->conn_index, apns_strerror(ev->err),
            ev->reason ? ev->reason : "");
}

static void on_pool_closed(apns_pool *p) {
  run_ctx *r = apns_pool_data(p);
  r->closed = 1;
}

static void post_one(run_ctx *r);

/* The request's data is its post time; the context is global to keep the data pointer free for it. */
static run_ctx *cur;

static void on_done(int err, const apns_response *res, void *data) {
  run_ctx *r = cur;
  uint64_t t = uv_hrtime();
  if (r->h) h_add(r->h, t - (uint64_t)(uintptr_t)data);
  r->completed++;
  if (err == 0 && res->status == 200) {
    r->accepted++;
  } else {
    r->failed++;
    if (r->first_err == 0) r->first_err = err ? err : res->status;
  }
  if (r->rate == 0 && r->posted < r->target && r->posted - r->completed < r->window) post_one(r);
}

static void post_one(run_ctx *r) {
  int rv = apns_pool_post(r->pool, &r->req, on_done, (void *)(uintptr_t)uv_hrtime());
  if (rv != 0) die("apns_pool_post: %s", apns_strerror(rv));
  r->posted++;
}

static void on_guard(uv_timer_t *t) {
  run_ctx *r = t->data;
  r->timed_out = 1;
}

/* Posts what is due at each loop turn. An idle handle keeps the loop turning (it spins, on purpose): a 1 ms timer
 * would post bursts of rate/1000, and each burst's last request would wait for the ones before it, which measures
 * the pacing rather than the client. */
static void on_pace(uv_idle_t *t) {
  run_ctx *r = t->data;
  double elapsed = (double)(uv_hrtime() - r->pace_start) / 1e9;
  uint64_t due = (uint64_t)(elapsed * r->rate) + 1;
  if (due > r->target) due = r->target;
  while (r->posted < due) post_one(r);
  if (r->posted >= r->target) uv_idle_stop(t);
}

static void run_init(run_ctx *r, unsigned conns) {
  memset(r, 0, sizeof *r);
  cur = r;
  if (uv_loop_init(&r->loop) != 0) die("uv_loop_init");
  snprintf(r->path, sizeof r->path, "/3/device/%s", TOKEN);
  r->headers[0] = (apns_header){"apns-topic", TOPIC};
  r->headers[1] = (apns_header){"apns-push-type", "alert"};
  r->headers[2] = (apns_header){"apns-priority", "10"};
  apns_request_init(&r->req);
  r->req.path = r->path;
  r->req.headers = r->headers;
  r->req.num_headers = 3;
  r->req.body = cfg.payload;
  r->req.body_len = cfg.payload_len;
  r->req.timeout_ms = 60000;

  apns_pool_options o = APNS_POOL_OPTIONS_INIT;
  apns_tls_options tlso = APNS_TLS_OPTIONS_INIT;
  o.tls = &tlso;
  char ca[320], cert[320], key[320];
  o.host = cfg.host ? cfg.host : "127.0.0.1";
  o.port = (uint16_t)(cfg.host ? cfg.port : mock_port);
  if (cfg.host) {
    tlso.ca_file = cfg.ca;
    tlso.cert_file = cfg.cert;
    tlso.key_file = cfg.key;
    tlso.verify_name = cfg.verify_name;
  } else {
    snprintf(ca, sizeof ca, "%s/ca.pem", workdir);
    snprintf(cert, sizeof cert, "%s/client.pem", workdir);
    snprintf(key, sizeof key, "%s/client-key.pem", workdir);
    tlso.ca_file = ca;
    if (cfg.client_auth) {
      tlso.cert_file = cert;
      tlso.key_file = key;
    }
    tlso.verify_name = "localhost";
  }
  tlso.insecure_skip_verify = cfg.insecure;
  o.connections = conns;
  o.max_connects_per_sec = conns > 4 ? conns : 4;
  o.on_event = on_pool_event;
  o.data = r;
  char err[512] = "";
  int rv = apns_pool_open(&r->loop, &r->pool, &o, err, sizeof err);
  if (rv != 0) die("apns_pool_open: %s: %s", apns_strerror(rv), err);
  uv_timer_init(&r->loop, &r->guard);
  uv_idle_init(&r->loop, &r->pace);
  r->guard.data = r->pace.data = r;
  uv_timer_start(&r->guard, on_guard, 15000, 0);
  while (r->ups < (int)conns && !r->timed_out) uv_run(&r->loop, UV_RUN_ONCE);
  if (r->timed_out) die("connections did not come up within 15 s (%d of %u up)", r->ups, conns);
  uv_timer_stop(&r->guard);
}

static void handle_closed(uv_handle_t *h) {
  (void)h;
}

static void run_finish(run_ctx *r) {
  apns_pool_close(r->pool, 0, on_pool_closed);
  uv_close((uv_handle_t *)&r->guard, handle_closed);
  uv_close((uv_handle_t *)&r->pace, handle_closed);
  for (int i = 0; i < 100000 && !r->closed; i++) uv_run(&r->loop, UV_RUN_ONCE);
  uv_run(&r->loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&r->loop) != 0) die("loop not empty after the pool closed");
  cur = NULL;
}

/* Sends n notifications: window at a time (closed loop) when rate is 0, else paced at rate per second. */
static our_result run_ours(unsigned conns, uint64_t n, uint64_t window, double rate) {
  run_ctx r;
  our_result out;
  hist *h = calloc(1, sizeof *h);
  if (h == NULL) die("out of memory");
  memset(&out, 0, sizeof out);
  run_init(&r, conns);
  r.h = h;
  r.target = n;
  r.window = window;
  r.rate = rate;
  uint64_t bound_ms = cfg.deadline_s * 1000;
  uv_timer_start(&r.guard, on_guard, bound_ms, 0);

  uint64_t a0 = count_apns.allocs, u0 = count_uv.allocs;
  double s0 = server_cpu_s(), c0 = cpu_s(RUSAGE_SELF), t0 = now_s();
  if (rate > 0) {
    r.pace_start = uv_hrtime();
    uv_idle_start(&r.pace, on_pace);
    on_pace(&r.pace);
  } else {
    while (r.posted < n && r.posted < window) post_one(&r);
  }
  while (r.completed < n && !r.timed_out) uv_run(&r.loop, UV_RUN_ONCE);
  double t1 = now_s(), c1 = cpu_s(RUSAGE_SELF), s1 = server_cpu_s();
  uint64_t a1 = count_apns.allocs, u1 = count_uv.allocs;
  uv_idle_stop(&r.pace);
  uv_timer_stop(&r.guard);
  if (r.timed_out)
    fprintf(stderr, "apns-bench: run stopped after %" PRIu64 " s: %" PRIu64 " of %" PRIu64 " done\n", cfg.deadline_s,
            r.completed, n);
  if (r.first_err)
    fprintf(stderr, "apns-bench: first failure: %d (%s)\n", r.first_err,
            r.first_err < 0 ? apns_strerror(r.first_err) : "HTTP status");

  out.n = n;
  out.accepted = r.accepted;
  out.failed = r.failed + (n - r.completed);
  out.ok_run = out.accepted == n;
  out.wall_s = t1 - t0;
  out.rate = out.wall_s > 0 ? (double)r.completed / out.wall_s : 0;
  out.cpu_us = r.completed ? (c1 - c0) * 1e6 / (double)r.completed : 0;
  out.server_cpu_us = s0 >= 0 && s1 >= 0 && r.completed ? (s1 - s0) * 1e6 / (double)r.completed : -1;
  out.allocs = r.completed ? (double)(a1 - a0) / (double)r.completed : 0;
  out.uv_allocs = r.completed ? (double)(u1 - u0) / (double)r.completed : 0;
  out.p50 = h_pct_us(h, 50);
  out.p99 = h_pct_us(h, 99);
  out.p999 = h_pct_us(h, 99.9);
  out.max = (double)h->max / 1000.0;
  run_finish(&r);
  out.max_rss_kb = max_rss_kb();
  free(h);
  return out;
}

/* ---- memory per queued notification ---------------------------------------------------------------------------- */

typedef struct {
  int ran;
  uint64_t queued;
  double rss_per, heap_per; /* bytes per queued notification */
  uint64_t canceled;
} mem_result;

static void on_wait(uv_timer_t *t) {
  *(int *)t->data = 1;
}

static void loop_sleep(uv_loop_t *loop, uint64_t ms) {
  uv_timer_t t;
  int done = 0;
  uv_timer_init(loop, &t);
  t.data = &done;
  uv_timer_start(&t, on_wait, ms, 0);
  while (!done) uv_run(loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&t, handle_closed);
  uv_run(loop, UV_RUN_NOWAIT);
}

static mem_result run_memory(uint64_t m) {
  mem_result out;
  run_ctx r;
  memset(&out, 0, sizeof out);
  if (mock_pid <= 0 || m == 0) return out;
  run_init(&r, 1);
  r.target = m;
  r.window = m;
  kill(mock_pid, SIGUSR2);  /* hold every response */
  loop_sleep(&r.loop, 200); /* the mock handles the signal on its next loop turn */
  malloc_trim(0);
  track_live = 1;
  int64_t rss0 = rss_bytes(), heap0 = count_apns.live + count_uv.live;
  while (r.posted < m) post_one(&r);
  loop_sleep(&r.loop, 300); /* the first streams go out and stay open */
  int64_t rss1 = rss_bytes(), heap1 = count_apns.live + count_uv.live;
  track_live = 0;
  out.ran = 1;
  out.queued = m;
  out.rss_per = (double)(rss1 - rss0) / (double)m;
  out.heap_per = (double)(heap1 - heap0) / (double)m;
  run_finish(&r); /* drain 0: every notification ends with APNS_ECANCELED */
  out.canceled = r.failed;
  kill(mock_pid, SIGUSR1);
  malloc_trim(0);
  return out;
}

/* ---- a command, measured ------------------------------------------------------------------------------------- */

/* One run of h2load or apns-push: what it wrote, its wall time from spawn to reap, its CPU from wait4. */
typedef struct {
  const char *text; /* stderr (and stdout when asked), NUL-terminated; a static buffer, cut at 64 KiB */
  int status;       /* exit status, or 128 + the signal */
  int killed;       /* it ran past --deadline and was killed */
  double wall_s, cpu_s;
} measured;

/* Runs argv (argv[0] a path) with its stderr, and its stdout when with_stdout, into a pipe read to its end; kills
 * it past cfg.deadline_s. Returns 0, or posix_spawn's error (nothing ran). */
static int run_measured(char *const *argv, int with_stdout, measured *m) {
  static char text[1 << 16];
  int fds[2];
  memset(m, 0, sizeof *m);
  if (pipe(fds) != 0) die("pipe: %s", strerror(errno));
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  if (with_stdout) posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
  posix_spawn_file_actions_addclose(&fa, fds[0]);
  posix_spawn_file_actions_addclose(&fa, fds[1]);
  pid_t pid;
  double t0 = now_s();
  int rv = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  close(fds[1]);
  if (rv != 0) {
    close(fds[0]);
    return rv;
  }
  size_t got = 0;
  double until = t0 + (double)cfg.deadline_s;
  for (;;) {
    struct pollfd pfd = {fds[0], POLLIN, 0};
    int ms = (int)((until - now_s()) * 1000);
    if (ms <= 0) {
      kill(pid, SIGKILL);
      m->killed = 1;
      break;
    }
    if (poll(&pfd, 1, ms) <= 0) continue;
    char tmp[4096];
    ssize_t r = read(fds[0], tmp, sizeof tmp);
    if (r <= 0) break;
    size_t take = (size_t)r < sizeof text - 1 - got ? (size_t)r : sizeof text - 1 - got;
    memcpy(text + got, tmp, take);
    got += take;
  }
  close(fds[0]);
  text[got] = '\0';
  m->text = text;
  int status = 0;
  struct rusage ru;
  memset(&ru, 0, sizeof ru);
  while (wait4(pid, &status, 0, &ru) < 0 && errno == EINTR) {
  }
  m->wall_s = now_s() - t0;
  m->cpu_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
             (double)ru.ru_stime.tv_usec / 1e6;
  m->status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return 0;
}

/* CPU per request of the send phase: a run's CPU minus that of a run of one request per connection (process
 * start, key loading, TLS handshakes; fixed <= 0 when unknown), over the other requests. */
static double send_cpu_us(double cpu_s, double fixed, unsigned conns, uint64_t n) {
  if (fixed < 0) fixed = 0;
  double c = cpu_s - fixed;
  if (c < 0) c = cpu_s;
  return n > conns ? c * 1e6 / (double)(n - (fixed > 0 ? conns : 0)) : cpu_s * 1e6 / (double)n;
}

/* ---- h2load ---------------------------------------------------------------------------------------------------- */

typedef struct {
  int ran, exit_status;
  uint64_t succeeded, failed;
  double rate, cpu_s, cpu_us, wall_s, mean_ms, max_ms, sd_ms;
  double server_cpu_us; /* the mock's, per request; -1 when unknown */
  char why[200];
} h2_result;

static double h2_fixed_cpu[64];
static double h2_rps;
/* when > 0, h2load paces each connection at this many requests per second (--rps) */ /* h2load's CPU for one
                                                                                         request per connection,
                                                                                         by connection count */

static h2_result run_h2load_raw(unsigned conns, uint64_t n) {
  h2_result out;
  char url[256], sn[32], sc[16], sm[16], h1[64], h2[64], h3[64], rps[32];
  memset(&out, 0, sizeof out);
  snprintf(url, sizeof url, "https://%s:%d/3/device/%s", cfg.host ? cfg.host : "127.0.0.1",
           cfg.host ? cfg.port : mock_port, TOKEN);
  snprintf(sn, sizeof sn, "%" PRIu64, n);
  snprintf(sc, sizeof sc, "%u", conns);
  snprintf(sm, sizeof sm, "%u", cfg.streams);
  snprintf(h1, sizeof h1, "apns-topic: %s", TOPIC);
  snprintf(h2, sizeof h2, "apns-push-type: alert");
  snprintf(h3, sizeof h3, "apns-priority: 10");
  char *argv[] = {(char *)cfg.h2load_bin,
                  "-n",
                  sn,
                  "-c",
                  sc,
                  "-m",
                  sm,
                  "-d",
                  payload_path,
                  "-H",
                  h1,
                  "-H",
                  h2,
                  "-H",
                  h3,
                  url,
                  NULL,
                  NULL};
  if (h2_rps > 0) {
    snprintf(rps, sizeof rps, "--rps=%.0f", h2_rps);
    argv[15] = rps;
    argv[16] = url;
  }
  measured m;
  double s0 = server_cpu_s();
  int rv = run_measured(argv, 1, &m);
  if (rv != 0) {
    snprintf(out.why, sizeof out.why, "cannot run %s: %s", cfg.h2load_bin, strerror(rv));
    return out;
  }
  const char *text = m.text;
  out.wall_s = m.wall_s;
  double s1 = server_cpu_s();
  out.server_cpu_us = s0 >= 0 && s1 >= 0 ? (s1 - s0) * 1e6 / (double)n : -1;
  out.cpu_s = m.cpu_s;
  out.exit_status = m.status;
  if (m.killed) {
    snprintf(out.why, sizeof out.why, "h2load ran over %" PRIu64 " s and was killed", cfg.deadline_s);
    return out;
  }
  const char *f = strstr(text, "finished in ");
  const char *q = strstr(text, "requests: ");
  const char *t = strstr(text, "time for request:");
  if (f == NULL || q == NULL) {
    snprintf(out.why, sizeof out.why, "unexpected h2load output (exit %d): %.120s", out.exit_status, text);
    if (cfg.verbose) fprintf(stderr, "%s\n", text);
    return out;
  }
  const char *comma = strchr(f, ',');
  unsigned long long total, started, done, succ, failed;
  if (comma == NULL || sscanf(comma + 1, "%lf req/s", &out.rate) != 1 ||
      sscanf(q, "requests: %llu total, %llu started, %llu done, %llu succeeded, %llu failed", &total, &started, &done,
             &succ, &failed) != 5) {
    snprintf(out.why, sizeof out.why, "cannot parse h2load output");
    return out;
  }
  if (t) {
    double mn, mx, mean;
    char u1[8], u2[8], u3[8];
    double sd;
    char u4[8];
    int k = sscanf(t, "time for request: %lf%7s %lf%7s %lf%7s %lf%7s", &mn, u1, &mx, u2, &mean, u3, &sd, u4);
#define TO_MS(v, u) (strcmp(u, "us") == 0 ? (v) / 1000 : strcmp(u, "s") == 0 ? (v)*1000 : (v))
    if (k >= 6) {
      out.mean_ms = TO_MS(mean, u3);
      out.max_ms = TO_MS(mx, u2);
    }
    if (k == 8) out.sd_ms = TO_MS(sd, u4);
#undef TO_MS
  }
  out.succeeded = succ;
  out.failed = total - succ;
  out.ran = 1;
  return out;
}

/* h2load's CPU over its requests: minus what one request per connection costs it (process start, TLS handshakes),
 * so that both sides count the send phase only. */
static h2_result run_h2load(unsigned conns, uint64_t n) {
  if (conns < 64 && h2_fixed_cpu[conns] == 0) {
    h2_result base = run_h2load_raw(conns, conns);
    h2_fixed_cpu[conns] = base.ran ? base.cpu_s : -1;
  }
  h2_result r = run_h2load_raw(conns, n);
  r.cpu_us = send_cpu_us(r.cpu_s, conns < 64 ? h2_fixed_cpu[conns] : 0, conns, n);
  return r;
}

/* ---- apns-push ------------------------------------------------------------------------------------------------- */

/* The command most users run first, on the same server in the same run: --bulk from a file of n lines (the same
 * token and payload), results to /dev/null. Its rate is its own summary's (from its start, connections included,
 * as h2load's is); its CPU is wait4's, minus a run of one line per connection (start-up, key loading, handshakes),
 * over the other lines. */
typedef struct {
  int ran;
  uint64_t accepted;
  double rate, cpu_s, cpu_us, wall_s;
  char why[200];
} push_result;

static double push_fixed_cpu[64];

static int push_available(void) {
  return !cfg.no_push && cfg.host == NULL && access(cfg.push_bin, X_OK) == 0;
}

static const char *bulk_file(uint64_t n) {
  static char path[320];
  static uint64_t made = 0;
  snprintf(path, sizeof path, "%s/bulk.jsonl", workdir);
  if (made == n) return path;
  FILE *f = fopen(path, "w");
  if (f == NULL) die("cannot write %s", path);
  for (uint64_t i = 0; i < n; i++) {
    fprintf(f, "{\"token\":\"%s\",\"payload\":", TOKEN);
    fwrite(cfg.payload, 1, cfg.payload_len, f);
    fputs("}\n", f);
  }
  if (fclose(f) != 0) die("cannot write %s", path);
  made = n;
  return path;
}

static push_result run_push_raw(unsigned conns, uint64_t n) {
  push_result out;
  char hostport[64], sc[16], ca[320], cert[320], key[320];
  memset(&out, 0, sizeof out);
  snprintf(hostport, sizeof hostport, "127.0.0.1:%d", mock_port);
  snprintf(sc, sizeof sc, "%u", conns);
  snprintf(ca, sizeof ca, "%s/ca.pem", workdir);
  snprintf(cert, sizeof cert, "%s/client.pem", workdir);
  snprintf(key, sizeof key, "%s/client-key.pem", workdir);
  char *argv[] = {(char *)cfg.push_bin,
                  "--host",
                  hostport,
                  "--ca",
                  ca,
                  "--verify-name",
                  "localhost",
                  "--cert",
                  cert,
                  "--key",
                  key,
                  "--topic",
                  TOPIC,
                  "--connections",
                  sc,
                  "--bulk",
                  (char *)bulk_file(n),
                  "--results",
                  "/dev/null",
                  "--no-progress",
                  NULL};
  measured m;
  int rv = run_measured(argv, 0, &m);
  if (rv != 0) {
    snprintf(out.why, sizeof out.why, "cannot run %s: %s", cfg.push_bin, strerror(rv));
    return out;
  }
  const char *text = m.text;
  out.wall_s = m.wall_s;
  out.cpu_s = m.cpu_s;
  if (m.killed) {
    snprintf(out.why, sizeof out.why, "apns-push ran over %" PRIu64 " s and was killed", cfg.deadline_s);
    return out;
  }
  unsigned long long done = 0, acc = 0;
  double secs = 0;
  const char *sum = strstr(text, " notifications in ");
  while (sum != NULL && sum > text && sum[-1] != ' ') sum--;
  if (sum == NULL ||
      sscanf(sum, "%llu notifications in %lf s (%lf/s): %llu accepted", &done, &secs, &out.rate, &acc) != 4) {
    snprintf(out.why, sizeof out.why, "unexpected apns-push output (status %d): %.120s", m.status, text);
    return out;
  }
  out.accepted = acc;
  out.ran = 1;
  return out;
}

static push_result run_push(unsigned conns, uint64_t n) {
  if (conns < 64 && push_fixed_cpu[conns] == 0) {
    push_result base = run_push_raw(conns, conns);
    push_fixed_cpu[conns] = base.ran ? base.cpu_s : -1;
  }
  push_result r = run_push_raw(conns, n);
  r.cpu_us = send_cpu_us(r.cpu_s, conns < 64 ? push_fixed_cpu[conns] : 0, conns, n);
  return r;
}

/* ---- comparisons ----------------------------------------------------------------------------------------------- */

typedef struct {
  unsigned conns;
  uint64_t n;
  our_result ours;   /* medians over runs (each field its own median) */
  h2_result h2;      /* medians too */
  int all_ok, h2_ok; /* every run of ours accepted all; every h2load run ran and succeeded */
  uint64_t accepted; /* ours, last run */
  double rate_runs[16], cpu_runs[16], h2_rate_runs[16], h2_cpu_runs[16];
  unsigned runs;
  int push_ran, push_ok; /* apns-push ran; every run accepted all */
  double push_rate, push_cpu_us, push_rate_runs[16], push_cpu_runs[16];
  char push_why[200];
} comparison;

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(const double *v, unsigned n) {
  double tmp[16];
  if (n == 0) return 0;
  memcpy(tmp, v, n * sizeof *v);
  qsort(tmp, n, sizeof *tmp, cmp_double);
  return n % 2 ? tmp[n / 2] : (tmp[n / 2 - 1] + tmp[n / 2]) / 2;
}

static int h2load_available(void) {
  return !cfg.no_h2load && access(cfg.h2load_bin, X_OK) == 0 && !cfg.client_auth;
}

static comparison compare(unsigned conns, uint64_t n, unsigned runs) {
  comparison c;
  double p50[16], p99[16], p999[16], mx[16], al[16], ual[16], h2mean[16], srv[16], h2srv[16];
  memset(&c, 0, sizeof c);
  c.conns = conns;
  c.n = n;
  c.runs = runs;
  c.all_ok = 1;
  c.h2_ok = h2load_available();
  for (unsigned i = 0; i < runs; i++) {
    our_result o = run_ours(conns, n, (uint64_t)conns * cfg.streams, 0);
    vlog("  libapns  c=%-2u n=%-8" PRIu64 " %10.0f notif/s  %6.2f us CPU/notif  p50 %8.0f us  p99 %8.0f us  "
         "%.2f allocs/notif  server %.2f us/notif\n",
         conns, n, o.rate, o.cpu_us, o.p50, o.p99, o.allocs, o.server_cpu_us);
    c.rate_runs[i] = o.rate;
    c.cpu_runs[i] = o.cpu_us;
    srv[i] = o.server_cpu_us;
    p50[i] = o.p50, p99[i] = o.p99, p999[i] = o.p999, mx[i] = o.max, al[i] = o.allocs, ual[i] = o.uv_allocs;
    c.accepted = o.accepted;
    c.ours.failed += o.failed;
    c.ours.max_rss_kb = o.max_rss_kb;
    if (!o.ok_run) c.all_ok = 0;
    if (h2load_available()) {
      h2_result h = run_h2load(conns, n);
      if (h.ran)
        vlog("  h2load   c=%-2u n=%-8" PRIu64
             " %10.0f req/s    %6.2f us CPU/req    mean %7.0f us  server %.2f us/req\n",
             conns, n, h.rate, h.cpu_us, h.mean_ms * 1000, h.server_cpu_us);
      else
        vlog("  h2load: %s\n", h.why);
      if (!h.ran || h.succeeded != n) {
        c.h2_ok = 0;
        if (c.h2.why[0] == '\0')
          snprintf(c.h2.why, sizeof c.h2.why, "%s", h.ran ? "not every request succeeded" : h.why);
      }
      c.h2_rate_runs[i] = h.rate;
      c.h2_cpu_runs[i] = h.cpu_us;
      h2mean[i] = h.mean_ms;
      h2srv[i] = h.server_cpu_us;
      c.h2.succeeded = h.succeeded;
      c.h2.failed += h.failed;
      c.h2.exit_status = h.exit_status ? h.exit_status : c.h2.exit_status;
      c.h2.ran = 1;
    }
    if (push_available()) {
      push_result pr = run_push(conns, n);
      if (pr.ran)
        vlog("  apns-push c=%-2u n=%-8" PRIu64 " %10.0f notif/s  %6.2f us CPU/notif  (%" PRIu64 " accepted)\n", conns,
             n, pr.rate, pr.cpu_us, pr.accepted);
      else
        vlog("  apns-push: %s\n", pr.why);
      if (i == 0) c.push_ok = 1;
      if (!pr.ran || pr.accepted != n) {
        c.push_ok = 0;
        if (c.push_why[0] == '\0')
          snprintf(c.push_why, sizeof c.push_why, "%s", pr.ran ? "not every notification accepted" : pr.why);
      }
      c.push_rate_runs[i] = pr.rate;
      c.push_cpu_runs[i] = pr.cpu_us;
      c.push_ran = 1;
    }
  }
  if (c.push_ran) {
    c.push_rate = median(c.push_rate_runs, runs);
    c.push_cpu_us = median(c.push_cpu_runs, runs);
  }
  c.ours.n = n;
  c.ours.accepted = c.accepted;
  c.ours.rate = median(c.rate_runs, runs);
  c.ours.cpu_us = median(c.cpu_runs, runs);
  c.ours.p50 = median(p50, runs);
  c.ours.p99 = median(p99, runs);
  c.ours.p999 = median(p999, runs);
  c.ours.max = median(mx, runs);
  c.ours.allocs = median(al, runs);
  c.ours.uv_allocs = median(ual, runs);
  c.ours.server_cpu_us = median(srv, runs);
  if (c.h2.ran) {
    c.h2.rate = median(c.h2_rate_runs, runs);
    c.h2.cpu_us = median(c.h2_cpu_runs, runs);
    c.h2.mean_ms = median(h2mean, runs);
    c.h2.server_cpu_us = median(h2srv, runs);
  }
  return c;
}

/* ---- output ---------------------------------------------------------------------------------------------------- */

static void json_runs(const char *name, const double *v, unsigned n) {
  printf("\"%s\":[", name);
  for (unsigned i = 0; i < n; i++) printf("%s%.3f", i ? "," : "", v[i]);
  printf("]");
}

static void json_comparison(const comparison *c) {
  printf("{\"connections\":%u,\"n\":%" PRIu64 ",\"runs\":%u,", c->conns, c->n, c->runs);
  printf("\"ours\":{\"accepted\":%" PRIu64 ",\"failed\":%" PRIu64 ",\"all_accepted\":%s,\"rate\":%.1f,"
         "\"cpu_us_per_notification\":%.3f,\"latency_us\":{\"p50\":%.1f,\"p99\":%.1f,\"p999\":%.1f,\"max\":%.1f},"
         "\"allocs_per_notification\":%.3f,\"uv_allocs_per_notification\":%.3f,\"peak_rss_kb\":%ld,"
         "\"server_cpu_us_per_notification\":%.3f,",
         c->ours.accepted, c->ours.failed, c->all_ok ? "true" : "false", c->ours.rate, c->ours.cpu_us, c->ours.p50,
         c->ours.p99, c->ours.p999, c->ours.max, c->ours.allocs, c->ours.uv_allocs, c->ours.max_rss_kb,
         c->ours.server_cpu_us);
  json_runs("rate_runs", c->rate_runs, c->runs);
  printf(",");
  json_runs("cpu_runs", c->cpu_runs, c->runs);
  printf("},\"h2load\":");
  if (!c->h2.ran) {
    printf("{\"ran\":false,\"reason\":\"%s\"}", cfg.no_h2load     ? "--no-h2load"
                                                : cfg.client_auth ? "client certificates required (h2load has none)"
                                                                  : "h2load not found");
  } else {
    printf("{\"ran\":true,\"ok\":%s,\"succeeded\":%" PRIu64 ",\"failed\":%" PRIu64 ",\"rate\":%.1f,"
           "\"cpu_us_per_notification\":%.3f,\"mean_latency_us\":%.1f,\"server_cpu_us_per_notification\":%.3f,",
           c->h2_ok ? "true" : "false", c->h2.succeeded, c->h2.failed, c->h2.rate, c->h2.cpu_us, c->h2.mean_ms * 1000,
           c->h2.server_cpu_us);
    json_runs("rate_runs", c->h2_rate_runs, c->runs);
    printf(",");
    json_runs("cpu_runs", c->h2_cpu_runs, c->runs);
    printf("},\"ratio\":{\"rate\":%.3f,\"cpu\":%.3f}", c->h2.rate > 0 ? c->ours.rate / c->h2.rate : 0,
           c->h2.cpu_us > 0 ? c->ours.cpu_us / c->h2.cpu_us : 0);
  }
  if (c->push_ran) {
    printf(",\"apns_push\":{\"ran\":true,\"ok\":%s,\"rate\":%.1f,\"cpu_us_per_notification\":%.3f,",
           c->push_ok ? "true" : "false", c->push_rate, c->push_cpu_us);
    json_runs("rate_runs", c->push_rate_runs, c->runs);
    printf(",");
    json_runs("cpu_runs", c->push_cpu_runs, c->runs);
    printf(",\"cpu_vs_libapns\":%.3f,\"rate_vs_h2load\":%.3f}",
           c->ours.cpu_us > 0 ? c->push_cpu_us / c->ours.cpu_us : 0,
           c->h2.ran && c->h2.rate > 0 ? c->push_rate / c->h2.rate : 0);
  }
  if (cfg.delay_ms) {
    double limit = (double)c->conns * cfg.streams * 1000.0 / cfg.delay_ms;
    printf(",\"latency_bound\":{\"delay_ms\":%u,\"limit\":%.1f,\"ours\":%.3f,\"h2load\":%.3f,\"apns_push\":%.3f}",
           cfg.delay_ms, limit, c->ours.rate / limit, c->h2.ran ? c->h2.rate / limit : 0,
           c->push_ran ? c->push_rate / limit : 0);
  }
  printf("}");
}

static void text_comparison(const comparison *c) {
  printf("%-34s %14s %14s %8s\n", "", "libapns", "h2load", "ratio");
  if (c->h2.ran) {
    printf("%-34s %14.0f %14.0f %8.2f\n", "notifications/s (median)", c->ours.rate, c->h2.rate,
           c->ours.rate / c->h2.rate);
    printf("%-34s %14.2f %14.2f %8.2f\n", "client CPU us/notification", c->ours.cpu_us, c->h2.cpu_us,
           c->ours.cpu_us / c->h2.cpu_us);
    printf("%-34s %14.0f %14.0f\n", "latency p50 / h2load mean us", c->ours.p50, c->h2.mean_ms * 1000);
    if (c->ours.server_cpu_us >= 0)
      printf("%-34s %14.2f %14.2f %8.2f\n", "server (mock) CPU us/notification", c->ours.server_cpu_us,
             c->h2.server_cpu_us, c->ours.server_cpu_us / c->h2.server_cpu_us);
  } else {
    printf("%-34s %14.0f %14s\n", "notifications/s (median)", c->ours.rate, "-");
    printf("%-34s %14.2f %14s\n", "client CPU us/notification", c->ours.cpu_us, "-");
  }
  printf("%-34s %14.0f\n", "latency p99 us", c->ours.p99);
  printf("%-34s %14.0f\n", "latency p99.9 us", c->ours.p999);
  printf("%-34s %14.2f\n", "allocations/notification", c->ours.allocs);
  printf("%-34s %14.2f\n", "  libuv allocations/notification", c->ours.uv_allocs);
  printf("%-34s %14ld\n", "peak RSS KiB", c->ours.max_rss_kb);
  printf("%-34s %8" PRIu64 "/%-5" PRIu64 "\n", "accepted/sent (last run)", c->ours.accepted, c->n);
  if (c->push_ran) {
    printf("apns-push --bulk, same server:     %14.0f notif/s (%.2f x h2load, %.2f x libapns), %.2f us CPU/notif "
           "(%.2f x libapns)%s%s\n",
           c->push_rate, c->h2.ran && c->h2.rate > 0 ? c->push_rate / c->h2.rate : 0, c->push_rate / c->ours.rate,
           c->push_cpu_us, c->push_cpu_us / c->ours.cpu_us, c->push_ok ? "" : "; ", c->push_ok ? "" : c->push_why);
  }
  if (cfg.delay_ms) {
    double limit = (double)c->conns * cfg.streams * 1000.0 / cfg.delay_ms;
    printf("latency-bound limit (%u x %u streams / %u ms): %.0f/s; fraction reached: libapns %.3f, h2load %.3f, "
           "apns-push %.3f\n",
           c->conns, cfg.streams, cfg.delay_ms, limit, c->ours.rate / limit, c->h2.ran ? c->h2.rate / limit : 0,
           c->push_ran ? c->push_rate / limit : 0);
  }
}

/* ---- main ------------------------------------------------------------------------------------------------------ */

static const char usage[] =
    "usage: apns-bench [options]\n"
    "Sends notifications with libapns's pool to apns-mock (started as a separate process) or to --host, and the\n"
    "same requests with h2load; prints rate, client CPU, latency, allocations and memory side by side.\n"
    "\n"
    "  -n N                 notifications per run (default 200000)\n"
    "  -c C                 connections (default 1)\n"
    "  -m M                 streams per connection (default 1000)\n"
    "  --runs K             runs per comparison, median reported (default 3, at most 15)\n"
    "  --sweep              also connections 1,2,4,8 and N = 10^3 .. 10^6\n"
    "  --mem-n N            notifications queued for the memory measure (default 1000000; 0 skips it)\n"
    "  --no-latency         skip the half-rate latency measure\n"
    "  --no-h2load          skip h2load\n"
    "  --no-push            skip the apns-push runs (apns-push --bulk beside the pool, same server)\n"
    "  --push PATH          the apns-push binary (default: the one built with this, or $APNS_PUSH_BIN)\n"
    "  --delay-ms N         the mock holds every response N ms: rates against the latency-bound limit,\n"
    "                       connections x streams / delay (default 0)\n"
    "  --client-auth        make the mock require client certificates (h2load is then skipped)\n"
    "  --payload FILE       the notification payload (default: a 100-byte alert)\n"
    "  --mock PATH          the apns-mock binary (default: the one built with this, or $APNS_MOCK_BIN)\n"
    "  --h2load PATH        default /usr/bin/h2load\n"
    "  --host H --port P    bench another server instead of apns-mock (TLS: --ca, --cert, --key,\n"
    "                       --verify-name, --insecure); no memory measure then\n"
    "  --deadline S         bound on any one run (default 120)\n"
    "  --json               one JSON object on stdout\n"
    "  -v                   progress and details on stderr\n";

enum {
  O_RUNS = 256,
  O_SWEEP,
  O_MEMN,
  O_NOLAT,
  O_NOH2,
  O_CAUTH,
  O_PAYLOAD,
  O_MOCK,
  O_H2LOAD,
  O_HOST,
  O_PORT,
  O_CA,
  O_CERT,
  O_KEY,
  O_VNAME,
  O_INSECURE,
  O_DEADLINE,
  O_JSON,
  O_NOPUSH,
  O_PUSH,
  O_DELAY,
  O_HELP
};

static const struct option longopts[] = {
    {"runs", required_argument, NULL, O_RUNS},
    {"sweep", no_argument, NULL, O_SWEEP},
    {"mem-n", required_argument, NULL, O_MEMN},
    {"no-latency", no_argument, NULL, O_NOLAT},
    {"no-h2load", no_argument, NULL, O_NOH2},
    {"client-auth", no_argument, NULL, O_CAUTH},
    {"payload", required_argument, NULL, O_PAYLOAD},
    {"mock", required_argument, NULL, O_MOCK},
    {"h2load", required_argument, NULL, O_H2LOAD},
    {"host", required_argument, NULL, O_HOST},
    {"port", required_argument, NULL, O_PORT},
    {"ca", required_argument, NULL, O_CA},
    {"cert", required_argument, NULL, O_CERT},
    {"key", required_argument, NULL, O_KEY},
    {"verify-name", required_argument, NULL, O_VNAME},
    {"insecure", no_argument, NULL, O_INSECURE},
    {"deadline", required_argument, NULL, O_DEADLINE},
    {"json", no_argument, NULL, O_JSON},
    {"no-push", no_argument, NULL, O_NOPUSH},
    {"push", required_argument, NULL, O_PUSH},
    {"delay-ms", required_argument, NULL, O_DELAY},
    {"help", no_argument, NULL, O_HELP},
    {NULL, 0, NULL, 0},
};

static uint64_t parse_num(const char *s, const char *what, uint64_t min, uint64_t max) {
  char *end;
  errno = 0;
  double v = strtod(s, &end); /* 1e6 is welcome */
  if (errno || end == s || *end || v < (double)min || v > (double)max || v != floor(v))
    die("%s: want a whole number in [%" PRIu64 ", %" PRIu64 "], got %s", what, min, max, s);
  return (uint64_t)v;
}

static void read_payload(void) {
  if (cfg.payload_file == NULL) {
    cfg.payload = strdup(DEFAULT_PAYLOAD);
    cfg.payload_len = strlen(DEFAULT_PAYLOAD);
  } else {
    FILE *f = fopen(cfg.payload_file, "rb");
    if (f == NULL) die("%s: %s", cfg.payload_file, strerror(errno));
    cfg.payload = malloc(4097);
    cfg.payload_len = fread(cfg.payload, 1, 4097, f);
    fclose(f);
    if (cfg.payload_len == 0 || cfg.payload_len > 4096) die("%s: a payload is 1 to 4096 bytes", cfg.payload_file);
  }
  snprintf(payload_path, sizeof payload_path, "%s/payload.json", workdir);
  FILE *f = fopen(payload_path, "wb");
  if (f == NULL || fwrite(cfg.payload, 1, cfg.payload_len, f) != cfg.payload_len)
    die("cannot write %s", payload_path);
  fclose(f);
}

static void on_signal(int sig) {
  (void)sig;
  cleanup();
  _exit(130);
}

int main(int argc, char **argv) {
  int c;
  cfg.n = 200000;
  cfg.conns = 1;
  cfg.streams = 1000;
  cfg.runs = 3;
  cfg.mem_n = 1000000;
  cfg.deadline_s = 120;
  cfg.h2load_bin = "/usr/bin/h2load";
  const char *env_mock = getenv("APNS_MOCK_BIN");
  cfg.mock_bin = env_mock && *env_mock ? env_mock : APNS_MOCK_BIN_DEFAULT;
  const char *env_push = getenv("APNS_PUSH_BIN");
  cfg.push_bin = env_push && *env_push ? env_push : APNS_PUSH_BIN_DEFAULT;
  while ((c = getopt_long(argc, argv, "n:c:m:vh", longopts, NULL)) != -1) {
    switch (c) {
    case 'n':
      cfg.n = parse_num(optarg, "-n", 1, 100000000);
      break;
    case 'c':
      cfg.conns = (unsigned)parse_num(optarg, "-c", 1, 63);
      break;
    case 'm':
      cfg.streams = (unsigned)parse_num(optarg, "-m", 1, 100000);
      break;
    case 'v':
      cfg.verbose = 1;
      break;
    case O_RUNS:
      cfg.runs = (unsigned)parse_num(optarg, "--runs", 1, 15);
      break;
    case O_SWEEP:
      cfg.sweep = 1;
      break;
    case O_MEMN:
      cfg.mem_n = parse_num(optarg, "--mem-n", 0, 20000000);
      break;
    case O_NOLAT:
      cfg.no_latency = 1;
      break;
    case O_NOH2:
      cfg.no_h2load = 1;
      break;
    case O_CAUTH:
      cfg.client_auth = 1;
      break;
    case O_PAYLOAD:
      cfg.payload_file = optarg;
      break;
    case O_MOCK:
      cfg.mock_bin = optarg;
      break;
    case O_NOPUSH:
      cfg.no_push = 1;
      break;
    case O_PUSH:
      cfg.push_bin = optarg;
      break;
    case O_DELAY:
      cfg.delay_ms = (uint32_t)parse_num(optarg, "--delay-ms", 0, 600000);
      break;
    case O_H2LOAD:
      cfg.h2load_bin = optarg;
      break;
    case O_HOST:
      cfg.host = optarg;
      break;
    case O_PORT:
      cfg.port = (int)parse_num(optarg, "--port", 1, 65535);
      break;
    case O_CA:
      cfg.ca = optarg;
      break;
    case O_CERT:
      cfg.cert = optarg;
      break;
    case O_KEY:
      cfg.key = optarg;
      break;
    case O_VNAME:
      cfg.verify_name = optarg;
      break;
    case O_INSECURE:
      cfg.insecure = 1;
      break;
    case O_DEADLINE:
      cfg.deadline_s = parse_num(optarg, "--deadline", 1, 3600);
      break;
    case O_JSON:
      cfg.json = 1;
      break;
    case 'h':
    case O_HELP:
      fputs(usage, stdout);
      return 0;
    default:
      fputs(usage, stderr);
      return 2;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "apns-bench: unexpected argument %s\n", argv[optind]);
    return 2;
  }
  if (cfg.host && cfg.port == 0) cfg.port = 443;

  /* Counting allocators first, before anything allocates. */
  apns_replace_allocator(cnt_malloc, cnt_realloc, cnt_calloc, cnt_free);
  uv_replace_allocator(uvc_malloc, uvc_realloc, uvc_calloc, uvc_free);
  signal(SIGPIPE, SIG_IGN);
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);

  snprintf(workdir, sizeof workdir, "%s/apns-bench.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  if (mkdtemp(workdir) == NULL) {
    workdir[0] = '\0';
    die("mkdtemp: %s", strerror(errno));
  }
  read_payload();
  if (cfg.host == NULL) mock_start();
  vlog("apns-bench: server %s:%d, payload %zu bytes, %u connection(s) x %u streams, %" PRIu64
       " notifications, %u run(s)\n",
       cfg.host ? cfg.host : "127.0.0.1 (apns-mock)", cfg.host ? cfg.port : mock_port, cfg.payload_len, cfg.conns,
       cfg.streams, cfg.n, cfg.runs);

  /* A short warm-up: page in code and let the mock's allocator settle. */
  our_result warm = run_ours(1, cfg.n < 20000 ? cfg.n : 20000, cfg.streams, 0);
  (void)warm;

  comparison main_cmp = compare(cfg.conns, cfg.n, cfg.runs);

  /* Latency at half the maximum rate, and the floor: one request at a time. */
  our_result idle, half;
  h2_result h2_half;
  double half_rate = 0;
  memset(&h2_half, 0, sizeof h2_half);
  memset(&idle, 0, sizeof idle);
  memset(&half, 0, sizeof half);
  if (!cfg.no_latency) {
    uint64_t idle_n = cfg.n < 2000 ? cfg.n : 2000;
    idle = run_ours(1, idle_n, 1, 0);
    half_rate = main_cmp.ours.rate / 2;
    uint64_t half_n = (uint64_t)(half_rate * 3); /* three seconds */
    if (half_n > cfg.n) half_n = cfg.n;
    if (half_n < 100) half_n = 100;
    half = run_ours(cfg.conns, half_n, UINT64_MAX, half_rate);
    vlog("  latency at %.0f/s (half rate): p50 %.0f us, p99 %.0f us, p99.9 %.0f us; one at a time: p50 %.0f us\n",
         half_rate, half.p50, half.p99, half.p999, idle.p50);
    if (h2load_available()) {
      /* The same rate from h2load, for the same machine's noise: it reports mean, sd and max only. */
      h2_rps = half_rate / cfg.conns;
      h2_half = run_h2load_raw(cfg.conns, half.n);
      h2_rps = 0;
      if (h2_half.ran)
        vlog("  h2load at the same rate: mean %.0f us, sd %.0f us, max %.0f us\n", h2_half.mean_ms * 1000,
             h2_half.sd_ms * 1000, h2_half.max_ms * 1000);
    }
  }

  /* The sweep. */
  comparison sweep[16];
  unsigned nsweep = 0;
  if (cfg.sweep) {
    static const unsigned cs[] = {1, 2, 4, 8};
    static const uint64_t ns[] = {1000, 10000, 100000, 1000000};
    for (size_t i = 0; i < 4; i++) sweep[nsweep++] = compare(cs[i], cfg.n, cfg.runs);
    for (size_t i = 0; i < 4; i++) sweep[nsweep++] = compare(1, ns[i], cfg.runs);
  }

  mem_result mem = run_memory(cfg.host ? 0 : cfg.mem_n);
  if (mem.ran)
    vlog("  memory: %" PRIu64 " queued with the server paused: %.0f bytes RSS, %.0f bytes heap per notification "
         "(payload %zu)\n",
         mem.queued, mem.rss_per, mem.heap_per, cfg.payload_len);

  struct utsname un;
  uname(&un);
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  if (cfg.json) {
    printf("{\"machine\":{\"cpus\":%ld,\"kernel\":\"%s %s\"},", ncpu, un.sysname, un.release);
    printf("\"config\":{\"n\":%" PRIu64 ",\"connections\":%u,\"streams\":%u,\"runs\":%u,\"payload_bytes\":%zu,"
           "\"server\":\"%s\"},",
           cfg.n, cfg.conns, cfg.streams, cfg.runs, cfg.payload_len, cfg.host ? "external" : "apns-mock");
    printf("\"main\":");
    json_comparison(&main_cmp);
    if (!cfg.no_latency)
      printf(",\"latency\":{\"half_rate\":%.1f,\"n\":%" PRIu64 ",\"accepted\":%" PRIu64 ",\"p50_us\":%.1f,"
             "\"p99_us\":%.1f,\"p999_us\":%.1f,\"idle_p50_us\":%.1f,\"idle_p99_us\":%.1f,\"added_p99_us\":%.1f}",
             half_rate, half.n, half.accepted, half.p50, half.p99, half.p999, idle.p50, idle.p99,
             half.p99 - idle.p50);
    if (h2_half.ran)
      printf(
          ",\"latency_h2load\":{\"rps\":%.1f,\"mean_us\":%.1f,\"sd_us\":%.1f,\"max_us\":%.1f,\"succeeded\":%" PRIu64
          "}",
          half_rate, h2_half.mean_ms * 1000, h2_half.sd_ms * 1000, h2_half.max_ms * 1000, h2_half.succeeded);
    if (mem.ran)
      printf(",\"memory\":{\"queued\":%" PRIu64 ",\"rss_bytes_per_notification\":%.1f,"
             "\"heap_bytes_per_notification\":%.1f,\"payload_bytes\":%zu,\"canceled\":%" PRIu64 "}",
             mem.queued, mem.rss_per, mem.heap_per, cfg.payload_len, mem.canceled);
    if (nsweep) {
      printf(",\"sweep\":[");
      for (unsigned i = 0; i < nsweep; i++) {
        if (i) printf(",");
        json_comparison(&sweep[i]);
      }
      printf("]");
    }
    printf("}\n");
  } else {
    printf("\napns-bench: %u connection(s) x %u streams, %" PRIu64
           " notifications of %zu bytes, median of %u run(s); "
           "%ld CPUs, %s %s\n\n",
           cfg.conns, cfg.streams, cfg.n, cfg.payload_len, cfg.runs, ncpu, un.sysname, un.release);
    text_comparison(&main_cmp);
    if (!cfg.no_latency) {
      printf("\nlatency at half the max rate (%.0f/s, %" PRIu64 " notifications): p50 %.0f us, p99 %.0f us, "
             "p99.9 %.0f us\n",
             half_rate, half.n, half.p50, half.p99, half.p999);
      printf("one request at a time: p50 %.0f us, p99 %.0f us; added p99 at half rate: %.0f us\n", idle.p50, idle.p99,
             half.p99 - idle.p50);
      if (h2_half.ran)
        printf("h2load at the same rate (--rps): mean %.0f us, sd %.0f us, max %.0f us\n", h2_half.mean_ms * 1000,
               h2_half.sd_ms * 1000, h2_half.max_ms * 1000);
    }
    if (mem.ran)
      printf("\nmemory per queued notification (%" PRIu64 " queued, server paused): %.0f bytes RSS, %.0f bytes heap "
             "(payload %zu)\n",
             mem.queued, mem.rss_per, mem.heap_per, cfg.payload_len);
    if (nsweep) {
      printf("\nsweep (median of %u)         %12s %12s %7s %10s %10s %7s %8s %12s %9s\n", cfg.runs, "notif/s",
             "h2load/s", "ratio", "us/notif", "h2load us", "ratio", "allocs", "apns-push/s", "push us");
      for (unsigned i = 0; i < nsweep; i++) {
        const comparison *s = &sweep[i];
        printf("c=%-2u n=%-8" PRIu64 "               %12.0f %12.0f %7.2f %10.2f %10.2f %7.2f %8.2f %12.0f %9.2f\n",
               s->conns, s->n, s->ours.rate, s->h2.rate, s->h2.rate > 0 ? s->ours.rate / s->h2.rate : 0,
               s->ours.cpu_us, s->h2.cpu_us, s->h2.cpu_us > 0 ? s->ours.cpu_us / s->h2.cpu_us : 0, s->ours.allocs,
               s->push_rate, s->push_cpu_us);
      }
    }
  }
  int ok = main_cmp.all_ok && (!main_cmp.h2.ran || main_cmp.h2_ok) && (!main_cmp.push_ran || main_cmp.push_ok) &&
           (cfg.no_latency || half.accepted == half.n);
  cleanup();
  free(cfg.payload);
  return ok ? 0 : 1;
}
