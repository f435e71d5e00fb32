/* The chaos soak: apns_pool against apns-mock's seeded fault mode (--chaos, tools/apns-mock/mock_chaos.h) over real
 * TLS on 127.0.0.1, many notifications, and the library's promises checked at the end: every request ended exactly
 * once; every request the server did not refuse for good (429 here) was accepted, retries allowed and the deadline
 * generous; nothing leaked; no callback ran inside apns_pool_post; connects per second within the pool's limit
 * (graceful GOAWAY rotations aside); and,
 * in the runs that keep a steady window of requests outstanding, memory flat from the first half to the second
 * (check_flat: live bytes through the counting allocator in every build, RSS in the plain one).
 * Every failure message names the seed, and the seed is printed at the start of each run; replay it with
 * APNS_CHAOS_SEED=N build/test/apns-tests chaos_soak_pool (or apns-mock --chaos N).
 *
 * The normal suite runs a fixed list of seeds (reproducible). APNS_SOAK_SECONDS=S runs chaos_soak_long: runs of
 * 200 000 notifications with time-based seeds until S seconds have passed (raise APNS_TEST_TIMEOUT to match). */
#include "fixture.h"

#include "mock_chaos.h"
#include "pool.h"

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

/* Memory over a run, at SOAK_SAMPLES intervals of completed requests: the peak of the bytes the counting
 * allocator has live in the interval (libapns, nghttp2, jansson, the mock) less those the pool's sessions keep in
 * their caches of freed blocks (apns__pool_cached_bytes: held for reuse, not in use, and bounded by each session's
 * recent working set, which test_h2's blocks tests pin), that peak of the caches, and the process's RSS at the
 * interval's end. */
#define SOAK_SAMPLES 20
typedef struct {
  int done;
  size_t live_peak;
  size_t cached_peak;
  size_t rss;
} mem_sample;

typedef struct tag tag;

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
  /* window > 0: at most that many requests outstanding, the next posted as one ends (a steady state, whose memory
   * must stay flat); 0: all n posted at once (the queue's worst case). */
  int n, posted, window;
  apns_request req;
  tag *tags;
  mem_sample samples[SOAK_SAMPLES];
  int nsamples;
  size_t live_peak;
  size_t cached_peak;
} soak;

struct tag {
  soak *s;
  int index;
};

#define SOAK_FAIL(s, ...)                                                                                            \
  do {                                                                                                               \
    char soak__m[512];                                                                                               \
    snprintf(soak__m, sizeof soak__m, __VA_ARGS__);                                                                  \
    test__fail(__FILE__, __LINE__, "chaos seed %llu: %s (replay: APNS_CHAOS_SEED=%llu)",                             \
               (unsigned long long)(s)->seed, soak__m, (unsigned long long)(s)->seed);                               \
  } while (0)

static void soak_fail_post(soak *s, int i, int rv);
static void on_done(int err, const apns_response *res, void *data);
static size_t rss_bytes(void);

/* Posts until n are posted or window are outstanding. */
static void post_more(soak *s) {
  while (s->posted < s->n && (s->window == 0 || s->posted - s->done < s->window)) {
    int i = s->posted++;
    s->tags[i].s = s;
    s->tags[i].index = i;
    s->in_post = 1;
    int rv = apns_pool_post(s->pool, &s->req, on_done, &s->tags[i]);
    s->in_post = 0;
    if (rv != 0) soak_fail_post(s, i, rv);
  }
}

/* The resident set, from /proc/self/statm; 0 when unknown. */
static size_t rss_bytes(void) {
  unsigned long size = 0, resident = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (f == NULL) return 0;
  if (fscanf(f, "%lu %lu", &size, &resident) != 2) resident = 0;
  fclose(f);
  return (size_t)resident * (size_t)sysconf(_SC_PAGESIZE);
}

static void on_done(int err, const apns_response *res, void *data) {
  tag *t = data;
  soak *s = t->s;
  if (s->in_post) s->cb_inside_post++;
  outcome *o = &s->out[t->index];
  o->calls++;
  o->err = err;
  o->status = res->status;
  s->done++;
  size_t cached = apns__pool_cached_bytes(s->pool), live = test_alloc_live_bytes();
  live = live > cached ? live - cached : 0;
  if (live > s->live_peak) s->live_peak = live;
  if (cached > s->cached_peak) s->cached_peak = cached;
  if (s->nsamples < SOAK_SAMPLES && s->done == (s->nsamples + 1) * (s->n / SOAK_SAMPLES)) {
    mem_sample *m = &s->samples[s->nsamples++];
    m->done = s->done;
    m->live_peak = s->live_peak;
    m->cached_peak = s->cached_peak;
    m->rss = rss_bytes();
    s->live_peak = s->cached_peak = 0;
  }
  if (s->window > 0) post_more(s);
}

