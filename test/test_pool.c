/* apns_pool against apns-mock over real TLS on 127.0.0.1: queueing, retries, faults, back-pressure, close. */
#include "fixture.h"

#include "alloc.h"
#include "conn.h"
#include "h2.h"
#include "pool.h"
#include "tls.h"

#include <stdlib.h>

#define TOKEN "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

typedef struct {
  uv_loop_t loop;
  apns__certgen_result certs;
  apns_mock_options mo;
  apns_mock *mock;
  apns_pool *pool;
  int done;
  int closed;
  int done_at_close;
  int low_water_calls;
  int retries, ups, downs;
  int learned, late_retries; /* the pool knew a request limit; retries after that */
  int goaway_once;           /* at the first connection sent away, the mock stops sending GOAWAY */
  long live_before;
} fx;

static void on_event(apns_pool *p, const apns_pool_event *ev) {
  fx *f = apns_pool_data(p);
  apns_pool_stats st;
  apns_pool_get_stats(p, &st, sizeof st);
  if (st.request_limit != 0) f->learned = 1;
  if (ev->type == APNS_POOL_EVENT_RETRY && f->learned) f->late_retries++;
  if (ev->type == APNS_POOL_EVENT_CONN_DOWN && f->goaway_once) apns_mock_set_goaway_after(f->mock, 0);
  if (ev->type == APNS_POOL_EVENT_RETRY) f->retries++;
  if (ev->type == APNS_POOL_EVENT_CONN_UP) f->ups++;
  if (ev->type == APNS_POOL_EVENT_CONN_DOWN) f->downs++;
}

static void on_low_water(apns_pool *p) {
  fx *f = apns_pool_data(p);
  f->low_water_calls++;
}

static void on_closed(apns_pool *p) {
  fx *f = apns_pool_data(p);
  f->closed++;
  f->done_at_close = f->done;
}

static void setup(fx *f) {
  memset(f, 0, sizeof *f);
  f->live_before = test_alloc_live();
  ASSERT_EQ(uv_loop_init(&f->loop), 0);
  fx_certs(&f->certs, 0);
  fx_mock_options(&f->mo, &f->certs, 1);
}

static void open_pool(fx *f, apns_pool_options *extra) {
  apns_pool_options o;
  apns_tls_options tlso = APNS_TLS_OPTIONS_INIT;
  char err[256] = "";
  if (extra)
    o = *extra;
  else
    apns_pool_options_init(&o);
  f->mock = fx_mock_start(&f->loop, &f->mo);
  o.host = "127.0.0.1";
  o.port = (uint16_t)apns_mock_port(f->mock);
  o.tls = fx_tls_client(&tlso, &f->certs);
  o.on_event = on_event;
  if (o.max_queued) o.on_low_water = on_low_water;
  o.data = f;
  int rv = apns_pool_open(&f->loop, &f->pool, &o, err, sizeof err);
  if (rv != 0) test__fail(__FILE__, __LINE__, "apns_pool_open: %s (%s)", apns_strerror(rv), err);
}

static void close_pool(fx *f, uint64_t drain_ms) {
  ASSERT_OK(apns_pool_close(f->pool, drain_ms, on_closed));
  fx_run_until(&f->loop, &f->closed);
}

static void teardown(fx *f) {
  if (!f->closed) close_pool(f, 0);
  ASSERT_EQ(f->closed, 1);
  fx_mock_stop_and_close_loop(&f->loop, f->mock);
  apns__certgen_free(&f->certs);
  ASSERT_EQ(test_alloc_live(), f->live_before);
}

static void set_flag(uv_timer_t *t) {
  *(int *)t->data = 1;
}

static int post(fx *f, fx_rec *rec, const char *token, uint64_t timeout_ms) {
  apns_request r;
  fx_request(&r, token, timeout_ms);
  rec->counter = &f->done;
  rec->loop = &f->loop;
  return apns_pool_post(f->pool, &r, fx_record, rec);
}

TEST(pool_hundred_thousand) {
  fx f;
  apns_pool_options o;
  enum { N = 100000 };
  fx_rec *recs = calloc(N, sizeof *recs);
  setup(&f);
  apns_pool_options_init(&o);
  o.connections = 4;
  open_pool(&f, &o);
  for (int i = 0; i < N; i++) ASSERT_OK(post(&f, &recs[i], TOKEN, 60000));
  ASSERT_EQ(f.done, 0);
  fx_run_until_count(&f.loop, &f.done, N);
  for (int i = 0; i < N; i++) {
    ASSERT_EQ(recs[i].calls, 1);
    ASSERT_EQ(recs[i].status, 200);
  }
  apns_pool_stats st;
  apns_pool_get_stats(f.pool, &st, sizeof st);
  ASSERT_EQ(st.queued, 0);
  ASSERT_EQ(st.in_flight, 0);
  ASSERT_EQ(st.accepted, N);
  ASSERT_EQ(st.posted, N);
  ASSERT_EQ(st.connections_up, 4);
  apns_mock_stats ms;
  apns_mock_get_stats(f.mock, &ms);
  ASSERT_EQ(ms.connections, 4); /* all four connections carried the load */
  teardown(&f);
  free(recs);
}

TEST(pool_drops_retried_and_accepted) {
  fx f;
  apns_pool_options o;
  enum { N = 2000 };
  static fx_rec recs[N];
  setup(&f);
  f.mo.drop_after = 150;
  apns_pool_options_init(&o);
  o.connections = 2;
  o.reconnect_min_delay_ms = 1;
  o.max_connects_per_sec = 1000;
  open_pool(&f, &o);
  for (int i = 0; i < N; i++) ASSERT_OK(post(&f, &recs[i], TOKEN, 30000));
  fx_run_until_count(&f.loop, &f.done, N);
  int multi = 0;
  for (int i = 0; i < N; i++) {
    ASSERT_EQ(recs[i].calls, 1);
    ASSERT_OK(recs[i].err);
    ASSERT_EQ(recs[i].status, 200);
    if (recs[i].attempts > 1) multi++;
  }
  ASSERT_GT(multi, 0);
  ASSERT_GT(f.retries, 0);
  apns_mock_stats ms;
  apns_mock_get_stats(f.mock, &ms);
  ASSERT_GT(ms.drops, 1);
  teardown(&f);
}

TEST(pool_never_resend_unknown) {
  fx f;
  apns_pool_options o;
  enum { N = 400 };
  static fx_rec recs[N];
  setup(&f);
  f.mo.drop_after = 100;
  apns_pool_options_init(&o);
  o.connections = 1;
  o.never_resend_unknown = 1;
  o.reconnect_min_delay_ms = 1;
  open_pool(&f, &o);
  for (int i = 0; i < N; i++) ASSERT_OK(post(&f, &recs[i], TOKEN, 30000));
  fx_run_until_count(&f.loop, &f.done, N);
  int lost = 0;
  for (int i = 0; i < N; i++) {
    ASSERT_EQ(recs[i].calls, 1);
    if (recs[i].err) {
      ASSERT_ERR(recs[i].err, APNS_ECLOSED);
      ASSERT_EQ(recs[i].delivery, APNS_DELIVERY_UNKNOWN);
      ASSERT_EQ(recs[i].attempts, 1);
      lost++;
    }
  }
  ASSERT_GT(lost, 0);
  teardown(&f);
}

TEST(pool_goaway_retried_on_fresh_connection) {
  fx f;
  apns_pool_options o;
  enum { N = 600 };
  static fx_rec recs[N];
  setup(&f);
  f.mo.goaway_after = 50;
  apns_pool_options_init(&o);
  o.connections = 2;
  o.max_connects_per_sec = 1000;
  open_pool(&f, &o);
  for (int i = 0; i < N; i++) ASSERT_OK(post(&f, &recs[i], TOKEN, 30000));
  fx_run_until_count(&f.loop, &f.done, N);
  for (int i = 0; i < N; i++) {
    ASSERT_EQ(recs[i].calls, 1);
    ASSERT_EQ(recs[i].status, 200);
  }
  apns_mock_stats ms;
  apns_mock_get_stats(f.mock, &ms);
  ASSERT_GT(ms.goaways, 1);
  ASSERT_GT(ms.connections, 2);
  teardown(&f);
}

