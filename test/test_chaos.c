/* The chaos soak: apns_pool against apns-mock's seeded fault mode (--chaos, tools/apns-mock/mock_chaos.h) over real
 * TLS on 127.0.0.1, many notifications, and the library's promises checked at the end: every request ended exactly
 * once; every request the server did not refuse for good (429 here) was accepted, retries allowed and the deadline
 * generous; nothing leaked; no callback ran inside apns_pool_post; connects per second within the pool's limit
 * (graceful GOAWAY rotations aside). Every failure message names the seed, and the seed is printed at the start of
 * each run; replay it with APNS_CHAOS_SEED=N build/test/apns-tests chaos_soak_pool (or apns-mock --chaos N).
 *
 * The normal suite runs a fixed list of seeds (reproducible). APNS_SOAK_SECONDS=S runs chaos_soak_long: runs of
 * 200 000 notifications with time-based seeds until S seconds have passed (raise APNS_TEST_TIMEOUT to match). */
#include "fixture.h"

#include "mock_chaos.h"

#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TOKEN "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

typedef struct {
  int calls;
  int err;
  int status;
} outcome;

typedef struct {
  uv_loop_t loop;
  apns__certgen_result certs;
  apns_mock_options mo;
  apns_mock *mock;
  apns_pool *pool;
  uint64_t seed;
  outcome *out;
  int done, closed;
  int in_post;        /* set around each apns_pool_post */
  int cb_inside_post; /* callbacks that ran while it was set */
  long live_before;
} soak;

typedef struct {
  soak *s;
  int index;
} tag;

#define SOAK_FAIL(s, ...)                                                                                            \
  do {                                                                                                               \
    char soak__m[512];                                                                                               \
    snprintf(soak__m, sizeof soak__m, __VA_ARGS__);                                                                  \
    test__fail(__FILE__, __LINE__, "chaos seed %llu: %s (replay: APNS_CHAOS_SEED=%llu)",                             \
               (unsigned long long)(s)->seed, soak__m, (unsigned long long)(s)->seed);                               \
  } while (0)

static void on_done(int err, const apns_response *res, void *data) {
  tag *t = data;
  soak *s = t->s;
  if (s->in_post) s->cb_inside_post++;
  outcome *o = &s->out[t->index];
  o->calls++;
  o->err = err;
  o->status = res->status;
  s->done++;
}