static void soak_fail_post(soak *s, int i, int rv) {
  SOAK_FAIL(s, "apns_pool_post %d: %s", i, apns_strerror(rv));
}

/* Memory stays flat over a steady run: the second half's peak is not above the first half's (which holds the
 * warm-up) by more than a half and a fixed slack, for the counting allocator's live bytes always, and for RSS in
 * the plain build only: AddressSanitizer's quarantine keeps freed memory resident on purpose (RSS grows until it
 * is full, about 256 MiB), and valgrind's RSS is its own. The live bytes swing with the chaos (4 to 8 MB over a run
 * of 200 000 with 1000 outstanding: held answers, queues while connections are down), hence the margin: it still
 * catches a leak of about 40 bytes a request over 200 000 (chaos_soak_long, the CI soak), 400 over 12 000. */
static int rss_meaningful(void) {
#if defined(__SANITIZE_ADDRESS__)
  return 0;
#else
  return test_time_factor() == 1;
#endif
}

static int size_cmp(const void *a, const void *b) {
  size_t x = *(const size_t *)a, y = *(const size_t *)b;
  return x < y ? -1 : x > y;
}

/* The middle of the interval peaks from..to (upper median): a trend moves it, one interval's spike does not. */
static size_t half_median(const mem_sample *samples, int from, int to, int rss) {
  size_t v[SOAK_SAMPLES];
  int k = 0;
  for (int i = from; i < to && k < SOAK_SAMPLES; i++) v[k++] = rss ? samples[i].rss : samples[i].live_peak;
  qsort(v, (size_t)k, sizeof v[0], size_cmp);
  return k ? v[k / 2] : 0;
}

/* The verdict on n samples: NULL when flat, else why not (in why). Each half is judged by the median of its
 * interval peaks, so that one interval's spike (a burst of held answers, a queue while connections are down: one
 * run of 200 000 peaked at 9.2 MB once between samples of 3 to 6) is not taken for growth, while a leak, which
 * raises every later sample, is; and by its peak, against a runaway, with a wider bound. */
static const char *flat_violation(const mem_sample *samples, int n, int check_rss, char *why, size_t cap) {
  size_t live[2] = {0, 0}, rss[2] = {0, 0};
  for (int i = 0; i < n; i++) {
    int h = i >= n / 2;
    if (samples[i].live_peak > live[h]) live[h] = samples[i].live_peak;
    if (samples[i].rss > rss[h]) rss[h] = samples[i].rss;
  }
  if (n < 4) return NULL;
  size_t lm[2] = {half_median(samples, 0, n / 2, 0), half_median(samples, n / 2, n, 0)};
  size_t rm[2] = {half_median(samples, 0, n / 2, 1), half_median(samples, n / 2, n, 1)};
  if (lm[1] > lm[0] + lm[0] / 2 + 512 * 1024 || live[1] > 2 * live[0] + 1024 * 1024) {
    snprintf(why, cap, "live bytes grew: median %zu then %zu, peak %zu in the first half, %zu in the second", lm[0],
             lm[1], live[0], live[1]);
    return why;
  }
  if (check_rss && rm[0] > 0 &&
      (rm[1] > rm[0] + rm[0] / 2 + 8 * 1024 * 1024 || rss[1] > 2 * rss[0] + 16 * 1024 * 1024)) {
    snprintf(why, cap, "RSS grew: median %zu then %zu KiB, peak %zu KiB in the first half, %zu KiB in the second",
             rm[0] / 1024, rm[1] / 1024, rss[0] / 1024, rss[1] / 1024);
    return why;
  }
  snprintf(why, cap, "memory flat: live median %zu then %zu, peak %zu then %zu bytes; rss peak %zu then %zu KiB%s",
           lm[0], lm[1], live[0], live[1], rss[0] / 1024, rss[1] / 1024,
           check_rss ? "" : " (RSS not checked in this build)");
  return NULL;
}