TEST(pool_stalled_server_times_out_queued) {
  fx f;
  enum { N = 20 };
  static fx_rec recs[N];
  setup(&f);
  f.mo.paused = 1;
  f.mo.max_streams = 2;
  open_pool(&f, NULL);
  uint64_t t0 = uv_now(&f.loop);
  for (int i = 0; i < N; i++) ASSERT_OK(post(&f, &recs[i], TOKEN, 300));
  fx_run_until_count(&f.loop, &f.done, N);
  for (int i = 0; i < N; i++) {
    ASSERT_EQ(recs[i].calls, 1);
    ASSERT_ERR(recs[i].err, APNS_ETIMEDOUT);
    ASSERT_GE(recs[i].t_end - t0, 300);                       /* not before the deadline */
    ASSERT_LT(recs[i].t_end - t0, 1500 * test_time_factor()); /* and not much after */
  }
  apns_pool_stats st;
  apns_pool_get_stats(f.pool, &st, sizeof st);
  ASSERT_EQ(st.timed_out, N);
  ASSERT_EQ(st.queued, 0);
  teardown(&f);
}

TEST(pool_queue_full_and_low_water) {
  fx f;
  apns_pool_options o;
  enum { N = 100 };
  static fx_rec recs[N];
  fx_rec extra = {0};
  setup(&f);
  f.mo.paused = 1;
  apns_pool_options_init(&o);
  o.connections = 1;
  o.max_queued = 40;
  o.low_water = 10;
  open_pool(&f, &o);
  /* Before any connection is up every post queues. */
  int accepted = 0;
  for (int i = 0; i < N; i++) {
    int rv = post(&f, &recs[i], TOKEN, 30000);
    if (rv == 0)
      accepted++;
    else
      ASSERT_ERR(rv, APNS_EQUEUEFULL);
  }
  ASSERT_EQ(accepted, 40);
  ASSERT_EQ(f.low_water_calls, 0);
  /* The connection comes up and takes the queue: low water is signalled. */
  while (f.low_water_calls == 0) ASSERT_NE(uv_run(&f.loop, UV_RUN_ONCE), 0);
  apns_pool_stats st;
  apns_pool_get_stats(f.pool, &st, sizeof st);
  ASSERT_LE(st.queued, 10);
  ASSERT_OK(post(&f, &extra, TOKEN, 30000));
  apns_mock_set_paused(f.mock, 0);
  fx_run_until_count(&f.loop, &f.done, accepted + 1);
  for (int i = 0; i < accepted; i++) ASSERT_EQ(recs[i].status, 200);
  ASSERT_EQ(f.low_water_calls, 1);
  teardown(&f);
}

TEST(pool_graceful_close_cancels_queue) {
  fx f;
  apns_pool_options o;
  enum { N = 10000 };
  fx_rec *recs = calloc(N, sizeof *recs);
  setup(&f);
  f.mo.paused = 1;
  f.mo.max_streams = 100;
  apns_pool_options_init(&o);
  o.connections = 2;
  open_pool(&f, &o);
  for (int i = 0; i < N; i++) ASSERT_OK(post(&f, &recs[i], TOKEN, 60000));
  while (1) {
    apns_pool_stats st;
    apns_pool_get_stats(f.pool, &st, sizeof st);
    if (st.in_flight == 200) break;
    ASSERT_NE(uv_run(&f.loop, UV_RUN_ONCE), 0);
  }
  uint64_t t0 = uv_now(&f.loop);
  ASSERT_OK(apns_pool_close(f.pool, 100, on_closed));
  ASSERT_ERR(apns_pool_close(f.pool, 100, on_closed), APNS_EBUSY);
  fx_rec late = {0};
  ASSERT_ERR(post(&f, &late, TOKEN, 1000), APNS_ECLOSED);
  ASSERT_EQ(f.done, 0);
  fx_run_until(&f.loop, &f.closed);
  ASSERT_GE(uv_now(&f.loop) - t0, 100); /* it waited for the drain time */
  ASSERT_EQ(f.done_at_close, N);
  int unwritten = 0;
  for (int i = 0; i < N; i++) {
    ASSERT_EQ(recs[i].calls, 1);
    ASSERT_ERR(recs[i].err, APNS_ECANCELED);
    if (recs[i].delivery == APNS_DELIVERY_NOT_PROCESSED) {
      ASSERT_EQ(recs[i].attempts, 0);
      unwritten++;
    } else {
      ASSERT_EQ(recs[i].delivery, APNS_DELIVERY_UNKNOWN); /* on the wire to a stalled server */
    }
  }
  ASSERT_GE(unwritten, N - 200); /* the queued ones were never written: safe to send again */
  teardown(&f);
  free(recs);
}

/* Close with no drain time before any connection is up: every request ends APNS_ECANCELED, never written
 * (NOT_PROCESSED), on a later loop turn. */
TEST(pool_close_cancels_unwritten_not_processed) {
  fx f;
  enum { N = 10 };
  static fx_rec recs[N];
  setup(&f);
  open_pool(&f, NULL);
  for (int i = 0; i < N; i++) ASSERT_OK(post(&f, &recs[i], TOKEN, 30000));
  ASSERT_OK(apns_pool_close(f.pool, 0, on_closed));
  ASSERT_EQ(f.done, 0);
  fx_run_until(&f.loop, &f.closed);
  for (int i = 0; i < N; i++) {
    ASSERT_EQ(recs[i].calls, 1);
    ASSERT_ERR(recs[i].err, APNS_ECANCELED);
    ASSERT_EQ(recs[i].delivery, APNS_DELIVERY_NOT_PROCESSED);
    ASSERT_EQ(recs[i].attempts, 0);
  }
  teardown(&f);
}

TEST(pool_graceful_close_lets_work_finish) {
  fx f;
  enum { N = 300 };
  static fx_rec recs[N];
  setup(&f);
  f.mo.delay_ms = 50;
  open_pool(&f, NULL);
  for (int i = 0; i < N; i++) ASSERT_OK(post(&f, &recs[i], TOKEN, 30000));
  ASSERT_OK(apns_pool_close(f.pool, 20000, on_closed));
  fx_run_until(&f.loop, &f.closed);
  for (int i = 0; i < N; i++) {
    ASSERT_EQ(recs[i].calls, 1);
    ASSERT_EQ(recs[i].status, 200);
  }
  teardown(&f);
}

/* BadCertificate means nothing more can succeed: the pool stops. */
static void bad_certificate(void *data, apns_mock_request *req) {
  (void)data;
  req->status = 403;
  req->reason = "BadCertificate";
}

static int stopped;
static void on_stopped(apns_pool *p) {
  (void)p;
  stopped++;
}

TEST(pool_bad_certificate_stops) {
  fx f;
  apns_pool_options o;
  enum { N = 30 };
  static fx_rec recs[N];
  setup(&f);
  f.mo.on_request = bad_certificate;
  f.mo.max_streams = 1;
  apns_pool_options_init(&o);
  o.connections = 1;
  o.on_stopped = on_stopped;
  open_pool(&f, &o);
  for (int i = 0; i < N; i++) ASSERT_OK(post(&f, &recs[i], TOKEN, 30000));
  fx_run_until_count(&f.loop, &f.done, N);
  ASSERT_EQ(stopped, 1);
  ASSERT_EQ(recs[0].status, 403);
  ASSERT_EQ(recs[0].reason, APNS_REASON_BadCertificate);
  for (int i = 1; i < N; i++) ASSERT_ERR(recs[i].err, APNS_ESTOPPED);
  fx_rec late = {0};
  ASSERT_ERR(post(&f, &late, TOKEN, 1000), APNS_ESTOPPED);
  teardown(&f);
}

