/* apns_pool against apns-mock over real TLS on 127.0.0.1: queueing, retries, faults, back-pressure, close. */
#include "fixture.h"

#include "alloc.h"
#include "conn.h"
#include "h2.h"

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
  long live_before;
} fx;

static void on_event(apns_pool *p, const apns_pool_event *ev) {
  fx *f = apns_pool_data(p);
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
  char err[256] = "";
  if (extra)
    o = *extra;
  else
    memset(&o, 0, sizeof o);
  f->mock = fx_mock_start(&f->loop, &f->mo);
  o.host = "127.0.0.1";
  o.port = (uint16_t)apns_mock_port(f->mock);
  fx_tls_client(&o.tls, &f->certs);
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
  memset(&o, 0, sizeof o);
  o.size = 4;
  open_pool(&f, &o);
  for (int i = 0; i < N; i++) ASSERT_OK(post(&f, &recs[i], TOKEN, 60000));
  ASSERT_EQ(f.done, 0);
  fx_run_until_count(&f.loop, &f.done, N);
  for (int i = 0; i < N; i++) {
    ASSERT_EQ(recs[i].calls, 1);
    ASSERT_EQ(recs[i].status, 200);
  }
  apns_pool_stats st;
  apns_pool_get_stats(f.pool, &st);
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
  memset(&o, 0, sizeof o);
  o.size = 2;
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
  memset(&o, 0, sizeof o);
  o.size = 1;
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
  memset(&o, 0, sizeof o);
  o.size = 2;
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
  apns_pool_get_stats(f.pool, &st);
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
  memset(&o, 0, sizeof o);
  o.size = 1;
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
  apns_pool_get_stats(f.pool, &st);
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
  memset(&o, 0, sizeof o);
  o.size = 2;
  open_pool(&f, &o);
  for (int i = 0; i < N; i++) ASSERT_OK(post(&f, &recs[i], TOKEN, 60000));
  while (1) {
    apns_pool_stats st;
    apns_pool_get_stats(f.pool, &st);
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
  for (int i = 0; i < N; i++) {
    ASSERT_EQ(recs[i].calls, 1);
    ASSERT_ERR(recs[i].err, APNS_ECANCELED);
  }
  teardown(&f);
  free(recs);
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
  memset(&o, 0, sizeof o);
  o.size = 1;
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
  memset(&o, 0, sizeof o);
  o.size = 1;
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
    static fx_rec recs[N];
    int done = 0, closed = 0, accepted = 0, ok = 0;
    memset(recs, 0, sizeof recs);
    ASSERT_EQ(uv_loop_init(&loop), 0);
    memset(&o, 0, sizeof o);
    o.host = "127.0.0.1";
    o.port = (uint16_t)port;
    o.size = 1;
    o.reconnect_min_delay_ms = 5;
    o.data = &closed;
    fx_tls_client(&o.tls, &certs);
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
  memset(&o, 0, sizeof o);
  o.size = 2;
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
  memset(&o, 0, sizeof o);
  o.size = 1;
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
    TEST_ENTRY(pool_bad_certificate_stops),
    TEST_ENTRY(pool_reconnects_with_backoff),
    TEST_ENTRY(pool_allocation_failures),
    TEST_SUITE_END,
};