static void check_flat(soak *s) {
  char why[256] = "";
  for (int i = 0; i < s->nsamples; i++) {
    const mem_sample *m = &s->samples[i];
    fprintf(stderr, "  after %6d: live %8zu bytes, cached %7zu (peaks of the interval), rss %7zu KiB\n", m->done,
            m->live_peak, m->cached_peak, m->rss / 1024);
  }
  if (flat_violation(s->samples, s->nsamples, rss_meaningful(), why, sizeof why)) SOAK_FAIL(s, "%s", why);
  fprintf(stderr, "chaos seed %llu: %s\n", (unsigned long long)s->seed, why);
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

static void soak_run(const apns_mock_chaos *ch, int n, int window, apns_mock_stats *ms_out) {
  static soak s; /* large (its samples) and found by the callbacks */
  memset(&s, 0, sizeof s);
  s.seed = ch->seed;
  s.n = n;
  s.window = window;
  s.live_before = test_alloc_live();
  fprintf(stderr, "chaos seed %llu: %d notifications%s\n", (unsigned long long)s.seed, n,
          window ? ", a steady window" : ", all posted at once");
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

  fx_request(&s.req, TOKEN, 300000 * (uint64_t)test_time_factor()); /* generous: retries have all the time */
  s.tags = tags;
  post_more(&s);
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
  if (window) check_flat(&s);
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

/* The steady window of a run of n: 1000 outstanding, fewer for small runs (a tenth). */
static int soak_window(int n) {
  return n >= 10000 ? 1000 : n / 10 > 0 ? n / 10 : 1;
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
    soak_run(&ch, n, 0, &ms);
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

/* The flatness check can fail: samples of a leak of 100 bytes a request over 200 000 (1000 outstanding), and of
 * an RSS that grows 4 MiB every 10 000, are refused; swings like those of a real run are not. */
TEST(chaos_memory_growth_caught) {
  mem_sample m[SOAK_SAMPLES];
  char why[256];
  for (int i = 0; i < SOAK_SAMPLES; i++) {
    m[i].done = (i + 1) * 10000;
    m[i].live_peak = 4000000 + (size_t)(i % 3) * 1500000; /* 4 to 7 MB, no trend */
    m[i].rss = 16u << 20;
  }
  ASSERT_NULL(flat_violation(m, SOAK_SAMPLES, 1, why, sizeof why));
  m[SOAK_SAMPLES - 3].live_peak = 9300000; /* one interval's spike, as seen once under ASan: not growth */
  ASSERT_NULL(flat_violation(m, SOAK_SAMPLES, 1, why, sizeof why));
  m[SOAK_SAMPLES - 3].live_peak = 16000000; /* a runaway, even once */
  ASSERT_NOT_NULL(flat_violation(m, SOAK_SAMPLES, 1, why, sizeof why));
  for (int i = 0; i < SOAK_SAMPLES; i++) m[i].live_peak = 4000000 + (size_t)m[i].done * 40; /* 40 bytes a request */
  ASSERT_NOT_NULL(flat_violation(m, SOAK_SAMPLES, 1, why, sizeof why));
  ASSERT_TRUE(strstr(why, "live bytes grew") != NULL);
  for (int i = 0; i < SOAK_SAMPLES; i++) {
    m[i].live_peak = 4000000;
    m[i].rss = (size_t)(16 + 4 * i) << 20; /* 4 MiB more every 10 000 */
  }
  ASSERT_NOT_NULL(flat_violation(m, SOAK_SAMPLES, 1, why, sizeof why));
  ASSERT_TRUE(strstr(why, "RSS grew") != NULL);
  ASSERT_NULL(flat_violation(m, SOAK_SAMPLES, 0, why, sizeof why)); /* under ASan RSS is not judged */
}

static void trickle_pool_closed(apns_pool *p) {
  (*(int *)apns_pool_data(p))++;
}

/* Trickle spreads the answer over time, a one-byte DATA frame every 5 ms: a 400 with its 27-byte reason takes at
 * least 26 ticks, and the request's deadline still rules: one shorter than the trickle ends in APNS_ETIMEDOUT, its
 * stream reset while the mock still had bytes to send (the mock then sends no more for it). */
TEST(chaos_trickle_spread_over_time) {
  uv_loop_t loop;
  apns__certgen_result certs;
  apns_mock_options mo;
  apns_pool_options o;
  apns_pool *pool = NULL;
  fx_rec slow, cut;
  int done = 0, closed = 0;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  fx_certs(&certs, 0);
  fx_mock_options(&mo, &certs, 0);
  mo.bad_prefix = "bad";
  apns_mock_chaos_defaults(&mo.chaos, 7);
  memset(mo.chaos.rate, 0, sizeof mo.chaos.rate);
  mo.chaos.rate[APNS_MOCK_CHAOS_TRICKLE] = 1000000; /* every stream */
  apns_mock *mock = fx_mock_start(&loop, &mo);
  apns_pool_options_init(&o);
  o.host = "127.0.0.1";
  o.port = (uint16_t)apns_mock_port(mock);
  o.connections = 1;
  o.data = &closed;
  apns_tls_options o_tls;
  o.tls = fx_tls_client(&o_tls, &certs);
  ASSERT_OK(apns_pool_open(&loop, &pool, &o, NULL, 0));
  /* Connected first, so that the time measured is the answer's. */
  apns_request r;
  fx_rec warm;
  memset(&warm, 0, sizeof warm);
  warm.counter = &done;
  fx_request(&r, TOKEN, 20000);
  ASSERT_OK(apns_pool_post(pool, &r, fx_record, &warm));
  fx_run_until_count(&loop, &done, 1);
  ASSERT_EQ(warm.status, 200); /* no body: nothing to trickle */

  memset(&slow, 0, sizeof slow);
  memset(&cut, 0, sizeof cut);
  slow.counter = cut.counter = &done;
  slow.loop = cut.loop = &loop;
  uv_update_time(&loop);
  uint64_t t0 = uv_now(&loop);
  fx_request(&r, "bad0" TOKEN, 20000);
  ASSERT_OK(apns_pool_post(pool, &r, fx_record, &slow));
  fx_request(&r, "bad1" TOKEN, 40);
  ASSERT_OK(apns_pool_post(pool, &r, fx_record, &cut));
  fx_run_until_count(&loop, &done, 3);
  ASSERT_OK(slow.err);
  ASSERT_EQ(slow.status, 400);
  ASSERT_EQ(slow.reason, APNS_REASON_BadDeviceToken);
  printf("the trickled 400 took %" PRIu64 " ms\n", slow.t_end - t0);
  ASSERT_GE(slow.t_end - t0, 26 * 5 - 5);
  ASSERT_ERR(cut.err, APNS_ETIMEDOUT);
  ASSERT_LT(cut.t_end - t0, slow.t_end - t0);

  apns_mock_stats ms;
  apns_mock_get_stats(mock, &ms);
  ASSERT_GE(ms.chaos[APNS_MOCK_CHAOS_TRICKLE], 2);
  ASSERT_OK(apns_pool_close(pool, 0, trickle_pool_closed));
  fx_run_until(&loop, &closed);
  fx_mock_stop_and_close_loop(&loop, mock);
  apns__certgen_free(&certs);
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
    /* The first seeds post everything at once (the queue's worst case), the others keep a steady window and
     * check that memory stays flat. */
    soak_run(&ch, per, i >= 2 ? soak_window(per) : 0, &ms);
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
    int n = secs > 0 ? 200000 : (test_time_factor() > 1 ? 200 : 2000);
    soak_run(&ch, n, soak_window(n), NULL);
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
  test_secrets_assert_absent("apns-push's stderr", errtext); /* APNS_TEST_SECRETS=1: its keys are recorded */

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
  test_secrets_assert_absent("apns-mock's stderr", e);
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
    TEST_ENTRY(chaos_parse_and_replay),
    TEST_ENTRY(chaos_mock_flag_prints_seed),
    TEST_ENTRY(chaos_fault_drop),
    TEST_ENTRY(chaos_fault_drop_write),
    TEST_ENTRY(chaos_fault_goaway_drop),
    TEST_ENTRY(chaos_fault_goaway_low),
    TEST_ENTRY(chaos_fault_silent),
    TEST_ENTRY(chaos_fault_garbage),
    TEST_ENTRY(chaos_fault_limit),
    TEST_ENTRY(chaos_fault_window),
    TEST_ENTRY(chaos_fault_refuse),
    TEST_ENTRY(chaos_fault_500),
    TEST_ENTRY(chaos_fault_503),
    TEST_ENTRY(chaos_fault_429),
    TEST_ENTRY(chaos_fault_hold),
    TEST_ENTRY(chaos_fault_trickle),
    TEST_ENTRY(chaos_trickle_spread_over_time),
    TEST_ENTRY(chaos_memory_growth_caught),
    TEST_ENTRY(chaos_soak_pool),
    TEST_ENTRY(chaos_soak_push),
    TEST_ENTRY(chaos_soak_long),
    TEST_SUITE_END,
};