TEST(pool_reconnects_with_backoff) {
  fx f;
  apns_pool_options o;
  fx_rec rec = {0};
  setup(&f);
  apns_pool_options_init(&o);
  o.connections = 1;
  open_pool(&f, &o);
  while (f.ups == 0) ASSERT_NE(uv_run(&f.loop, UV_RUN_ONCE), 0);
  uint64_t t0 = uv_now(&f.loop);
  apns_mock_drop_connections(f.mock);
  while (f.ups < 2) ASSERT_NE(uv_run(&f.loop, UV_RUN_ONCE), 0);
  /* The replacement waited for the reconnect back-off (250 ms, jittered by 20%). */
  ASSERT_GE(uv_now(&f.loop) - t0, 200);
  ASSERT_OK(post(&f, &rec, TOKEN, 5000));
  fx_run_until(&f.loop, &f.done);
  ASSERT_EQ(rec.status, 200);
  ASSERT_GE(f.downs, 1);
  teardown(&f);
}

/* Memory runs out at every point of a pool's life in turn: setup, connecting, the handshake, posting, sending,
 * answering. Whatever fails, every accepted request ends exactly once, nothing leaks, and the loop closes clean.
 * The mock runs in a child process, out of reach of the starvation. */
static void count_closed(apns_pool *p) {
  (*(int *)apns_pool_data(p))++;
}

TEST(pool_allocation_failures) {
  apns__certgen_result certs;
  apns_mock_options mo;
  pid_t pid;
  enum { N = 8 };
  fx_certs(&certs, 0);
  fx_mock_options(&mo, &certs, 0);
  int port = fx_mock_fork(&mo, &pid);
  long base = test_alloc_live();
  int full_runs = 0;
  /* A run needs about 120 allocations; -1 is the last run, with no limit. */
  for (long budget = 0; budget != -2; budget = budget == 160 ? -1 : budget == -1 ? -2 : budget + 1) {
    uv_loop_t loop;
    apns_pool *pool = NULL;
    apns_pool_options o;
    apns_tls_options tlso = APNS_TLS_OPTIONS_INIT;
    static fx_rec recs[N];
    int done = 0, closed = 0, accepted = 0, ok = 0;
    memset(recs, 0, sizeof recs);
    ASSERT_EQ(uv_loop_init(&loop), 0);
    apns_pool_options_init(&o);
    o.host = "127.0.0.1";
    o.port = (uint16_t)port;
    o.connections = 1;
    o.reconnect_min_delay_ms = 5;
    o.data = &closed;
    o.tls = fx_tls_client(&tlso, &certs);
    if (budget >= 0) test_alloc_fail_after(budget);
    int rv = apns_pool_open(&loop, &pool, &o, NULL, 0);
    if (rv == 0) {
      for (int i = 0; i < N; i++) {
        apns_request r;
        fx_request(&r, "abcd", budget < 0 ? 20000 : 50);
        recs[i].counter = &done;
        rv = apns_pool_post(pool, &r, fx_record, &recs[i]);
        if (rv == 0)
          accepted++;
        else
          ASSERT_ERR(rv, APNS_ENOMEM);
      }
      /* Every accepted request ends by its deadline at the latest, memory or not. */
      fx_run_until_count(&loop, &done, accepted);
      test_alloc_reset();
      ASSERT_OK(apns_pool_close(pool, 0, count_closed));
      fx_run_until(&loop, &closed);
    } else {
      ASSERT_ERR(rv, APNS_ENOMEM);
      test_alloc_reset();
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_EQ(uv_loop_close(&loop), 0);
    for (int i = 0; i < N; i++) {
      ASSERT_TRUE(recs[i].calls <= 1);
      if (recs[i].calls && recs[i].err == 0 && recs[i].status == 200) ok++;
    }
    ASSERT_EQ(test_alloc_live(), base);
    if (ok == N) full_runs++;
    if (budget < 0) ASSERT_EQ(ok, N); /* without a limit, everything goes through */
  }
  /* The last run had no limit. Under a slow runner (valgrind) the sweep's 50 ms deadlines may pass before any
   * handshake does, so only the last run is sure to go through. */
  ASSERT_GE(full_runs, test_time_factor() > 1 ? 1 : 2);
  fx_mock_kill(pid);
  apns__certgen_free(&certs);
}

/* The mock answers each request's first try 503 with first_try_reason, and notes which connection each try came on
 * (requests are told apart by their apns-id). */
typedef struct {
  char id[40];
  uint64_t conns[4];
  int tries;
} try_log;
static try_log tries[20];
static const char *first_try_reason;

static void shutdown_first_try_by_id(void *data, apns_mock_request *req) {
  (void)data;
  const char *id = NULL;
  for (size_t i = 0; i < req->num_headers; i++)
    if (strcmp(req->headers[i].name, "apns-id") == 0) id = req->headers[i].value;
  ASSERT_NOT_NULL(id);
  for (int k = 0; k < 20; k++) {
    if (tries[k].tries == 0) snprintf(tries[k].id, sizeof tries[k].id, "%s", id);
    if (strcmp(tries[k].id, id) != 0) continue;
    if (tries[k].tries < 4) tries[k].conns[tries[k].tries] = req->conn_id;
    if (tries[k].tries++ == 0) {
      req->status = 503;
      req->reason = first_try_reason;
    }
    return;
  }
}

static void post_twenty_with_ids(fx *f, fx_rec *recs) {
  for (int i = 0; i < 20; i++) {
    char id[40];
    apns_request r;
    apns_header h[] = {{"apns-push-type", "alert"}, {"apns-topic", "com.example.app"}, {"apns-id", id}};
    snprintf(id, sizeof id, "00000000-0000-4000-8000-%012d", i);
    fx_request(&r, TOKEN, 30000);
    r.headers = h;
    r.num_headers = 3;
    recs[i].counter = &f->done;
    ASSERT_OK(apns_pool_post(f->pool, &r, fx_record, &recs[i]));
  }
  fx_run_until_count(&f->loop, &f->done, 20);
}

/* 503 Shutdown: the server is going away; the request is sent again and accepted. */
TEST(pool_503_shutdown_retried) {
  fx f;
  static fx_rec recs[20];
  setup(&f);
  first_try_reason = "Shutdown";
  f.mo.on_request = shutdown_first_try_by_id;
  open_pool(&f, NULL);
  post_twenty_with_ids(&f, recs);
  for (int k = 0; k < 20; k++) {
    ASSERT_EQ(recs[k].calls, 1);
    ASSERT_EQ(recs[k].status, 200);
    ASSERT_EQ(recs[k].attempts, 2);
    ASSERT_EQ(tries[k].tries, 2);
  }
  ASSERT_EQ(f.retries, 20);
  teardown(&f);
}

/* A retry goes to another connection when one can take it. */
TEST(pool_retry_on_another_connection) {
  fx f;
  apns_pool_options o;
  static fx_rec recs[20];
  setup(&f);
  first_try_reason = "ServiceUnavailable";
  f.mo.on_request = shutdown_first_try_by_id;
  apns_pool_options_init(&o);
  o.connections = 2;
  open_pool(&f, &o);
  while (f.ups < 2) ASSERT_NE(uv_run(&f.loop, UV_RUN_ONCE), 0);
  post_twenty_with_ids(&f, recs);
  for (int k = 0; k < 20; k++) {
    ASSERT_EQ(recs[k].status, 200);
    ASSERT_EQ(recs[k].attempts, 2);
    ASSERT_EQ(tries[k].tries, 2);
    ASSERT_NE(tries[k].conns[1], tries[k].conns[0]); /* the second try came on the other connection */
  }
  teardown(&f);
}

/* A connection whose stream ids run out drains like one sent away by GOAWAY: the pool moves on to a fresh
 * connection and every request is answered. Each connection here has ids for five requests. */
TEST(pool_moves_on_when_stream_ids_run_out) {
  fx f;
  apns_pool_options o;
  static fx_rec recs[20];
  setup(&f);
  apns__conn_test_first_stream_id(INT32_MAX - APNS__H2_ID_MARGIN - 8);
  apns_pool_options_init(&o);
  o.connections = 1;
  open_pool(&f, &o);
  for (int i = 0; i < 20; i++) ASSERT_OK(post(&f, &recs[i], TOKEN, 30000));
  fx_run_until_count(&f.loop, &f.done, 20);
  for (int i = 0; i < 20; i++) {
    ASSERT_EQ(recs[i].calls, 1);
    ASSERT_OK(recs[i].err);
    ASSERT_EQ(recs[i].status, 200);
  }
  apns_mock_stats ms;
  apns_mock_get_stats(f.mock, &ms);
  ASSERT_GE(ms.connections, 4);
  ASSERT_EQ(ms.requests, 20);
  teardown(&f);
}

/* UINT64_MAX is "no deadline": the request waits for its answer instead of ending at once (now + UINT64_MAX must
 * not wrap into the past). */
TEST(pool_timeout_max_answered) {
  fx f;
  fx_rec rec = {0}, late = {0};
  setup(&f);
  f.mo.delay_ms = 50;
  open_pool(&f, NULL);
  ASSERT_OK(post(&f, &rec, TOKEN, UINT64_MAX));
  fx_run_until(&f.loop, &f.done);
  ASSERT_OK(rec.err);
  ASSERT_EQ(rec.status, 200);
  /* Queued behind a stalled server, it is still there long after the default deadline would have passed. */
  apns_mock_set_paused(f.mock, 1);
  ASSERT_OK(post(&f, &late, TOKEN, UINT64_MAX));
  uv_timer_t t;
  int fired = 0;
  uv_timer_init(&f.loop, &t);
  t.data = &fired;
  uv_timer_start(&t, set_flag, 300, 0);
  fx_run_until(&f.loop, &fired);
  ASSERT_EQ(late.calls, 0);
  apns_mock_set_paused(f.mock, 0);
  fx_run_until_count(&f.loop, &f.done, 2);
  ASSERT_OK(late.err);
  ASSERT_EQ(late.status, 200);
  uv_close((uv_handle_t *)&t, NULL);
  teardown(&f);
}

/* ---- failures that name their cause ---- */

/* A port the kernel gave us and we closed at once: nothing listens there. */
static uint16_t dead_port(uv_loop_t *loop) {
  uv_tcp_t t;
  struct sockaddr_in a;
  int len = sizeof a;
  uv_ip4_addr("127.0.0.1", 0, &a);
  ASSERT_EQ(uv_tcp_init(loop, &t), 0);
  ASSERT_EQ(uv_tcp_bind(&t, (const struct sockaddr *)&a, 0), 0);
  ASSERT_EQ(uv_tcp_getsockname(&t, (struct sockaddr *)&a, &len), 0);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(loop, UV_RUN_NOWAIT); /* the handle lives on this stack: let its close finish here */
  return ntohs(a.sin_port);
}

/* A TLS server on 127.0.0.1 that offers only http/1.1 in ALPN, as a web server without HTTP/2 would: the
 * handshake fails, and the connection closes. */
typedef struct {
  uv_tcp_t listener;
  apns__tls_config *cfg;
  int open; /* handles not yet closed */
  int handshakes;
} h1_server;

typedef struct {
  uv_tcp_t tcp;
  apns__tls *tls;
  h1_server *srv;
  uint8_t buf[16384];
} h1_conn;

static void h1_conn_closed(uv_handle_t *h) {
  h1_conn *c = h->data;
  c->srv->open--;
  apns__tls_free(c->tls);
  free(c);
}

static void h1_alloc(uv_handle_t *h, size_t n, uv_buf_t *b) {
  (void)n;
  h1_conn *c = h->data;
  *b = uv_buf_init((char *)c->buf, sizeof c->buf);
}

static void h1_written(uv_write_t *w, int status) {
  (void)status;
  free(w->data);
  free(w);
}

static void h1_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b) {
  h1_conn *c = st->data;
  (void)b;
  if (n == 0) return;
  int rv = -1;
  if (n > 0) {
    ASSERT_OK(apns__tls_feed(c->tls, c->buf, (size_t)n));
    rv = apns__tls_handshake(c->tls);
  }
  uint8_t *out = NULL;
  size_t len = 0;
  apns__tls_take_output(c->tls, &out, &len);
  if (len > 0) {
    /* The test allocator counts live blocks: copy into malloc's own so the write owns plain memory. */
    uv_write_t *w = malloc(sizeof *w);
    char *copy = malloc(len);
    memcpy(copy, out, len);
    w->data = copy;
    uv_buf_t wb = uv_buf_init(copy, (unsigned)len);
    if (uv_write(w, st, &wb, 1, h1_written) < 0) h1_written(w, 0);
  }
  apns__free(out);
  if (rv != 1) {
    c->srv->handshakes++;
    uv_read_stop(st);
    if (!uv_is_closing((uv_handle_t *)st)) uv_close((uv_handle_t *)st, h1_conn_closed);
  }
}