static void on_closed(apns_pool *p) {
  soak *s = apns_pool_data(p);
  s->closed = 1;
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

enum { SOAK_SIZE = 4, SOAK_CPS = 25 };

/* One run: n notifications through a pool of SOAK_SIZE against a mock with the chaos ch. */
/* Connects a pool may make outside its token bucket: one for each graceful GOAWAY on a connection that had answered
 * 32 or more requests 2xx (a rotation, replaced at once), so at most one per chaos GOAWAY and one per 32 answers. */
static double rotations_allowed(const apns_mock_stats *ms) {
  double goaways = (double)(ms->chaos[APNS_MOCK_CHAOS_GOAWAY_DROP] + ms->chaos[APNS_MOCK_CHAOS_GOAWAY_LOW]);
  double by_answers = (double)ms->status[200] / 32.0;
  return goaways < by_answers ? goaways : by_answers;
}

static void soak_run(const apns_mock_chaos *ch, int n, apns_mock_stats *ms_out) {
  soak s;
  memset(&s, 0, sizeof s);
  s.seed = ch->seed;
  s.live_before = test_alloc_live();
  fprintf(stderr, "chaos seed %llu: %d notifications\n", (unsigned long long)s.seed, n);
  s.out = calloc((size_t)n, sizeof *s.out);
  tag *tags = calloc((size_t)n, sizeof *tags);
  ASSERT_NOT_NULL(s.out);
  ASSERT_NOT_NULL(tags);
  ASSERT_EQ(uv_loop_init(&s.loop), 0);
  fx_certs(&s.certs, 0);
  fx_mock_options(&s.mo, &s.certs, 1);
  s.mo.chaos = *ch;
  s.mock = fx_mock_start(&s.loop, &s.mo);

  apns_pool_options o = APNS_POOL_OPTIONS_INIT;
  apns_tls_options tlso = APNS_TLS_OPTIONS_INIT;
  o.host = "127.0.0.1";
  o.port = (uint16_t)apns_mock_port(s.mock);
  o.tls = fx_tls_client(&tlso, &s.certs);
  o.connections = SOAK_SIZE;
  o.max_connects_per_sec = SOAK_CPS;
  o.reconnect_min_delay_ms = 5;
  o.reconnect_max_delay_ms = 200;
  o.retry_max_delay_ms = 200;
  /* A silent connection is found by its unanswered PING. */
  o.ping_idle_ms = test_time_factor() > 1 ? 1000 : 300;
  o.ping_timeout_ms = test_time_factor() > 1 ? 1000 : 300;
  o.data = &s;
  char err[256] = "";
  uint64_t t0 = now_ms(); /* the pool connects from its open on */
  int rv = apns_pool_open(&s.loop, &s.pool, &o, err, sizeof err);
  if (rv != 0) SOAK_FAIL(&s, "apns_pool_open: %s (%s)", apns_strerror(rv), err);

  apns_request r;
  fx_request(&r, TOKEN, 300000 * (uint64_t)test_time_factor()); /* generous: retries have all the time they need */
  for (int i = 0; i < n; i++) {
    tags[i].s = &s;
    tags[i].index = i;
    s.in_post = 1;
    rv = apns_pool_post(s.pool, &r, on_done, &tags[i]);
    s.in_post = 0;
    if (rv != 0) SOAK_FAIL(&s, "apns_pool_post %d: %s", i, apns_strerror(rv));
  }
  while (s.done < n) {
    if (uv_run(&s.loop, UV_RUN_ONCE) == 0 && s.done < n) SOAK_FAIL(&s, "the loop ran dry at %d of %d", s.done, n);
  }
  double elapsed = (double)(now_ms() - t0) / 1000.0;

  apns_mock_stats ms;
  apns_mock_get_stats(s.mock, &ms);
  char line[2048];
  apns_mock_format_stats(&ms, line, sizeof line);
  fprintf(stderr, "chaos seed %llu: %.1f s, %s\n", (unsigned long long)s.seed, elapsed, line);

  /* Exactly once, and never inside the post. */
  if (s.cb_inside_post) SOAK_FAIL(&s, "%d callbacks ran inside apns_pool_post", s.cb_inside_post);
  long refused = 0;
  for (int i = 0; i < n; i++) {
    outcome *x = &s.out[i];
    if (x->calls != 1) SOAK_FAIL(&s, "request %d ended %d times", i, x->calls);
    if (x->err == 0 && x->status == 429) {
      refused++; /* TooManyRequests: a permanent answer, not retried */
      continue;
    }
    if (x->err != 0 || x->status != 200)
      SOAK_FAIL(&s, "request %d ended with %s status %d, not accepted", i, apns_err_name(x->err), x->status);
  }
  if ((uint64_t)refused > ms.chaos[APNS_MOCK_CHAOS_429])
    SOAK_FAIL(&s, "%ld requests got 429, the mock made %llu", refused,
              (unsigned long long)ms.chaos[APNS_MOCK_CHAOS_429]);
  /* Connects: the pool's token bucket holds max(size, rate) = SOAK_CPS, and refills SOAK_CPS a second; rotations
   * come on top. */
  double limit = SOAK_CPS * (elapsed + 1.0) + rotations_allowed(&ms);
  if ((double)ms.connections > limit)
    SOAK_FAIL(&s, "%llu connections in %.1f s: more than %.0f", (unsigned long long)ms.connections, elapsed, limit);

  ASSERT_OK(apns_pool_close(s.pool, 0, on_closed));
  while (!s.closed) {
    if (uv_run(&s.loop, UV_RUN_ONCE) == 0 && !s.closed) SOAK_FAIL(&s, "the loop ran dry before the pool closed");
  }
  fx_mock_stop_and_close_loop(&s.loop, s.mock);
  apns__certgen_free(&s.certs);
  if (test_alloc_live() != s.live_before) SOAK_FAIL(&s, "%ld allocations leaked", test_alloc_live() - s.live_before);
  free(tags);
  free(s.out);
  if (ms_out) *ms_out = ms;
}

static uint64_t env_seed(uint64_t dflt) {
  const char *e = getenv("APNS_CHAOS_SEED");
  return e && *e ? strtoull(e, NULL, 10) : dflt;
}

/* ---- the fault mode's decisions, without sockets ---- */

TEST(chaos_parse_and_replay) {
  apns_mock_chaos ch;
  char err[160];
  ASSERT_EQ(apns_mock_chaos_parse(&ch, "42", err, sizeof err), 0);
  ASSERT_EQ(ch.enabled, 1);
  ASSERT_UEQ(ch.seed, 42);
  ASSERT_EQ(ch.rate[APNS_MOCK_CHAOS_DROP], 200);
  ASSERT_EQ(ch.rate[APNS_MOCK_CHAOS_429], 1000);
  ASSERT_EQ(apns_mock_chaos_parse(&ch, "7,0,refuse=500000,hold-ms=50", err, sizeof err), 0);
  ASSERT_EQ(ch.rate[APNS_MOCK_CHAOS_DROP], 0);
  ASSERT_EQ(ch.rate[APNS_MOCK_CHAOS_REFUSE], 500000);
  ASSERT_EQ(ch.hold_ms, 50);
  ASSERT_EQ(apns_mock_chaos_parse(&ch, "x", err, sizeof err), -1);
  ASSERT_TRUE(strstr(err, "seed") != NULL);
  ASSERT_EQ(apns_mock_chaos_parse(&ch, "1,bogus=5", err, sizeof err), -1);
  ASSERT_TRUE(strstr(err, "bogus") != NULL);
  ASSERT_EQ(apns_mock_chaos_parse(&ch, "1,drop=600000,500=600000", err, sizeof err), -1);
  ASSERT_TRUE(strstr(err, "more than") != NULL);
  ASSERT_EQ(apns_mock_chaos_parse(&ch, "1,-3", err, sizeof err), -1);

  /* The same seed and connection: the same faults; another connection: others. */
  apns_mock_chaos_defaults(&ch, 1234);
  for (int f = 0; f < APNS_MOCK_CHAOS_COUNT; f++) ch.rate[f] = 20000;
  uint64_t a = apns__mock_chaos_conn_seed(&ch, 3), b = apns__mock_chaos_conn_seed(&ch, 3);
  uint64_t c = apns__mock_chaos_conn_seed(&ch, 4);
  int same = 1, differ = 0, hits[APNS_MOCK_CHAOS_COUNT] = {0};
  for (int i = 0; i < 20000; i++) {
    int fa = apns__mock_chaos_pick(&ch, &a), fb = apns__mock_chaos_pick(&ch, &b);
    int fc = apns__mock_chaos_pick(&ch, &c);
    same &= fa == fb;
    differ |= fa != fc;
    if (fa >= 0) hits[fa]++;
  }
  ASSERT_TRUE(same);
  ASSERT_TRUE(differ);
  /* 20000 per million of 20000 requests is about 400 each: every fault comes up, none far from its rate. */
  for (int f = 0; f < APNS_MOCK_CHAOS_COUNT; f++) {
    ASSERT_GT(hits[f], 250);
    ASSERT_LT(hits[f], 550);
  }
  /* Rate 0 never fires. */
  apns_mock_chaos_defaults(&ch, 1);
  memset(ch.rate, 0, sizeof ch.rate);
  a = apns__mock_chaos_conn_seed(&ch, 1);
  for (int i = 0; i < 10000; i++) ASSERT_EQ(apns__mock_chaos_pick(&ch, &a), -1);
  ASSERT_STREQ(apns_mock_chaos_name(APNS_MOCK_CHAOS_GOAWAY_LOW), "goaway-low");
  ASSERT_STREQ(apns_mock_chaos_name(99), "?");
}

/* ---- against the pool ---- */

/* Each fault alone, the others off: the pool survives it, the mock made it, and the promises hold. The rates
 * make "it came up" near certain (about 8 expected at the least); the seeds are fixed. */
static void each_fault_alone(int first, int last, uint32_t rate, int n) {
  for (int f = first; f <= last; f++) {
    apns_mock_chaos ch;
    apns_mock_chaos_defaults(&ch, env_seed(1000 + (uint64_t)f));
    memset(ch.rate, 0, sizeof ch.rate);
    ch.rate[f] = rate;
    ch.hold_ms = 300;
    fprintf(stderr, "fault %s\n", apns_mock_chaos_name(f));
    apns_mock_stats ms;
    soak_run(&ch, n, &ms);
    if (ms.chaos[f] == 0)
      test__fail(__FILE__, __LINE__, "chaos seed %llu: fault %s never came up", (unsigned long long)ch.seed,
                 apns_mock_chaos_name(f));
  }
}

/* One test per fault (each gets the runner's time limit: under valgrind a connection costs seconds). Connection
 * faults at 0.5 % of 1 500 requests (3 % of 150 under valgrind), stream faults at 3 % (of 300 under valgrind). */
static void conn_fault(int f) {
  int vg = test_time_factor() > 1;
  each_fault_alone(f, f, vg ? 30000 : 5000, vg ? 150 : 1500);
}

static void stream_fault(int f) {
  each_fault_alone(f, f, 30000, test_time_factor() > 1 ? 300 : 1500);
}

TEST(chaos_fault_drop) {
  conn_fault(APNS_MOCK_CHAOS_DROP);
}

TEST(chaos_fault_drop_write) {
  conn_fault(APNS_MOCK_CHAOS_DROP_WRITE);
}

TEST(chaos_fault_goaway_drop) {
  conn_fault(APNS_MOCK_CHAOS_GOAWAY_DROP);
}

TEST(chaos_fault_goaway_low) {
  conn_fault(APNS_MOCK_CHAOS_GOAWAY_LOW);
}

TEST(chaos_fault_silent) {
  conn_fault(APNS_MOCK_CHAOS_SILENT);
}

TEST(chaos_fault_garbage) {
  conn_fault(APNS_MOCK_CHAOS_GARBAGE);
}

TEST(chaos_fault_limit) {
  conn_fault(APNS_MOCK_CHAOS_LIMIT);
}

TEST(chaos_fault_window) {
  conn_fault(APNS_MOCK_CHAOS_WINDOW);
}

TEST(chaos_fault_refuse) {
  stream_fault(APNS_MOCK_CHAOS_REFUSE);
}

TEST(chaos_fault_500) {
  stream_fault(APNS_MOCK_CHAOS_500);
}

TEST(chaos_fault_503) {
  stream_fault(APNS_MOCK_CHAOS_503);
}

TEST(chaos_fault_429) {
  stream_fault(APNS_MOCK_CHAOS_429);
}

TEST(chaos_fault_hold) {
  stream_fault(APNS_MOCK_CHAOS_HOLD);
}

TEST(chaos_fault_trickle) {
  stream_fault(APNS_MOCK_CHAOS_TRICKLE);
}

/* Every fault at once, the default rates, a fixed list of seeds: 60 000 notifications in all (2 000 under
 * valgrind). */
TEST(chaos_soak_pool) {
  static const uint64_t seeds[] = {1, 20261201, 77777, 4242, 31337};
  const int nseeds = (int)(sizeof seeds / sizeof seeds[0]);
  int per = test_time_factor() > 1 ? 400 : 60000 / nseeds;
  uint64_t faults = 0;
  const char *one = getenv("APNS_CHAOS_SEED");
  for (int i = 0; i < nseeds; i++) {
    apns_mock_chaos ch;
    apns_mock_chaos_defaults(&ch, one && *one ? env_seed(0) : seeds[i]);
    apns_mock_stats ms;
    soak_run(&ch, per, &ms);
    for (int f = 0; f < APNS_MOCK_CHAOS_COUNT; f++) faults += ms.chaos[f];
    if (one && *one) break;
  }
  ASSERT_GT(faults, 10); /* chaos happened */
}

/* APNS_SOAK_SECONDS=S: runs of 200 000 with time-based seeds until S seconds have passed; without it, one small
 * run so that the test is never empty. */
TEST(chaos_soak_long) {
  const char *e = getenv("APNS_SOAK_SECONDS");
  long secs = e && *e ? atol(e) : 0;
  uint64_t t0 = now_ms();
  int runs = 0;
  do {
    apns_mock_chaos ch;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    apns_mock_chaos_defaults(&ch, env_seed((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec));
    soak_run(&ch, secs > 0 ? 200000 : (test_time_factor() > 1 ? 200 : 2000), NULL);
    runs++;
  } while (secs > 0 && now_ms() - t0 < (uint64_t)secs * 1000);
  fprintf(stderr, "%d runs in %.1f s\n", runs, (double)(now_ms() - t0) / 1000.0);
  ASSERT_GE(runs, 1);
}

/* ---- through apns-push ---- */

static const char *push_bin(void) {
  const char *b = getenv("APNS_PUSH_BIN");
  return b && *b ? b : APNS_PUSH_BIN_DEFAULT;
}

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  ASSERT_NOT_NULL(f);
  ASSERT_EQ(fseek(f, 0, SEEK_END), 0);
  long n = ftell(f);
  ASSERT_GE(n, 0);
  rewind(f);
  char *p = malloc((size_t)n + 1);
  ASSERT_NOT_NULL(p);
  ASSERT_EQ(fread(p, 1, (size_t)n, f), (size_t)n);
  p[n] = '\0';
  fclose(f);
  return p;
}

/* n bulk lines through apns-push (its own pool, default connect rate 4/s) against the chaos mock. apns-push has
 * no PING settings (15 s idle, 5 s timeout), so "silent" is left to the pool soak. */
static void push_soak(uint64_t seed, int n) {
  soak s;
  memset(&s, 0, sizeof s);
  s.seed = seed;
  fprintf(stderr, "chaos seed %llu: %d notifications through apns-push\n", (unsigned long long)seed, n);
  char dir[600], path[700], results[700], errpath[700];
  snprintf(dir, sizeof dir, "%s/certs", test_tmpdir());
  ASSERT_EQ(mkdir(dir, 0700), 0);
  fx_certs(&s.certs, 0);
  char err[256] = "";
  if (apns__certgen_write_dir(dir, &s.certs, err, sizeof err) != 0) test__fail(__FILE__, __LINE__, "%s", err);
  snprintf(path, sizeof path, "%s/in.jsonl", test_tmpdir());
  snprintf(results, sizeof results, "%s/results.jsonl", test_tmpdir());
  snprintf(errpath, sizeof errpath, "%s/stderr.txt", test_tmpdir());
  FILE *f = fopen(path, "w");
  ASSERT_NOT_NULL(f);
  for (int i = 0; i < n; i++) fprintf(f, "{\"token\":\"%s\"}\n", TOKEN);
  ASSERT_EQ(fclose(f), 0);

  ASSERT_EQ(uv_loop_init(&s.loop), 0);
  fx_mock_options(&s.mo, &s.certs, 1);
  apns_mock_chaos_defaults(&s.mo.chaos, seed);
  s.mo.chaos.rate[APNS_MOCK_CHAOS_SILENT] = 0;
  s.mo.chaos.hold_ms = 500;
  s.mock = fx_mock_start(&s.loop, &s.mo);
  char hostport[64], ca[700], cert[700], key[700], timeout[32];
  snprintf(hostport, sizeof hostport, "127.0.0.1:%d", apns_mock_port(s.mock));
  snprintf(ca, sizeof ca, "%s/ca.pem", dir);
  snprintf(cert, sizeof cert, "%s/client.pem", dir);
  snprintf(key, sizeof key, "%s/client-key.pem", dir);
  snprintf(timeout, sizeof timeout, "%d", 300 * test_time_factor());
  const char *argv[] = {
      push_bin(),        "--host", hostport, "--verify-name", "localhost", "--ca",    ca,   "--topic",
      "com.example.app", "--cert", cert,     "--key",         key,         "--alert", "hi", "--timeout",
      timeout,           "--bulk", path,     "--results",     results,     NULL};
  int efd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  ASSERT_GE(efd, 0);
  fx_child c = {0};
  c.stderr_fd = efd;
  uint64_t t0 = now_ms();
  int rv = fx_child_try_start(&c, &s.loop, argv);
  close(efd);
  if (rv != 0) SOAK_FAIL(&s, "spawn %s: %s", argv[0], uv_strerror(rv));
  fx_run_until(&s.loop, &c.done);
  double elapsed = (double)(now_ms() - t0) / 1000.0;
  apns_mock_stats ms;
  apns_mock_get_stats(s.mock, &ms);
  char line[2048];
  apns_mock_format_stats(&ms, line, sizeof line);
  fprintf(stderr, "chaos seed %llu: %.1f s, %s\n", (unsigned long long)seed, elapsed, line);
  char *errtext = slurp(errpath);
  if (c.term_signal) SOAK_FAIL(&s, "apns-push died of signal %d:\n%s", c.term_signal, errtext);

  /* Every line ended exactly once, as a JSON line; each accepted, or refused for good by 429. */
  int *seen = calloc((size_t)n + 1, sizeof *seen);
  ASSERT_NOT_NULL(seen);
  char *text = slurp(results), *p = text;
  int lines = 0, refused = 0;
  while (*p) {
    char *nl = strchr(p, '\n');
    if (nl == NULL) SOAK_FAIL(&s, "a result line without its newline: %.200s", p);
    *nl = '\0';
    json_error_t je;
    json_t *j = json_loads(p, 0, &je);
    if (j == NULL) SOAK_FAIL(&s, "a result line is not JSON (%s): %.200s", je.text, p);
    json_int_t ln = json_integer_value(json_object_get(j, "line"));
    json_int_t st = json_integer_value(json_object_get(j, "status"));
    if (ln < 1 || ln > n) SOAK_FAIL(&s, "a result for no line: %.200s", p);
    if (++seen[ln] != 1) SOAK_FAIL(&s, "line %lld ended %d times", (long long)ln, seen[ln]);
    if (st == 429)
      refused++;
    else if (st != 200)
      SOAK_FAIL(&s, "line %lld not accepted: %.300s", (long long)ln, p);
    json_decref(j);
    lines++;
    p = nl + 1;
  }
  if (lines != n) SOAK_FAIL(&s, "%d result lines for %d notifications:\n%s", lines, n, errtext);
  if ((uint64_t)refused > ms.chaos[APNS_MOCK_CHAOS_429])
    SOAK_FAIL(&s, "%d lines got 429, the mock made %llu", refused, (unsigned long long)ms.chaos[APNS_MOCK_CHAOS_429]);
  if (c.status != (refused ? 1 : 0)) SOAK_FAIL(&s, "exit %d with %d refused:\n%s", (int)c.status, refused, errtext);
  /* apns-push's pool: 2 connections, a token bucket of max(2, 4) refilled 4 a second (the default rate), and
   * rotations on top. */
  double limit = 4 * (elapsed + 1.0) + rotations_allowed(&ms);
  if ((double)ms.connections > limit)
    SOAK_FAIL(&s, "%llu connections in %.1f s: more than %.0f", (unsigned long long)ms.connections, elapsed, limit);
  free(text);
  free(errtext);
  free(seen);
  fx_child_free(&c);
  fx_mock_stop_and_close_loop(&s.loop, s.mock);
  apns__certgen_free(&s.certs);
}

TEST(chaos_soak_push) {
  push_soak(env_seed(9001), test_time_factor() > 1 ? 500 : 20000);
}

/* ---- the command's flag ---- */

static const char *mock_bin(void) {
  const char *b = getenv("APNS_MOCK_BIN");
  return b && *b ? b : APNS_MOCK_BIN_DEFAULT;
}

/* The port line means the mock is up (the seed line went to stderr before it): stop it. */
static void mock_stop_when_up(fx_child *c, int from_stderr, const char *p, size_t n) {
  int *killed = c->data;
  (void)p, (void)n;
  if (from_stderr || *killed || c->exited) return;
  if (strstr(fx_child_out(c), "usage:") == NULL && strchr(fx_child_out(c), '\n') != NULL) {
    *killed = 1;
    ASSERT_EQ(uv_process_kill(&c->proc, SIGTERM), 0);
  }
}

/* Runs apns-mock with args; stderr into the file errpath, stdout into out (when not NULL, out_len bytes). Returns
 * the exit status. */
static int run_mock(const char *const *args, const char *errpath, char *out, size_t out_len) {
  const char *argv[16];
  int n = 0, killed = 0;
  argv[n++] = mock_bin();
  while (args[n - 1] != NULL) {
    argv[n] = args[n - 1];
    n++;
  }
  argv[n] = NULL;
  fx_child c = {0};
  c.stderr_fd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  ASSERT_GE(c.stderr_fd, 0);
  c.on_output = mock_stop_when_up;
  c.data = &killed;
  int status = fx_child_run(&c, argv);
  close(c.stderr_fd);
  if (out != NULL) snprintf(out, out_len, "%s", fx_child_out(&c));
  fx_child_free(&c);
  return status;
}

TEST(chaos_mock_flag_prints_seed) {
  char errpath[700];
  snprintf(errpath, sizeof errpath, "%s/mock-stderr.txt", test_tmpdir());
  ASSERT_EQ(
      run_mock((const char *const[]){"--no-tls", "--chaos", "1234567,drop=0,hold-ms=10", NULL}, errpath, NULL, 0), 0);
  char *e = slurp(errpath);
  if (strstr(e, "apns-mock: chaos seed 1234567 (replay: --chaos 1234567)\n") == NULL)
    test__fail(__FILE__, __LINE__, "no seed line in:\n%s", e);
  free(e);
  /* A bad spec is a usage error naming what is wrong. */
  ASSERT_EQ(run_mock((const char *const[]){"--no-tls", "--chaos", "5,bogus=3", NULL}, errpath, NULL, 0), 2);
  e = slurp(errpath);
  if (strstr(e, "apns-mock: --chaos: no such fault: bogus\n") == NULL)
    test__fail(__FILE__, __LINE__, "no complaint in:\n%s", e);
  free(e);
  char help[16384];
  ASSERT_EQ(run_mock((const char *const[]){"--help", NULL}, errpath, help, sizeof help), 0);
  ASSERT_TRUE(strstr(help, "  --chaos SEED[,RATE][,FAULT=RATE...][,hold-ms=MS]\n") != NULL);
  ASSERT_TRUE(strstr(help, "The\n                            seed is printed on stderr at start") != NULL);
}

TEST_SUITE(chaos){
    TEST_ENTRY(chaos_parse_and_replay),  TEST_ENTRY(chaos_mock_flag_prints_seed),
    TEST_ENTRY(chaos_fault_drop),        TEST_ENTRY(chaos_fault_drop_write),
    TEST_ENTRY(chaos_fault_goaway_drop), TEST_ENTRY(chaos_fault_goaway_low),
    TEST_ENTRY(chaos_fault_silent),      TEST_ENTRY(chaos_fault_garbage),
    TEST_ENTRY(chaos_fault_limit),       TEST_ENTRY(chaos_fault_window),
    TEST_ENTRY(chaos_fault_refuse),      TEST_ENTRY(chaos_fault_500),
    TEST_ENTRY(chaos_fault_503),         TEST_ENTRY(chaos_fault_429),
    TEST_ENTRY(chaos_fault_hold),        TEST_ENTRY(chaos_fault_trickle),
    TEST_ENTRY(chaos_soak_pool),         TEST_ENTRY(chaos_soak_push),
    TEST_ENTRY(chaos_soak_long),         TEST_SUITE_END,
};