static void h1_accept(uv_stream_t *l, int status) {
  h1_server *srv = l->data;
  ASSERT_OK(status);
  h1_conn *c = calloc(1, sizeof *c);
  c->srv = srv;
  uv_tcp_init(l->loop, &c->tcp);
  c->tcp.data = c;
  srv->open++;
  ASSERT_OK(uv_accept(l, (uv_stream_t *)&c->tcp));
  ASSERT_OK(apns__tls_new(&c->tls, srv->cfg, NULL));
  uv_read_start((uv_stream_t *)&c->tcp, h1_alloc, h1_read);
}

static uint16_t h1_start(h1_server *srv, uv_loop_t *loop, const apns__certgen_result *certs) {
  apns__tls_options to;
  struct sockaddr_in a;
  int len = sizeof a;
  char err[256] = "";
  memset(srv, 0, sizeof *srv);
  memset(&to, 0, sizeof to);
  to.server = 1;
  to.cert_pem = certs->server_cert;
  to.key_pem = certs->server_key;
  to.alpn = "http/1.1";
  if (apns__tls_config_new(&srv->cfg, &to, err, sizeof err) != 0) test__fail(__FILE__, __LINE__, "%s", err);
  uv_ip4_addr("127.0.0.1", 0, &a);
  ASSERT_OK(uv_tcp_init(loop, &srv->listener));
  srv->listener.data = srv;
  srv->open = 1;
  ASSERT_OK(uv_tcp_bind(&srv->listener, (const struct sockaddr *)&a, 0));
  ASSERT_OK(uv_listen((uv_stream_t *)&srv->listener, 16, h1_accept));
  ASSERT_OK(uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&a, &len));
  return ntohs(a.sin_port);
}

static void h1_listener_closed(uv_handle_t *h) {
  ((h1_server *)h->data)->open--;
}

static void h1_stop(h1_server *srv) {
  uv_close((uv_handle_t *)&srv->listener, h1_listener_closed);
  apns__tls_config_unref(srv->cfg);
}

typedef enum { CAUSE_WRONG_CA, CAUSE_WRONG_NAME, CAUSE_CERT_REFUSED, CAUSE_NO_H2 } permanent_cause;

/* A permanent cause stops the pool after a few connection attempts: every queued request ends with the cause
 * itself, long before its deadline, never written; on_stopped runs once and the cause is kept. */
static void check_permanent(permanent_cause cause, int want_err, const char *want_text) {
  fx f;
  apns_pool_options o;
  apns_tls_options tlso = APNS_TLS_OPTIONS_INIT;
  enum { N = 10 };
  static fx_rec recs[N];
  h1_server h1;
  memset(recs, 0, sizeof recs);
  stopped = 0;
  memset(&f, 0, sizeof f);
  f.live_before = test_alloc_live();
  ASSERT_EQ(uv_loop_init(&f.loop), 0);
  fx_certs(&f.certs, 1);
  fx_mock_options(&f.mo, &f.certs, 1);
  f.mock = fx_mock_start(&f.loop, &f.mo);
  apns_pool_options_init(&o);
  o.on_stopped = on_stopped;
  o.host = "127.0.0.1";
  o.port = (uint16_t)apns_mock_port(f.mock);
  o.tls = fx_tls_client(&tlso, &f.certs);
  o.on_event = on_event;
  o.data = &f;
  if (cause == CAUSE_WRONG_CA) tlso.ca_pem = f.certs.other_ca_cert;
  if (cause == CAUSE_WRONG_NAME) tlso.verify_name = "api.push.apple.com";
  apns__certgen_result stranger; /* a client certificate from another CA than the one the server trusts */
  fx_certs(&stranger, 0);
  if (cause == CAUSE_CERT_REFUSED) tlso.cert_pem = stranger.client_cert, tlso.key_pem = stranger.client_key;
  if (cause == CAUSE_NO_H2) o.port = h1_start(&h1, &f.loop, &f.certs);
  char err[256] = "";
  int rv = apns_pool_open(&f.loop, &f.pool, &o, err, sizeof err);
  if (rv != 0) test__fail(__FILE__, __LINE__, "apns_pool_open: %s (%s)", apns_strerror(rv), err);
  apns__certgen_free(&stranger);
  uint64_t t0 = uv_now(&f.loop);
  for (int i = 0; i < N; i++) ASSERT_OK(post(&f, &recs[i], TOKEN, 30000));
  fx_run_until_count(&f.loop, &f.done, N);
  for (int i = 0; i < N; i++) {
    ASSERT_EQ(recs[i].calls, 1);
    if (recs[i].err != want_err) printf("error_text: %s\n", recs[i].error_text);
    ASSERT_ERR(recs[i].err, want_err);
    ASSERT_EQ(recs[i].delivery, APNS_DELIVERY_NOT_PROCESSED);
    ASSERT_EQ(recs[i].attempts, 0);
    if (strstr(recs[i].error_text, want_text) == NULL)
      test__fail(__FILE__, __LINE__, "error_text: %s", recs[i].error_text);
    ASSERT_LT(recs[i].t_end - t0, 5000 * test_time_factor()); /* the deadline was 30 s */
  }
  ASSERT_EQ(stopped, 1);
  const char *text = NULL;
  ASSERT_ERR(apns_pool_stop_cause(f.pool, &text), want_err);
  ASSERT_NOT_NULL(text);
  ASSERT_TRUE(strstr(text, want_text) != NULL);
  fx_rec late = {0};
  ASSERT_ERR(post(&f, &late, TOKEN, 1000), APNS_ESTOPPED);
  /* A bounded number of tries: 3 that failed for the cause, give or take the one under way and a peer that reset
   * the connection before its alert could be read. */
  ASSERT_LE(f.downs, 6);
  if (cause == CAUSE_NO_H2) {
    h1_stop(&h1);
    ASSERT_LE(h1.handshakes, 6);
  }
  teardown(&f);
}

TEST(pool_wrong_ca_stops) {
  check_permanent(CAUSE_WRONG_CA, APNS_ECERTVERIFY, "verif");
}

TEST(pool_wrong_name_stops) {
  check_permanent(CAUSE_WRONG_NAME, APNS_ECERTVERIFY, "verif");
}

TEST(pool_client_cert_refused_stops) {
  check_permanent(CAUSE_CERT_REFUSED, APNS_ETLS, "did not accept our certificate");
}

TEST(pool_no_http2_stops) {
  check_permanent(CAUSE_NO_H2, APNS_EALPN, "ALPN");
}

/* A cause that may pass (nothing listening, a name that does not resolve) does not stop the pool, but the request
 * that was never written ends at its deadline with it, not with a bare APNS_ETIMEDOUT. */
static void check_transient(const char *host, uint16_t port, fx *f, fx_rec *rec) {
  apns_pool_options o;
  apns_tls_options tlso = APNS_TLS_OPTIONS_INIT;
  char err[256] = "";
  apns_pool_options_init(&o);
  o.host = host;
  o.port = port;
  o.connections = 1;
  o.reconnect_min_delay_ms = 20;
  o.on_stopped = on_stopped;
  o.on_event = on_event;
  o.data = f;
  o.tls = fx_tls_client(&tlso, &f->certs);
  stopped = 0;
  ASSERT_OK(apns_pool_open(&f->loop, &f->pool, &o, err, sizeof err));
  uint64_t t0 = uv_now(&f->loop);
  uint64_t deadline = 600 * (uint64_t)test_time_factor();
  ASSERT_OK(post(f, rec, TOKEN, deadline));
  fx_run_until(&f->loop, &f->done);
  ASSERT_GE(rec->t_end - t0, deadline); /* the pool kept trying until the deadline */
  ASSERT_EQ(rec->delivery, APNS_DELIVERY_NOT_PROCESSED);
  ASSERT_EQ(rec->attempts, 0);
  ASSERT_EQ(stopped, 0);
  ASSERT_EQ(apns_pool_stop_cause(f->pool, NULL), 0);
  ASSERT_GT(f->downs, 1);
}

TEST(pool_refused_carries_cause) {
  fx f;
  fx_rec rec = {0};
  setup(&f);
  check_transient("127.0.0.1", dead_port(&f.loop), &f, &rec);
  ASSERT_ERR(rec.err, UV_ECONNREFUSED);
  ASSERT_TRUE(strstr(rec.error_text, "cannot connect") != NULL);
  teardown(&f);
}

TEST(pool_unknown_host_carries_cause) {
  fx f;
  fx_rec rec = {0};
  setup(&f);
  check_transient("no-such-host.invalid", 443, &f, &rec);
  /* NONAME from a resolver that answers; AGAIN when none can be reached: either way the resolver's code. */
  if (rec.err != UV_EAI_NONAME && rec.err != UV_EAI_AGAIN)
    test__fail(__FILE__, __LINE__, "err %s (%s)", apns_err_name(rec.err), rec.error_text);
  ASSERT_TRUE(strstr(rec.error_text, "no-such-host.invalid") != NULL);
  teardown(&f);
}

/* A server that sends every connection away after one request: each replacement waits out the back-off, so the
 * connects per second stay bounded (they were as fast as handshakes go). */
TEST(pool_goaway_backs_off) {
  fx f;
  apns_pool_options o;
  enum { N = 20 };
  static fx_rec recs[N];
  setup(&f);
  f.mo.goaway_after = 1;
  f.mo.max_streams = 1; /* one request a connection: none refused, so no retry back-off slows the run */
  apns_pool_options_init(&o);
  o.connections = 2;
  o.max_connects_per_sec = 1000;
  o.reconnect_min_delay_ms = 100;
  o.reconnect_max_delay_ms = 100;
  open_pool(&f, &o);
  uint64_t t0 = uv_now(&f.loop);
  for (int i = 0; i < N; i++) ASSERT_OK(post(&f, &recs[i], TOKEN, 60000));
  fx_run_until_count(&f.loop, &f.done, N);
  uint64_t elapsed = uv_now(&f.loop) - t0;
  for (int i = 0; i < N; i++)
    if (recs[i].status != 200)
      test__fail(__FILE__, __LINE__, "request %d: %s (%s) after %u tries", i, apns_err_name(recs[i].err),
                 recs[i].error_text, recs[i].attempts);
  apns_mock_stats ms;
  apns_mock_get_stats(f.mock, &ms);
  ASSERT_GE(ms.goaways, N - 2);
  /* Each slot waits at least 80 ms (100 ms less the jitter) before each replacement. */
  if (ms.connections > 4 + 2 * elapsed / 80)
    test__fail(__FILE__, __LINE__, "%llu connections in %llu ms", (unsigned long long)ms.connections,
               (unsigned long long)elapsed);
  teardown(&f);
}

/* Posts n with timeout_ms, runs until they end, and checks each ended once with 200. */
static void post_all_ok(fx *f, fx_rec *recs, int n, uint64_t timeout_ms) {
  int base = f->done;
  memset(recs, 0, (size_t)n * sizeof *recs);
  for (int i = 0; i < n; i++) ASSERT_OK(post(f, &recs[i], TOKEN, timeout_ms));
  fx_run_until_count(&f->loop, &f->done, base + n);
  for (int i = 0; i < n; i++) {
    ASSERT_EQ(recs[i].calls, 1);
    ASSERT_EQ(recs[i].status, 200);
  }
}

/* A GOAWAY before any answer (the mock holds its answers, the GOAWAY goes out at once) is a storm, not a rotation:
 * each replacement still waits out the back-off. */
TEST(pool_goaway_storm_backs_off) {
  fx f;
  apns_pool_options o;
  enum { N = 12 };
  static fx_rec recs[N];
  setup(&f);
  f.mo.goaway_after = 1;
  f.mo.max_streams = 1;
  f.mo.delay_ms = 20; /* the answer comes after the GOAWAY: zero successes when it comes */
  apns_pool_options_init(&o);
  o.connections = 2;
  o.max_connects_per_sec = 1000;
  o.reconnect_min_delay_ms = 300;
  o.reconnect_max_delay_ms = 300;
  open_pool(&f, &o);
  uint64_t t0 = uv_now(&f.loop);
  post_all_ok(&f, recs, N, 60000);
  uint64_t elapsed = uv_now(&f.loop) - t0;
  apns_mock_stats ms;
  apns_mock_get_stats(f.mock, &ms);
  ASSERT_GE(ms.connections, N);
  /* Each of the 2 slots waited at least 240 ms (300 less the jitter) before each of its replacements; without
   * back-off a replacement takes a handshake and the 20 ms hold. */
  if (elapsed < (uint64_t)(ms.connections - 2) / 2 * 240)
    test__fail(__FILE__, __LINE__, "%llu connections in %llu ms: no back-off", (unsigned long long)ms.connections,
               (unsigned long long)elapsed);
  teardown(&f);
}

/* A graceful GOAWAY after 40 answers 2xx (more than the 32 a rotation needs) is replaced at once, outside the
 * connect bucket: 400 requests over 10 connections with one connect a second and a 30 s back-off. */
TEST(pool_goaway_rotation_no_backoff) {
  fx f;
  apns_pool_options o;
  enum { N = 400 };
  static fx_rec recs[N];
  setup(&f);
  f.mo.goaway_after = 40;
  f.mo.max_streams = 1; /* one at a time: exactly 40 a connection, answered before the GOAWAY */
  apns_pool_options_init(&o);
  o.connections = 1;
  o.max_connects_per_sec = 1;
  o.reconnect_min_delay_ms = 30000;
  o.reconnect_max_delay_ms = 30000;
  open_pool(&f, &o);
  uint64_t t0 = uv_now(&f.loop);
  post_all_ok(&f, recs, N, 60000);
  uint64_t elapsed = uv_now(&f.loop) - t0;
  apns_mock_stats ms;
  apns_mock_get_stats(f.mock, &ms);
  ASSERT_GE(ms.connections, N / 40);
  ASSERT_EQ(f.ups, (int)ms.connections);
  /* The bucket alone would need 9 s for the 9 replacements, the back-off 270 s. Under valgrind, where a handshake
   * takes a large part of a second, only the back-off is told apart. */
  uint64_t bound = test_time_factor() > 1 ? 135000 : 4500;
  if (elapsed > bound)
    test__fail(__FILE__, __LINE__, "%llu connections took %llu ms", (unsigned long long)ms.connections,
               (unsigned long long)elapsed);
  teardown(&f);
}

/* A server may send its graceful GOAWAY before the answers below it (the mock holds them 50 ms here): there are no
 * successes yet when it comes, so the replacement waits out the back-off; once the retired connection has drained
 * with its 40 answers 2xx, it was a rotation after all, and the replacement goes at once (not 30 s later). */
TEST(pool_goaway_before_answers_rotates_once_drained) {
  fx f;
  apns_pool_options o;
  enum { N = 200 };
  static fx_rec recs[N];
  setup(&f);
  f.mo.goaway_after = 40;
  f.mo.delay_ms = 50;
  apns_pool_options_init(&o);
  o.connections = 1;
  o.max_connects_per_sec = 1000;
  o.reconnect_min_delay_ms = 30000;
  o.reconnect_max_delay_ms = 30000;
  open_pool(&f, &o);
  uint64_t t0 = uv_now(&f.loop);
  post_all_ok(&f, recs, N, 600000);
  uint64_t elapsed = uv_now(&f.loop) - t0;
  apns_mock_stats ms;
  apns_mock_get_stats(f.mock, &ms);
  ASSERT_GE(ms.connections, N / 40);
  /* Waiting out the back-off would take 30 s for each of the 4 replacements (valgrind included, where this takes
   * a few seconds). */
  if (elapsed > 60000)
    test__fail(__FILE__, __LINE__, "%llu connections took %llu ms", (unsigned long long)ms.connections,
               (unsigned long long)elapsed);
  teardown(&f);
}

/* A server that sends every connection away after 100 requests, as nginx does at keepalive_requests 100, with
 * 1000 streams a connection: the first two connections each get far more than 100, and the rest above the GOAWAY
 * is refused and retried. Two rotations at 100 teach the pool the limit; from then on each connection takes 100
 * and is replaced, and nothing is refused again. */
TEST(pool_learns_request_limit) {
  fx f;
  apns_pool_options o;
  const int N = test_time_factor() > 1 ? 2000 : 20000; /* under valgrind each handshake takes tens of ms */
  fx_rec *recs = calloc((size_t)N, sizeof *recs);
  setup(&f);
  f.mo.goaway_after = 100;
  apns_pool_options_init(&o);
  o.connections = 2;
  open_pool(&f, &o);
  post_all_ok(&f, recs, N, 600000);
  apns_pool_stats st;
  apns_pool_get_stats(f.pool, &st, sizeof st);
  ASSERT_EQ(st.request_limit, 100);
  ASSERT_EQ(st.accepted, (uint64_t)N);
  ASSERT_GE(st.retried, 1);        /* the first connections' excess, before anything was known */
  ASSERT_LE(st.retried, 2 * 1000); /* and only theirs */
  ASSERT_EQ(f.late_retries, 0);    /* nothing refused once the limit was known */
  ASSERT_GE(st.capped, (uint64_t)(N / 100 - 10));
  apns_mock_stats ms;
  apns_mock_get_stats(f.mock, &ms);
  ASSERT_EQ(ms.status[200], (uint64_t)N); /* answered once each */
  ASSERT_LE(ms.connections, (uint64_t)(N / 100 + 4));
  teardown(&f);
  free(recs);
}

/* Apple does not rotate: a GOAWAY it sends (maintenance) is one of a kind. One GOAWAY after 100 requests, then a
 * connection that is never sent away: the pool learns no limit and replaces nothing. */
TEST(pool_single_goaway_learns_no_limit) {
  fx f;
  apns_pool_options o;
  enum { N = 5000 };
  static fx_rec recs[N];
  setup(&f);
  f.mo.goaway_after = 100;
  f.goaway_once = 1;
  apns_pool_options_init(&o);
  o.connections = 1;
  open_pool(&f, &o);
  post_all_ok(&f, recs, N, 600000);
  apns_pool_stats st;
  apns_pool_get_stats(f.pool, &st, sizeof st);
  ASSERT_EQ(st.request_limit, 0);
  ASSERT_EQ(st.capped, 0);
  apns_mock_stats ms;
  apns_mock_get_stats(f.mock, &ms);
  ASSERT_EQ(ms.goaways, 1);
  ASSERT_EQ(ms.connections, 2);
  teardown(&f);
}

/* The limit follows the server: lowered (two rotations at the new count replace it; requests the server refused
 * meanwhile are retried), raised (a connection stopped at the old limit is never sent away, which forgets it, and
 * two rotations teach the new one), then gone (forgotten: connections are no longer replaced). */
TEST(pool_request_limit_follows_server) {
  fx f;
  apns_pool_options o;
  static fx_rec recs[3000];
  const int N = test_time_factor() > 1 ? 1000 : 3000; /* each phase rotates at least 5 times a connection */
  setup(&f);
  f.mo.goaway_after = 100;
  apns_pool_options_init(&o);
  o.connections = 2;
  open_pool(&f, &o);
  apns_pool_stats st;
  post_all_ok(&f, recs, N, 600000);
  apns_pool_get_stats(f.pool, &st, sizeof st);
  ASSERT_EQ(st.request_limit, 100);
  static const uint32_t next[] = {60, 200};
  for (size_t i = 0; i < sizeof next / sizeof next[0]; i++) {
    apns_mock_set_goaway_after(f.mock, next[i]);
    post_all_ok(&f, recs, N, 600000);
    apns_pool_get_stats(f.pool, &st, sizeof st);
    ASSERT_EQ(st.request_limit, next[i]);
  }
  apns_mock_set_goaway_after(f.mock, 0);
  post_all_ok(&f, recs, N, 600000);
  apns_pool_get_stats(f.pool, &st, sizeof st);
  ASSERT_EQ(st.request_limit, 0);
  uint64_t capped = st.capped;
  apns_mock_stats ms;
  apns_mock_get_stats(f.mock, &ms);
  uint64_t conns = ms.connections;
  post_all_ok(&f, recs, N, 600000);
  apns_pool_get_stats(f.pool, &st, sizeof st);
  ASSERT_EQ(st.capped, capped);
  ASSERT_EQ(st.accepted, 5 * (uint64_t)N);
  apns_mock_get_stats(f.mock, &ms);
  ASSERT_EQ(ms.connections, conns);
  teardown(&f);
}

/* Once the limit is known, connections stopped at it are replaced outside the connect bucket, as rotations are:
 * they too must be answered 2xx. A server that turns to answering 400 makes the pool forget the limit after the
 * first such connection of each slot (or a few more in flight), not go on replacing at every 100. */
static int answer_400;
static void maybe_400(void *data, apns_mock_request *req) {
  (void)data;
  if (answer_400) {
    req->status = 400;
    req->reason = "BadDeviceToken";
  }
}

TEST(pool_request_limit_forgotten_without_successes) {
  fx f;
  apns_pool_options o;
  static fx_rec recs[2000];
  setup(&f);
  answer_400 = 0;
  f.mo.goaway_after = 100;
  f.mo.on_request = maybe_400;
  apns_pool_options_init(&o);
  o.connections = 2;
  o.max_connects_per_sec =
      1000; /* sent away after 100 answers 400, a connection is a failure: back-off, kept short */
  o.reconnect_min_delay_ms = 10;
  o.reconnect_max_delay_ms = 20;
  open_pool(&f, &o);
  post_all_ok(&f, recs, 2000, 600000);
  apns_pool_stats st;
  apns_pool_get_stats(f.pool, &st, sizeof st);
  ASSERT_EQ(st.request_limit, 100);
  uint64_t capped = st.capped;
  answer_400 = 1;
  memset(recs, 0, sizeof recs);
  for (int i = 0; i < 2000; i++) ASSERT_OK(post(&f, &recs[i], TOKEN, 600000));
  fx_run_until_count(&f.loop, &f.done, 4000);
  for (int i = 0; i < 2000; i++) {
    ASSERT_EQ(recs[i].calls, 1);
    ASSERT_EQ(recs[i].status, 400);
  }
  apns_pool_get_stats(f.pool, &st, sizeof st);
  ASSERT_EQ(st.request_limit, 0);
  ASSERT_LE(st.capped - capped, 6);
  teardown(&f);
}

/* A million queued behind a connection whose first tries are answered 500: every retry goes back to the head of
 * the queue with an early deadline. The queue's deadline structure pays O(log n) steps for it, not a walk over the
 * million (which made each retry cost a million steps). */
static int million_answered, million_ok, million_canceled;
static void million_500_first(void *data, apns_mock_request *req) {
  (void)data;
  if (++million_answered <= 2000) req->status = 500;
}

static void million_done(int err, const apns_response *res, void *data) {
  (void)res;
  (void)data;
  if (err == 0) million_ok++;
  if (err == APNS_ECANCELED) million_canceled++;
}

TEST(pool_million_queued_retries_cost_log_n) {
  fx f;
  apns_pool_options o;
  /* A million; a tenth of that under valgrind, where each request costs twenty times as much. */
  const int N = test_time_factor() > 1 ? 100000 : 1000000;
  setup(&f);
  f.mo.on_request = million_500_first;
  f.mo.max_streams = 20;
  apns_pool_options_init(&o);
  o.connections = 1;
  o.retry_max_delay_ms = 1;
  open_pool(&f, &o);
  apns_request r;
  /* The first thousand, those that will be retried, have the earliest deadlines, as when they were posted first. */
  for (int i = 0; i < N; i++) {
    fx_request(&r, TOKEN, i < 1000 ? 500000 : 600000);
    ASSERT_OK(apns_pool_post(f.pool, &r, million_done, NULL));
  }
  uint64_t s0 = apns__pool_queue_steps(f.pool);
  ASSERT_LE(s0, (uint64_t)N * 25); /* posting: O(log n) each */
  apns_pool_stats st;
  do {
    ASSERT_NE(uv_run(&f.loop, UV_RUN_ONCE), 0);
    apns_pool_get_stats(f.pool, &st, sizeof st);
  } while (st.retried < 2000 || million_ok < 100);
  uint64_t steps = apns__pool_queue_steps(f.pool) - s0;
  /* Each try leaves the heap and each retry goes back in: at most 4 log2(n) steps apiece. */
  if (steps > (st.sent + st.retried) * 4 * 21)
    test__fail(__FILE__, __LINE__, "%llu steps for %llu tries and %llu retries", (unsigned long long)steps,
               (unsigned long long)st.sent, (unsigned long long)st.retried);
  ASSERT_GT(st.queued, N - 10000);
  close_pool(&f, 0);
  ASSERT_EQ(million_ok + million_canceled, N);
  teardown(&f);
}

/* Queued requests with one timeout, the usual case: their deadlines come in order and cost the queue's deadline
 * heap no step (a FIFO holds them), and they end at their deadlines in the order they were posted. */
TEST(pool_queued_deadlines_in_order_take_no_heap_step) {
  fx f;
  apns_pool_options o;
  enum { N = 300 };
  static fx_rec recs[N];
  memset(recs, 0, sizeof recs);
  setup(&f);
  f.mo.max_streams = 1;
  f.mo.delay_ms = 60000; /* no answer comes: the first is in flight, the rest wait in the queue */
  apns_pool_options_init(&o);
  o.connections = 1;
  open_pool(&f, &o);
  while (f.ups == 0) ASSERT_NE(uv_run(&f.loop, UV_RUN_ONCE), 0);
  uint64_t s0 = apns__pool_queue_steps(f.pool);
  for (int i = 0; i < N; i++) ASSERT_OK(post(&f, &recs[i], TOKEN, 300));
  fx_run_until_count(&f.loop, &f.done, N);
  ASSERT_UEQ(apns__pool_queue_steps(f.pool), s0);
  for (int i = 0; i < N; i++) {
    ASSERT_EQ(recs[i].calls, 1);
    ASSERT_ERR(recs[i].err, APNS_ETIMEDOUT);
    if (i > 0) ASSERT_GE(recs[i].t_end, recs[i - 1].t_end);
  }
  teardown(&f);
}

/* Timeouts in no order: those that fit at neither end of the FIFO go to the heap, and every request still ends
 * once, at (not before) its own deadline, earliest first. */
TEST(pool_queued_deadlines_out_of_order_end_at_their_own) {
  fx f;
  apns_pool_options o;
  enum { N = 240 };
  static fx_rec recs[N];
  uint64_t due[N];
  memset(recs, 0, sizeof recs);
  setup(&f);
  f.mo.max_streams = 1;
  f.mo.delay_ms = 60000;
  apns_pool_options_init(&o);
  o.connections = 1;
  open_pool(&f, &o);
  while (f.ups == 0) ASSERT_NE(uv_run(&f.loop, UV_RUN_ONCE), 0);
  uint64_t s0 = apns__pool_queue_steps(f.pool);
  for (int i = 0; i < N; i++) {
    /* 200-439 ms in a scrambled order (7 and 240 are coprime): later, earlier and equal to what came before. */
    uint64_t timeout = 200 + (uint64_t)((i * 7) % N);
    due[i] = uv_now(&f.loop) + timeout;
    ASSERT_OK(post(&f, &recs[i], TOKEN, timeout));
  }
  ASSERT_GT(apns__pool_queue_steps(f.pool), s0); /* the heap took the ones that did not fit the FIFO */
  fx_run_until_count(&f.loop, &f.done, N);
  for (int i = 0; i < N; i++) {
    ASSERT_EQ(recs[i].calls, 1);
    ASSERT_ERR(recs[i].err, APNS_ETIMEDOUT);
    ASSERT_GE(recs[i].t_end, due[i]);
    for (int j = 0; j < N; j++)
      if (due[j] < due[i] && j != 0) /* 0 went to the connection, whose own timer ends it */
        ASSERT_LE(recs[j].t_end, recs[i].t_end);
  }
  teardown(&f);
}

/* Statuses APNs never sends (a proxy's 3xx) are counted apart, not as "other 4xx". */
static void answer_3xx(void *data, apns_mock_request *req) {
  (void)data;
  req->status = req->seq == 1 ? 302 : req->seq == 2 ? 304 : req->seq == 3 ? 404 : 200;
}

TEST(pool_stats_by_status) {
  fx f;
  apns_pool_options o;
  static fx_rec recs[4];
  setup(&f);
  f.mo.on_request = answer_3xx;
  f.mo.max_streams = 1; /* one at a time: seq follows the order of posting */
  apns_pool_options_init(&o);
  o.connections = 1;
  open_pool(&f, &o);
  for (int i = 0; i < 4; i++) ASSERT_OK(post(&f, &recs[i], TOKEN, 30000));
  fx_run_until_count(&f.loop, &f.done, 4);
  ASSERT_EQ(recs[0].status, 302);
  ASSERT_EQ(recs[1].status, 304);
  apns_pool_stats st;
  apns_pool_get_stats(f.pool, &st, sizeof st);
  ASSERT_UEQ(st.by_status[0], 1);
  ASSERT_UEQ(st.by_status[4], 1); /* the 404 only */
  ASSERT_UEQ(st.other_status, 2);
  ASSERT_UEQ(st.rejected, 3);
  ASSERT_UEQ(st.accepted, 1);
  teardown(&f);
}

/* A connection sent away with streams open leaves its slot and finishes them: retiring it must not allocate, or
 * an allocation failing right then closed it and canceled its open requests (APNS_ECANCELED, with the pool open).
 * The allocation that follows the GOAWAY event fails here; every request still ends answered. */
static int fail_next_alloc_on_goaway;
static void on_event_fail_alloc(apns_pool *p, const apns_pool_event *ev) {
  on_event(p, ev);
  if (ev->type == APNS_POOL_EVENT_CONN_DOWN && ev->err == APNS_ECLOSED && fail_next_alloc_on_goaway) {
    fail_next_alloc_on_goaway = 0;
    test_alloc_fail_nth(1);
  }
}

TEST(pool_goaway_retires_without_canceling) {
  fx f;
  apns_pool_options o;
  apns_tls_options tlso = APNS_TLS_OPTIONS_INIT;
  enum { N = 40 };
  static fx_rec recs[N];
  char err[256] = "";
  setup(&f);
  f.mo.goaway_after = 20;
  f.mo.delay_ms = 100; /* the GOAWAY goes out at once, the answers below it later: they are open when it comes */
  f.mock = fx_mock_start(&f.loop, &f.mo);
  apns_pool_options_init(&o);
  o.host = "127.0.0.1";
  o.port = (uint16_t)apns_mock_port(f.mock);
  o.connections = 1;
  o.reconnect_min_delay_ms = 10;
  o.tls = fx_tls_client(&tlso, &f.certs);
  o.on_event = on_event_fail_alloc;
  o.data = &f;
  ASSERT_OK(apns_pool_open(&f.loop, &f.pool, &o, err, sizeof err));
  while (f.ups == 0) ASSERT_NE(uv_run(&f.loop, UV_RUN_ONCE), 0);
  fail_next_alloc_on_goaway = 1;
  for (int i = 0; i < N; i++) ASSERT_OK(post(&f, &recs[i], TOKEN, 30000));
  fx_run_until_count(&f.loop, &f.done, N);
  test_alloc_reset();
  ASSERT_EQ(fail_next_alloc_on_goaway, 0);
  for (int i = 0; i < N; i++) {
    ASSERT_EQ(recs[i].calls, 1);
    ASSERT_OK(recs[i].err);
    ASSERT_EQ(recs[i].status, 200);
  }
  teardown(&f);
}

/* Accessors take NULL as free() does (NULL or zeros back); int-returning calls say APNS_EINVAL. */
TEST(pool_accessors_take_null) {
  apns_pool_stats st;
  memset(&st, 0xab, sizeof st);
  apns_pool_get_stats(NULL, &st, sizeof st);
  ASSERT_UEQ(st.posted, 0);
  ASSERT_UEQ(st.queued, 0);
  ASSERT_EQ(st.connections_up, 0);
  apns_pool_get_stats(NULL, NULL, sizeof *NULL);
  ASSERT_NULL(apns_pool_data(NULL));
  ASSERT_NULL(apns_pool_loop(NULL));
  const char *text = "x";
  ASSERT_ERR(apns_pool_stop_cause(NULL, &text), APNS_EINVAL);
  ASSERT_NULL(text);
  ASSERT_ERR(apns_pool_close(NULL, 0, NULL), APNS_EINVAL);
  apns_request r;
  fx_request(&r, TOKEN, 1000);
  ASSERT_ERR(apns_pool_post(NULL, &r, fx_record, NULL), APNS_EINVAL);
}

TEST_SUITE(pool){
    TEST_ENTRY(pool_moves_on_when_stream_ids_run_out),
    TEST_ENTRY(pool_hundred_thousand),
    TEST_ENTRY(pool_drops_retried_and_accepted),
    TEST_ENTRY(pool_never_resend_unknown),
    TEST_ENTRY(pool_goaway_retried_on_fresh_connection),
    TEST_ENTRY(pool_503_shutdown_retried),
    TEST_ENTRY(pool_retry_on_another_connection),
    TEST_ENTRY(pool_stalled_server_times_out_queued),
    TEST_ENTRY(pool_queue_full_and_low_water),
    TEST_ENTRY(pool_graceful_close_cancels_queue),
    TEST_ENTRY(pool_graceful_close_lets_work_finish),
    TEST_ENTRY(pool_close_cancels_unwritten_not_processed),
    TEST_ENTRY(pool_bad_certificate_stops),
    TEST_ENTRY(pool_reconnects_with_backoff),
    TEST_ENTRY(pool_allocation_failures),
    TEST_ENTRY(pool_timeout_max_answered),
    TEST_ENTRY(pool_goaway_backs_off),
    TEST_ENTRY(pool_goaway_storm_backs_off),
    TEST_ENTRY(pool_goaway_rotation_no_backoff),
    TEST_ENTRY(pool_goaway_before_answers_rotates_once_drained),
    TEST_ENTRY(pool_accessors_take_null),
    TEST_ENTRY(pool_goaway_retires_without_canceling),
    TEST_ENTRY(pool_stats_by_status),
    TEST_ENTRY(pool_million_queued_retries_cost_log_n),
    TEST_ENTRY(pool_queued_deadlines_in_order_take_no_heap_step),
    TEST_ENTRY(pool_queued_deadlines_out_of_order_end_at_their_own),
    TEST_ENTRY(pool_learns_request_limit),
    TEST_ENTRY(pool_single_goaway_learns_no_limit),
    TEST_ENTRY(pool_request_limit_follows_server),
    TEST_ENTRY(pool_request_limit_forgotten_without_successes),
    TEST_ENTRY(pool_wrong_ca_stops),
    TEST_ENTRY(pool_wrong_name_stops),
    TEST_ENTRY(pool_client_cert_refused_stops),
    TEST_ENTRY(pool_no_http2_stops),
    TEST_ENTRY(pool_refused_carries_cause),
    TEST_ENTRY(pool_unknown_host_carries_cause),
    TEST_SUITE_END,
};
