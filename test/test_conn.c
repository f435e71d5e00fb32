/* apns_conn against apns-mock over real TLS and HTTP/2 on 127.0.0.1, ports chosen by the kernel. */
#include "fixture.h"

#include "alloc.h"
#include "conn.h"
#include "h2.h"
#include "sockout.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#define TOKEN "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

typedef struct {
  uv_loop_t loop;
  apns__certgen_result certs;
  apns_mock_options mo;
  apns_mock *mock;
  apns_conn *conn;
  int connected, connect_status;
  int lost, lost_err;
  char lost_reason[128];
  int closed;
  int done;          /* requests ended */
  int done_at_close; /* requests ended when the close callback ran */
  long live_before;
} fx;

static fx *F;

static void on_connect(apns_conn *c, int status) {
  fx *f = apns_conn_data(c);
  f->connected = 1;
  f->connect_status = status;
}

static void on_lost(apns_conn *c, int err, const char *reason) {
  fx *f = apns_conn_data(c);
  f->lost++;
  f->lost_err = err;
  snprintf(f->lost_reason, sizeof f->lost_reason, "%s", reason ? reason : "");
}

static void on_closed(apns_conn *c) {
  fx *f = apns_conn_data(c);
  f->closed++;
  f->done_at_close = f->done;
}

static void setup(fx *f, int require_client_cert) {
  memset(f, 0, sizeof *f);
  F = f;
  f->live_before = test_alloc_live();
  ASSERT_EQ(uv_loop_init(&f->loop), 0);
  fx_certs(&f->certs, 1);
  fx_mock_options(&f->mo, &f->certs, require_client_cert);
}

static void open_conn(fx *f, apns_conn_options *extra) {
  apns_conn_options o;
  apns_tls_options tlso = APNS_TLS_OPTIONS_INIT;
  char err[256] = "";
  if (extra)
    o = *extra;
  else
    apns_conn_options_init(&o);
  if (f->mock == NULL) f->mock = fx_mock_start(&f->loop, &f->mo);
  o.host = "127.0.0.1";
  if (o.port == 0) o.port = (uint16_t)apns_mock_port(f->mock);
  if (o.tls == NULL) o.tls = fx_tls_client(&tlso, &f->certs);
  o.on_connect = on_connect;
  o.on_lost = on_lost;
  o.data = f;
  int rv = apns_conn_open(&f->loop, &f->conn, &o, err, sizeof err);
  if (rv != 0) test__fail(__FILE__, __LINE__, "apns_conn_open: %s (%s)", apns_strerror(rv), err);
  fx_run_until(&f->loop, &f->connected);
}

static void teardown(fx *f) {
  if (f->conn && !f->closed) {
    ASSERT_OK(apns_conn_close(f->conn, on_closed));
    fx_run_until(&f->loop, &f->closed);
  }
  ASSERT_EQ(f->closed, f->conn ? 1 : 0);
  fx_mock_stop_and_close_loop(&f->loop, f->mock);
  apns__certgen_free(&f->certs);
  ASSERT_EQ(test_alloc_live(), f->live_before);
}

static int post(fx *f, fx_rec *rec, const char *token, uint64_t timeout_ms) {
  apns_request r;
  fx_request(&r, token, timeout_ms);
  rec->counter = &f->done;
  rec->loop = &f->loop;
  return apns_conn_post(f->conn, &r, fx_record, rec);
}

static uint32_t max_streams(apns_conn *c) {
  apns_conn_stats s;
  apns_conn_get_stats(c, &s, sizeof s);
  return s.max_streams;
}

TEST(conn_round_trip_client_cert) {
  fx f;
  fx_rec rec = {0};
  static const char id[] = "1c4d1f1a-3f5b-4c7e-9a8b-0d2e3f405162";
  apns_header headers[] = {{"apns-push-type", "alert"}, {"apns-topic", "com.example.app"}, {"apns-id", id}};
  apns_request r;
  setup(&f, 1);
  open_conn(&f, NULL);
  ASSERT_OK(f.connect_status);
  ASSERT_EQ(apns_conn_get_state(f.conn), APNS_CONN_READY);
  fx_request(&r, TOKEN, 5000);
  r.headers = headers;
  r.num_headers = 3;
  ASSERT_OK(apns_conn_post(f.conn, &r, fx_record, &rec));
  ASSERT_EQ(rec.calls, 0); /* never inside post */
  rec.counter = &f.done;
  fx_run_until(&f.loop, &f.done);
  ASSERT_OK(rec.err);
  ASSERT_EQ(rec.status, 200);
  ASSERT_STREQ(rec.apns_id, id);
  ASSERT_EQ(rec.attempts, 1);
  apns_conn_stats st;
  apns_conn_get_stats(f.conn, &st, sizeof st);
  ASSERT_EQ(st.requests_sent, 1);
  ASSERT_EQ(st.requests_completed, 1);
  ASSERT_EQ(st.in_flight, 0);
  ASSERT_EQ(st.max_streams, 1000);
  ASSERT_GT(st.bytes_in, 0);
  ASSERT_GT(st.bytes_out, 0);
  apns_mock_stats ms;
  apns_mock_get_stats(f.mock, &ms);
  ASSERT_EQ(ms.handshake_failures, 0);
  ASSERT_EQ(ms.status[200], 1);
  teardown(&f);
}

TEST(conn_reasons_and_timestamp) {
  fx f;
  fx_rec bad = {0}, gone = {0};
  setup(&f, 0);
  f.mo.bad_prefix = "bad";
  f.mo.unregistered_prefix = "dead";
  open_conn(&f, NULL);
  ASSERT_OK(f.connect_status);
  ASSERT_OK(post(&f, &bad, "bad0", 5000));
  fx_run_until_count(&f.loop, &f.done, 1);
  /* The first SETTINGS has arrived by now: the second stream is allowed. */
  ASSERT_OK(post(&f, &gone, "dead00", 5000));
  fx_run_until_count(&f.loop, &f.done, 2);
  ASSERT_EQ(bad.status, 400);
  ASSERT_EQ(bad.reason, APNS_REASON_BadDeviceToken);
  ASSERT_EQ(gone.status, 410);
  ASSERT_EQ(gone.reason, APNS_REASON_Unregistered);
  ASSERT_GT(gone.timestamp_ms, 1600000000000LL);
  teardown(&f);
}

TEST(conn_wrong_ca_refused) {
  fx f;
  apns_conn_options o;
  apns_tls_options tlso = APNS_TLS_OPTIONS_INIT;
  setup(&f, 0);
  apns_conn_options_init(&o);
  o.tls = fx_tls_client(&tlso, &f.certs);
  tlso.ca_pem = f.certs.other_ca_cert;
  open_conn(&f, &o);
  ASSERT_ERR(f.connect_status, APNS_ECERTVERIFY);
  ASSERT_TRUE(strstr(apns_conn_last_error(f.conn), "verification") != NULL);
  ASSERT_EQ(apns_conn_get_state(f.conn), APNS_CONN_LOST);
  fx_rec rec = {0};
  ASSERT_ERR(post(&f, &rec, TOKEN, 1000), APNS_ECLOSED);
  ASSERT_EQ(f.lost, 0); /* on_lost is for connections that were ready */
  teardown(&f);
}

TEST(conn_host_name_mismatch_refused) {
  fx f;
  apns_conn_options o;
  apns_tls_options tlso = APNS_TLS_OPTIONS_INIT;
  setup(&f, 0);
  apns_conn_options_init(&o);
  o.tls = fx_tls_client(&tlso, &f.certs);
  tlso.verify_name = "api.push.apple.com";
  open_conn(&f, &o);
  ASSERT_ERR(f.connect_status, APNS_ECERTVERIFY);
  ASSERT_TRUE(strstr(apns_conn_last_error(f.conn), "mismatch") != NULL);
  teardown(&f);
}

TEST(conn_insecure_skips_verification) {
  fx f;
  apns_conn_options o;
  apns_tls_options tlso = APNS_TLS_OPTIONS_INIT;
  fx_rec rec = {0};
  setup(&f, 0);
  apns_conn_options_init(&o);
  o.tls = fx_tls_client(&tlso, &f.certs);
  tlso.ca_pem = f.certs.other_ca_cert;
  tlso.verify_name = "wrong.example";
  tlso.insecure_skip_verify = 1;
  open_conn(&f, &o);
  ASSERT_OK(f.connect_status);
  ASSERT_OK(post(&f, &rec, TOKEN, 5000));
  fx_run_until(&f.loop, &f.done);
  ASSERT_EQ(rec.status, 200);
  teardown(&f);
}

TEST(conn_missing_client_cert_refused) {
  fx f;
  apns_conn_options o;
  apns_tls_options tlso = APNS_TLS_OPTIONS_INIT;
  setup(&f, 1);
  apns_conn_options_init(&o);
  o.tls = fx_tls_client(&tlso, &f.certs);
  tlso.cert_pem = NULL;
  tlso.key_pem = NULL;
  open_conn(&f, &o);
  ASSERT_TRUE(f.connect_status < 0);
  ASSERT_EQ(apns_conn_get_state(f.conn), APNS_CONN_LOST);
  teardown(&f);
}

TEST(conn_refused_port) {
  fx f;
  apns_conn_options o;
  apns_tls_options tlso = APNS_TLS_OPTIONS_INIT;
  char err[128];
  setup(&f, 0);
  /* A port the kernel gave us and we closed at once: nothing listens there. */
  uv_tcp_t t;
  struct sockaddr_in a;
  int len = sizeof a;
  uv_ip4_addr("127.0.0.1", 0, &a);
  ASSERT_EQ(uv_tcp_init(&f.loop, &t), 0);
  ASSERT_EQ(uv_tcp_bind(&t, (const struct sockaddr *)&a, 0), 0);
  ASSERT_EQ(uv_tcp_getsockname(&t, (struct sockaddr *)&a, &len), 0);
  uv_close((uv_handle_t *)&t, NULL);
  apns_conn_options_init(&o);
  o.tls = fx_tls_client(&tlso, &f.certs);
  o.host = "127.0.0.1";
  o.port = ntohs(a.sin_port);
  o.on_connect = on_connect;
  o.data = &f;
  ASSERT_OK(apns_conn_open(&f.loop, &f.conn, &o, err, sizeof err));
  ASSERT_EQ(f.connected, 0); /* never inside open */
  fx_run_until(&f.loop, &f.connected);
  ASSERT_ERR(f.connect_status, UV_ECONNREFUSED);
  teardown(&f);
}

TEST(conn_bad_options) {
  uv_loop_t loop;
  apns_conn *c = NULL;
  apns_conn_options o;
  apns_tls_options tlso = APNS_TLS_OPTIONS_INIT;
  char err[256] = "";
  ASSERT_EQ(uv_loop_init(&loop), 0);
  apns_conn_options_init(&o);
  o.tls = &tlso;
  ASSERT_ERR(apns_conn_open(&loop, &c, &o, err, sizeof err), APNS_EINVAL);
  ASSERT_TRUE(strstr(err, "host") != NULL);
  o.host = "127.0.0.1";
  tlso.ca_file = "/nonexistent/ca.pem";
  ASSERT_ERR(apns_conn_open(&loop, &c, &o, err, sizeof err), APNS_EBADCERT);
  ASSERT_TRUE(strstr(err, "/nonexistent/ca.pem") != NULL);
  tlso.ca_file = NULL;
  o.authority = "evil\r\nx: y";
  ASSERT_ERR(apns_conn_open(&loop, &c, &o, err, sizeof err), APNS_EBADHEADER);
  ASSERT_NULL(c);
  ASSERT_EQ(uv_loop_close(&loop), 0);
}

TEST(conn_bad_request_refused_at_post) {
  fx f;
  fx_rec rec = {0};
  apns_request r;
  apns_header evil[] = {{"apns-topic", "com.example.app\r\nx-injected: 1"}};
  setup(&f, 0);
  open_conn(&f, NULL);
  fx_request(&r, TOKEN, 1000);
  r.headers = evil;
  r.num_headers = 1;
  ASSERT_ERR(apns_conn_post(f.conn, &r, fx_record, &rec), APNS_EBADHEADER);
  fx_request(&r, TOKEN, 1000);
  r.path = "no-slash";
  ASSERT_ERR(apns_conn_post(f.conn, &r, fx_record, &rec), APNS_EINVAL);
  ASSERT_ERR(apns_conn_set_authorization(f.conn, "bearer x\ny"), APNS_EBADHEADER);
  ASSERT_EQ(rec.calls, 0);
  teardown(&f);
}

TEST(conn_max_streams_one_blocks_second) {
  fx f;
  fx_rec a = {0}, b = {0}, c = {0};
  setup(&f, 0);
  f.mo.max_streams = 1;
  open_conn(&f, NULL);
  ASSERT_OK(post(&f, &a, TOKEN, 5000));
  /* Before the server's first SETTINGS and after it (limit 1) the second post is blocked. */
  ASSERT_ERR(post(&f, &b, TOKEN, 5000), APNS_EBLOCKED);
  ASSERT_EQ(apns_conn_writable(f.conn), 0);
  fx_run_until_count(&f.loop, &f.done, 1);
  ASSERT_EQ(a.status, 200);
  apns_conn_stats st;
  apns_conn_get_stats(f.conn, &st, sizeof st);
  ASSERT_EQ(st.max_streams, 1);
  ASSERT_OK(post(&f, &b, TOKEN, 5000));
  ASSERT_ERR(post(&f, &c, TOKEN, 5000), APNS_EBLOCKED);
  fx_run_until_count(&f.loop, &f.done, 2);
  ASSERT_EQ(b.status, 200);
  ASSERT_EQ(b.calls, 1);
  ASSERT_EQ(c.calls, 0);
  teardown(&f);
}

TEST(conn_follows_streams_rise) {
  fx f;
  fx_rec first = {0};
  static fx_rec recs[999];
  setup(&f, 0);
  f.mo.max_streams = 1;
  f.mo.streams_after = 1000;
  open_conn(&f, NULL);
  ASSERT_OK(post(&f, &first, TOKEN, 5000));
  fx_run_until_count(&f.loop, &f.done, 1);
  /* The raised limit comes with (or right after) the first response. */
  while (max_streams(f.conn) < 1000) ASSERT_NE(uv_run(&f.loop, UV_RUN_ONCE), 0);
  for (int i = 0; i < 999; i++) ASSERT_OK(post(&f, &recs[i], TOKEN, 10000));
  apns_conn_stats st;
  apns_conn_get_stats(f.conn, &st, sizeof st);
  ASSERT_EQ(st.in_flight, 999);
  fx_run_until_count(&f.loop, &f.done, 1000);
  for (int i = 0; i < 999; i++) {
    ASSERT_EQ(recs[i].calls, 1);
    ASSERT_EQ(recs[i].status, 200);
  }
  teardown(&f);
}

TEST(conn_thousand_concurrent_one_write_per_turn) {
  fx f;
  static fx_rec recs[1000];
  fx_rec first = {0};
  setup(&f, 0);
  open_conn(&f, NULL);
  ASSERT_OK(post(&f, &first, TOKEN, 5000));
  fx_run_until_count(&f.loop, &f.done, 1);
  apns_conn_stats before, after;
  apns_conn_get_stats(f.conn, &before, sizeof before);
  for (int i = 0; i < 1000; i++) ASSERT_OK(post(&f, &recs[i], TOKEN, 10000));
  ASSERT_ERR(post(&f, &first, TOKEN, 10000), APNS_EBLOCKED);
  ASSERT_EQ(uv_run(&f.loop, UV_RUN_NOWAIT) >= 0, 1);
  apns_conn_get_stats(f.conn, &after, sizeof after);
  /* A thousand posts in one turn leave in one write. */
  ASSERT_EQ(after.writes - before.writes, 1);
  fx_run_until_count(&f.loop, &f.done, 1001);
  for (int i = 0; i < 1000; i++) ASSERT_EQ(recs[i].status, 200);
  teardown(&f);
}

TEST(conn_deadline_resets_stream) {
  fx f;
  fx_rec slow = {0}, next = {0};
  setup(&f, 0);
  f.mo.delay_ms = 500;
  f.mo.max_streams = 1;
  open_conn(&f, NULL);
  uint64_t t0 = uv_now(&f.loop);
  ASSERT_OK(post(&f, &slow, TOKEN, 100));
  fx_run_until_count(&f.loop, &f.done, 1);
  ASSERT_ERR(slow.err, APNS_ETIMEDOUT);
  ASSERT_EQ(slow.delivery, APNS_DELIVERY_UNKNOWN);
  /* Not before the deadline, and well before the server's answer would have come. */
  ASSERT_GE(slow.t_end - t0, 100);
  ASSERT_LT(slow.t_end - t0, 450 * test_time_factor());
  /* The slot is free at once, though the limit is one stream. */
  ASSERT_OK(post(&f, &next, TOKEN, 5000));
  fx_run_until_count(&f.loop, &f.done, 2);
  ASSERT_EQ(next.status, 200);
  ASSERT_EQ(slow.calls, 1);
  teardown(&f);
}

/* Each request posted has an earlier deadline than the one before (a pool retry's time left, or timeout_ms set per
 * request): they end in deadline order, each at its own deadline, and keeping them costs O(log n) steps apiece. A
 * list sorted by walking back from its tail took n/2 steps per post here. All but the first go to the heap. */
TEST(conn_deadlines_in_reverse_order_cost_log_n) {
  enum { N = 1000 };
  fx f;
  static fx_rec recs[N];
  uint64_t due[N];
  memset(recs, 0, sizeof recs);
  setup(&f, 0);
  f.mo.delay_ms = 60000; /* no answer comes: every request ends at its deadline */
  open_conn(&f, NULL);
  ASSERT_GE(max_streams(f.conn), N);
  uint64_t s0 = apns__conn_test_deadline_steps(f.conn);
  for (int i = 0; i < N; i++) {
    uint64_t timeout = 200 + (uint64_t)(N - 1 - i);
    due[i] = uv_now(&f.loop) + timeout;
    ASSERT_OK(post(&f, &recs[i], TOKEN, timeout));
  }
  uint64_t posting = apns__conn_test_deadline_steps(f.conn) - s0;
  /* log2(1000) is 10: an insertion walks to its place and rises to the root. */
  if (posting > (uint64_t)N * 2 * 11)
    test__fail(__FILE__, __LINE__, "%llu steps to post %d", (unsigned long long)posting, N);
  fx_run_until_count(&f.loop, &f.done, N);
  for (int i = 0; i < N; i++) {
    ASSERT_EQ(recs[i].calls, 1);
    ASSERT_ERR(recs[i].err, APNS_ETIMEDOUT);
    ASSERT_GE(recs[i].t_end, due[i]);
    if (i > 0) ASSERT_LE(recs[i].t_end, recs[i - 1].t_end); /* the later post had the earlier deadline */
  }
  uint64_t all = apns__conn_test_deadline_steps(f.conn) - s0;
  if (all > (uint64_t)N * 4 * 11)
    test__fail(__FILE__, __LINE__, "%llu steps for %d deadlines", (unsigned long long)all, N);
  teardown(&f);
}

/* Requests posted in one loop turn with one timeout share a deadline: they end in the order they were posted, and
 * cost the deadline structure no heap step. */
static int equal_order[64], equal_count;
static void equal_done(int err, const apns_response *res, void *data) {
  (void)res;
  ASSERT_ERR(err, APNS_ETIMEDOUT);
  equal_order[equal_count++] = (int)(intptr_t)data;
}

TEST(conn_equal_deadlines_end_in_post_order) {
  fx f;
  apns_request r;
  setup(&f, 0);
  f.mo.delay_ms = 60000;
  open_conn(&f, NULL);
  equal_count = 0;
  uint64_t s0 = apns__conn_test_deadline_steps(f.conn);
  for (int i = 0; i < 64; i++) {
    fx_request(&r, TOKEN, 100);
    ASSERT_OK(apns_conn_post(f.conn, &r, equal_done, (void *)(intptr_t)i));
  }
  fx_run_until_count(&f.loop, &equal_count, 64);
  for (int i = 0; i < 64; i++) ASSERT_EQ(equal_order[i], i);
  /* Deadlines in order go to the FIFO in O(1): the heap for early ones took no step. */
  ASSERT_UEQ(apns__conn_test_deadline_steps(f.conn), s0);
  teardown(&f);
}

TEST(conn_goaway_unprocessed_streams) {
  fx f;
  static fx_rec recs[10];
  setup(&f, 0);
  f.mo.goaway_after = 4;
  f.mo.goaway_reason = "Shutdown";
  f.mo.paused = 1; /* the ten requests arrive together, then the mock answers */
  open_conn(&f, NULL);
  fx_rec first = {0};
  ASSERT_OK(post(&f, &first, TOKEN, 5000));
  /* Wait for SETTINGS (1000 streams), then post nine more. */
  while (!apns_conn_writable(f.conn)) ASSERT_NE(uv_run(&f.loop, UV_RUN_ONCE), 0);
  for (int i = 0; i < 9; i++) ASSERT_OK(post(&f, &recs[i], TOKEN, 5000));
  while (1) {
    apns_mock_stats ms;
    apns_mock_get_stats(f.mock, &ms);
    if (ms.requests >= 4) break;
    ASSERT_NE(uv_run(&f.loop, UV_RUN_ONCE), 0);
  }
  apns_mock_set_paused(f.mock, 0);
  fx_run_until_count(&f.loop, &f.done, 10);
  int ok = first.status == 200, unprocessed = 0;
  for (int i = 0; i < 9; i++) {
    ASSERT_EQ(recs[i].calls, 1);
    if (recs[i].err == 0) {
      ASSERT_EQ(recs[i].status, 200);
      ok++;
    } else {
      ASSERT_ERR(recs[i].err, APNS_ECLOSED);
      ASSERT_EQ(recs[i].delivery, APNS_DELIVERY_NOT_PROCESSED);
      unprocessed++;
    }
  }
  ASSERT_EQ(ok, 4);
  ASSERT_EQ(unprocessed, 6);
  ASSERT_TRUE(strstr(apns_conn_last_error(f.conn), "Shutdown") != NULL);
  fx_run_until(&f.loop, &f.lost);
  ASSERT_STREQ(f.lost_reason, "Shutdown");
  fx_rec late = {0};
  ASSERT_ERR(post(&f, &late, TOKEN, 1000), APNS_ECLOSED);
  teardown(&f);
}

TEST(conn_drop_ends_each_once) {
  fx f;
  static fx_rec recs[20];
  fx_rec first = {0};
  setup(&f, 0);
  f.mo.drop_after = 6;
  open_conn(&f, NULL);
  ASSERT_OK(post(&f, &first, TOKEN, 5000));
  while (!apns_conn_writable(f.conn)) ASSERT_NE(uv_run(&f.loop, UV_RUN_ONCE), 0);
  for (int i = 0; i < 20; i++) ASSERT_OK(post(&f, &recs[i], TOKEN, 5000));
  fx_run_until_count(&f.loop, &f.done, 21);
  fx_run_until(&f.loop, &f.lost);
  int closed = 0;
  for (int i = 0; i < 20; i++) {
    ASSERT_EQ(recs[i].calls, 1);
    if (recs[i].err) {
      ASSERT_ERR(recs[i].err, APNS_ECLOSED);
      ASSERT_EQ(recs[i].delivery, APNS_DELIVERY_UNKNOWN);
      closed++;
    }
  }
  ASSERT_GE(closed, 1);
  ASSERT_EQ(f.lost, 1);
  ASSERT_ERR(f.lost_err, APNS_ECLOSED);
  teardown(&f);
}

TEST(conn_server_killed_mid_flight) {
  fx f;
  static fx_rec recs[50];
  setup(&f, 0);
  open_conn(&f, NULL);
  fx_rec first = {0};
  ASSERT_OK(post(&f, &first, TOKEN, 5000));
  fx_run_until_count(&f.loop, &f.done, 1);
  apns_mock_set_paused(f.mock, 1);
  for (int i = 0; i < 50; i++) ASSERT_OK(post(&f, &recs[i], TOKEN, 5000));
  while (1) {
    apns_mock_stats ms;
    apns_mock_get_stats(f.mock, &ms);
    if (ms.requests >= 51) break;
    ASSERT_NE(uv_run(&f.loop, UV_RUN_ONCE), 0);
  }
  apns_mock_drop_connections(f.mock);
  fx_run_until_count(&f.loop, &f.done, 51);
  for (int i = 0; i < 50; i++) {
    ASSERT_EQ(recs[i].calls, 1);
    ASSERT_ERR(recs[i].err, APNS_ECLOSED);
    ASSERT_EQ(recs[i].delivery, APNS_DELIVERY_UNKNOWN);
  }
  fx_run_until(&f.loop, &f.lost);
  teardown(&f);
}

TEST(conn_close_with_500_in_flight) {
  fx f;
  static fx_rec recs[500];
  setup(&f, 0);
  f.mo.paused = 1;
  open_conn(&f, NULL);
  fx_rec first = {0};
  ASSERT_OK(post(&f, &first, TOKEN, 5000));
  while (!apns_conn_writable(f.conn)) ASSERT_NE(uv_run(&f.loop, UV_RUN_ONCE), 0);
  for (int i = 0; i < 500; i++) ASSERT_OK(post(&f, &recs[i], TOKEN, 10000));
  for (int i = 0; i < 5; i++) uv_run(&f.loop, UV_RUN_NOWAIT);
  ASSERT_OK(apns_conn_close(f.conn, on_closed));
  ASSERT_ERR(apns_conn_close(f.conn, on_closed), APNS_EBUSY);
  ASSERT_EQ(f.done, 0); /* nothing ends inside close */
  fx_rec late = {0};
  ASSERT_ERR(post(&f, &late, TOKEN, 1000), APNS_ECLOSED);
  fx_run_until(&f.loop, &f.closed);
  ASSERT_EQ(f.done_at_close, 501); /* every request ended before the close callback */
  for (int i = 0; i < 500; i++) {
    ASSERT_EQ(recs[i].calls, 1);
    ASSERT_ERR(recs[i].err, APNS_ECANCELED);
  }
  teardown(&f);
}

/* Closing from inside a response callback is safe, and the other requests still end once. */
static void close_in_callback(int err, const apns_response *res, void *data) {
  fx_record(err, res, data);
  ASSERT_OK(apns_conn_close(F->conn, on_closed));
}

TEST(conn_close_inside_callback) {
  fx f;
  static fx_rec recs[10];
  fx_rec first = {0};
  apns_request r;
  setup(&f, 0);
  open_conn(&f, NULL);
  ASSERT_OK(post(&f, &first, TOKEN, 5000));
  fx_run_until_count(&f.loop, &f.done, 1);
  fx_request(&r, TOKEN, 5000);
  first.calls = 0;
  first.counter = &f.done;
  ASSERT_OK(apns_conn_post(f.conn, &r, close_in_callback, &first));
  for (int i = 0; i < 10; i++) ASSERT_OK(post(&f, &recs[i], TOKEN, 5000));
  fx_run_until(&f.loop, &f.closed);
  ASSERT_EQ(first.calls, 1);
  for (int i = 0; i < 10; i++) ASSERT_EQ(recs[i].calls, 1);
  teardown(&f);
}

TEST(conn_ping_keeps_idle_connection) {
  fx f;
  apns_conn_options o;
  setup(&f, 0);
  apns_conn_options_init(&o);
  o.ping_idle_ms = 30;
  o.ping_timeout_ms = 2000;
  open_conn(&f, &o);
  apns_conn_stats a, b;
  apns_conn_get_stats(f.conn, &a, sizeof a);
  /* Idle: PINGs go out and their ACKs come back; the connection stays ready. */
  while (1) {
    apns_conn_get_stats(f.conn, &b, sizeof b);
    if (b.writes >= a.writes + 3 && b.bytes_in > a.bytes_in) break;
    ASSERT_NE(uv_run(&f.loop, UV_RUN_ONCE), 0);
  }
  ASSERT_EQ(apns_conn_get_state(f.conn), APNS_CONN_READY);
  ASSERT_EQ(f.lost, 0);
  teardown(&f);
}

/* A server that goes silent without closing: the PING goes unanswered, the connection is lost after ping_timeout
 * (not before), and the requests on it end once, "may have been processed". */
TEST(conn_ping_timeout_on_silent_peer) {
  fx f;
  apns_conn_options o;
  fx_rec rec = {0};
  setup(&f, 0);
  f.mock = fx_mock_start(&f.loop, &f.mo);
  fx_proxy *proxy = fx_proxy_start(&f.loop, apns_mock_port(f.mock));
  apns_conn_options_init(&o);
  o.port = (uint16_t)fx_proxy_port(proxy);
  o.ping_idle_ms = 50;
  o.ping_timeout_ms = 200 * (uint64_t)test_time_factor(); /* an ACK may take that long under valgrind */
  open_conn(&f, &o);
  ASSERT_OK(f.connect_status);
  fx_rec first = {0};
  ASSERT_OK(post(&f, &first, TOKEN, 5000));
  fx_run_until(&f.loop, &f.done);
  fx_proxy_freeze(proxy, 1);
  uint64_t t0 = uv_now(&f.loop);
  ASSERT_OK(post(&f, &rec, TOKEN, 10000));
  fx_run_until(&f.loop, &f.lost);
  uint64_t elapsed = uv_now(&f.loop) - t0;
  ASSERT_ERR(f.lost_err, APNS_ETIMEDOUT);
  ASSERT_GE(elapsed, 200);                       /* the idle time and the PING timeout both had to pass */
  ASSERT_LT(elapsed, 2000 * test_time_factor()); /* and not much more */
  ASSERT_EQ(rec.calls, 1);
  ASSERT_ERR(rec.err, APNS_ECLOSED);
  ASSERT_EQ(rec.delivery, APNS_DELIVERY_UNKNOWN);
  ASSERT_TRUE(strstr(apns_conn_last_error(f.conn), "PING") != NULL);
  fx_proxy_stop(proxy);
  teardown(&f);
}

/* A server (here the relay in front of it) that resets the connection while we write, with a thousand streams in
 * flight and far more bytes than the socket takes: no SIGPIPE (the test runs with it at its default, so one would
 * kill it), every request ends once, the connection is lost once, and nothing is left on the loop. */
TEST(conn_reset_mid_write_no_sigpipe) {
  fx f;
  apns_conn_options o;
  static fx_rec recs[1000];
  static char pad[16 * 1024];
  setup(&f, 0);
  f.mock = fx_mock_start(&f.loop, &f.mo);
  fx_proxy *proxy = fx_proxy_start(&f.loop, apns_mock_port(f.mock));
  apns_conn_options_init(&o);
  o.port = (uint16_t)fx_proxy_port(proxy);
  open_conn(&f, &o);
  ASSERT_OK(f.connect_status);
  fx_rec first = {0};
  ASSERT_OK(post(&f, &first, TOKEN, 5000));
  fx_run_until(&f.loop, &f.done);
  ASSERT_EQ(first.status, 200);
  /* 16 KiB of header per request, too large for the HPACK table: 16 MiB of HEADERS that flow control does not
   * hold back, and that a relay which stops reading leaves mostly in our own buffers. */
  memset(pad, 'p', sizeof pad - 1);
  apns_header headers[] = {{"apns-push-type", "alert"}, {"apns-topic", "com.example.app"}, {"x-pad", pad}};
  fx_proxy_hold(proxy, 1);
  for (int i = 0; i < 1000; i++) {
    apns_request r;
    fx_request(&r, TOKEN, 10000);
    r.headers = headers;
    r.num_headers = 3;
    recs[i].counter = &f.done;
    ASSERT_OK(apns_conn_post(f.conn, &r, fx_record, &recs[i]));
  }
  for (int i = 0; i < 5; i++) uv_run(&f.loop, UV_RUN_NOWAIT);
  fx_proxy_reset(proxy);
  fx_run_until_count(&f.loop, &f.done, 1001);
  fx_run_until(&f.loop, &f.lost);
  /* Those whose bytes the socket took may have reached the server; those still in our buffer cannot have: most of
   * the 16 MiB never left. */
  int unknown = 0, not_processed = 0;
  for (int i = 0; i < 1000; i++) {
    ASSERT_EQ(recs[i].calls, 1);
    ASSERT_ERR(recs[i].err, APNS_ECLOSED);
    if (recs[i].delivery == APNS_DELIVERY_UNKNOWN) {
      ASSERT_EQ(not_processed, 0); /* in id order: the unwritten are the newest */
      unknown++;
    } else {
      ASSERT_EQ(recs[i].delivery, APNS_DELIVERY_NOT_PROCESSED);
      not_processed++;
    }
  }
  ASSERT_GT(unknown, 0);
  ASSERT_GT(not_processed, 500);
  ASSERT_EQ(f.lost, 1);
  ASSERT_TRUE(f.lost_err == UV_ECONNRESET || f.lost_err == UV_EPIPE || f.lost_err == APNS_ECLOSED);
  fx_proxy_stop(proxy);
  teardown(&f);
}

/* Close ends each request by what the server can have seen: an answered one has its response, one written but not
 * answered ends UNKNOWN, and one posted in the same loop turn as the close is never written (the server does not
 * get it) and ends NOT_PROCESSED. */
TEST(conn_close_drops_unsent_not_processed) {
  fx f;
  fx_rec answered = {0}, written = {0}, unsent = {0};
  apns_mock_stats ms;
  setup(&f, 0);
  open_conn(&f, NULL);
  ASSERT_OK(post(&f, &answered, TOKEN, 5000));
  fx_run_until(&f.loop, &f.done);
  ASSERT_EQ(answered.status, 200);
  apns_mock_set_paused(f.mock, 1);
  ASSERT_OK(post(&f, &written, TOKEN, 5000));
  do {
    ASSERT_NE(uv_run(&f.loop, UV_RUN_ONCE), 0);
    apns_mock_get_stats(f.mock, &ms);
  } while (ms.requests < 2);
  ASSERT_OK(post(&f, &unsent, TOKEN, 5000));
  ASSERT_OK(apns_conn_close(f.conn, on_closed));
  ASSERT_EQ(written.calls + unsent.calls, 0); /* nothing ends inside close */
  fx_run_until(&f.loop, &f.closed);
  ASSERT_EQ(f.done_at_close, 3);
  ASSERT_ERR(written.err, APNS_ECANCELED);
  ASSERT_EQ(written.delivery, APNS_DELIVERY_UNKNOWN);
  ASSERT_ERR(unsent.err, APNS_ECANCELED);
  ASSERT_EQ(unsent.delivery, APNS_DELIVERY_NOT_PROCESSED);
  /* The server read all there was (the connection is gone on its side too) and got two requests, not three. */
  for (apns_mock_get_stats(f.mock, &ms); ms.connections_open > 0; apns_mock_get_stats(f.mock, &ms))
    ASSERT_NE(uv_run(&f.loop, UV_RUN_ONCE), 0);
  ASSERT_EQ(ms.requests, 2);
  teardown(&f);
}

/* UINT64_MAX is "no timeout" everywhere: connect, PING ACK and request deadlines must not wrap into the past. The
 * mock answers after 50 ms, so a deadline that wrapped would end the request first. */
TEST(conn_timeouts_off_saturate) {
  fx f;
  apns_conn_options o;
  fx_rec rec = {0}, second = {0};
  setup(&f, 0);
  f.mo.delay_ms = 50;
  apns_conn_options_init(&o);
  o.connect_timeout_ms = UINT64_MAX;
  o.ping_idle_ms = 20;
  o.ping_timeout_ms = UINT64_MAX;
  open_conn(&f, &o);
  ASSERT_OK(f.connect_status);
  ASSERT_OK(post(&f, &rec, TOKEN, UINT64_MAX));
  fx_run_until(&f.loop, &f.done);
  ASSERT_OK(rec.err);
  ASSERT_EQ(rec.status, 200);
  /* Idle long enough for a PING with no timeout to go out; the connection stays ready and serves again. */
  apns_conn_stats a, b;
  apns_conn_get_stats(f.conn, &a, sizeof a);
  do {
    ASSERT_NE(uv_run(&f.loop, UV_RUN_ONCE), 0);
    apns_conn_get_stats(f.conn, &b, sizeof b);
  } while (b.writes < a.writes + 2);
  ASSERT_EQ(apns_conn_get_state(f.conn), APNS_CONN_READY);
  ASSERT_OK(post(&f, &second, TOKEN, UINT64_MAX));
  fx_run_until_count(&f.loop, &f.done, 2);
  ASSERT_EQ(second.status, 200);
  ASSERT_EQ(f.lost, 0);
  teardown(&f);
}

static int capacity_calls;
static void count_capacity(apns_conn *c) {
  (void)c;
  capacity_calls++;
}

/* After about 2^31 stream ids nghttp2 refuses new streams: the connection stops taking requests some ids before,
 * drains as after a GOAWAY (the pool hears of it through the capacity callback, never inside post), lets its open
 * streams finish, then ends. The test starts the ids three requests before the margin. */
TEST(conn_stream_ids_run_out_drains) {
  fx f;
  fx_rec recs[3] = {{0}}, late = {0};
  setup(&f, 0);
  apns__conn_test_first_stream_id(INT32_MAX - APNS__H2_ID_MARGIN - 4);
  open_conn(&f, NULL);
  capacity_calls = 0;
  apns__conn_set_capacity_cb(f.conn, count_capacity);
  ASSERT_OK(post(&f, &recs[0], TOKEN, 5000));
  fx_run_until(&f.loop, &f.done);
  while (max_streams(f.conn) < 1000) ASSERT_NE(uv_run(&f.loop, UV_RUN_ONCE), 0);
  int before = capacity_calls;
  ASSERT_OK(post(&f, &recs[1], TOKEN, 5000));
  ASSERT_EQ(apns_conn_writable(f.conn), 1);
  ASSERT_OK(post(&f, &recs[2], TOKEN, 5000));
  /* That was the last: no more requests, and the state says why. */
  ASSERT_EQ(apns_conn_writable(f.conn), 0);
  ASSERT_EQ(apns_conn_get_state(f.conn), APNS_CONN_DRAINING);
  ASSERT_ERR(post(&f, &late, TOKEN, 5000), APNS_ECLOSED);
  ASSERT_EQ(capacity_calls, before); /* not inside post */
  fx_run_until_count(&f.loop, &f.done, 3);
  ASSERT_EQ(capacity_calls, before + 1);
  for (int i = 0; i < 3; i++) {
    ASSERT_EQ(recs[i].calls, 1);
    ASSERT_EQ(recs[i].status, 200);
  }
  fx_run_until(&f.loop, &f.lost);
  ASSERT_ERR(f.lost_err, APNS_ECLOSED);
  ASSERT_EQ(late.calls, 0);
  ASSERT_TRUE(strstr(apns_conn_last_error(f.conn), "stream ids") != NULL);
  teardown(&f);
}

/* ---- the state machine: each transition, and each outcome of a request under each way a connection ends ---- */

/* A connection drained by GOAWAY (last-stream-id 1, so stream 1 is below it) whose one stream is held by the
 * server. Returns with the state DRAINING and the request still open. */
static void drain_with_held_stream(fx *f, fx_rec *rec, uint64_t timeout_ms) {
  f->mo.goaway_after = 1;
  f->mo.goaway_reason = "Shutdown";
  f->mo.paused = 1;
  open_conn(f, NULL);
  ASSERT_EQ(apns_conn_get_state(f->conn), APNS_CONN_READY);
  ASSERT_OK(post(f, rec, TOKEN, timeout_ms));
  while (apns_conn_get_state(f->conn) == APNS_CONN_READY) ASSERT_NE(uv_run(&f->loop, UV_RUN_ONCE), 0);
  ASSERT_EQ(apns_conn_get_state(f->conn), APNS_CONN_DRAINING);
  ASSERT_EQ(apns_conn_writable(f->conn), 0);
  ASSERT_EQ(rec->calls, 0);
  fx_rec late = {0};
  ASSERT_ERR(post(f, &late, TOKEN, 1000), APNS_ECLOSED);
}

/* DRAINING -> LOST when the last stream times out: at once, not at the next read (a PING 15 s later). */
TEST(conn_draining_last_stream_timeout_ends_at_once) {
  fx f;
  fx_rec rec = {0};
  setup(&f, 0);
  drain_with_held_stream(&f, &rec, 300 * (uint64_t)test_time_factor());
  fx_run_until(&f.loop, &f.done);
  ASSERT_ERR(rec.err, APNS_ETIMEDOUT);
  ASSERT_EQ(rec.delivery, APNS_DELIVERY_UNKNOWN); /* written, below the GOAWAY: the server may act on it */
  ASSERT_EQ(f.lost, 1);                           /* in the same turn as the stream's end */
  ASSERT_ERR(f.lost_err, APNS_ECLOSED);
  ASSERT_STREQ(f.lost_reason, "Shutdown");
  ASSERT_EQ(apns_conn_get_state(f.conn), APNS_CONN_LOST);
  teardown(&f);
}

/* DRAINING -> LOST when the last stream is answered: a stream below GOAWAY's last-stream-id is still served. */
TEST(conn_draining_last_stream_answered_then_lost) {
  fx f;
  fx_rec rec = {0};
  setup(&f, 0);
  drain_with_held_stream(&f, &rec, 5000);
  apns_mock_set_paused(f.mock, 0);
  fx_run_until(&f.loop, &f.done);
  ASSERT_OK(rec.err);
  ASSERT_EQ(rec.status, 200);
  ASSERT_EQ(rec.delivery, APNS_DELIVERY_RESPONDED);
  ASSERT_EQ(f.lost, 1);
  ASSERT_STREQ(f.lost_reason, "Shutdown");
  teardown(&f);
}

/* DRAINING -> CLOSING: the open stream ends APNS_ECANCELED, UNKNOWN (it was written), and on_lost never runs. */
TEST(conn_close_while_draining) {
  fx f;
  fx_rec rec = {0};
  setup(&f, 0);
  drain_with_held_stream(&f, &rec, 5000);
  ASSERT_OK(apns_conn_close(f.conn, on_closed));
  ASSERT_EQ(apns_conn_get_state(f.conn), APNS_CONN_CLOSING);
  fx_run_until(&f.loop, &f.closed);
  ASSERT_EQ(f.done_at_close, 1);
  ASSERT_ERR(rec.err, APNS_ECANCELED);
  ASSERT_EQ(rec.delivery, APNS_DELIVERY_UNKNOWN);
  ASSERT_EQ(f.lost, 0);
  teardown(&f);
}

/* DRAINING (ids spent) -> LOST when the last stream is reset by its deadline. */
TEST(conn_ids_spent_last_stream_timeout_ends_at_once) {
  fx f;
  fx_rec first = {0}, rec = {0};
  setup(&f, 0);
  apns__conn_test_first_stream_id(INT32_MAX - APNS__H2_ID_MARGIN - 2);
  open_conn(&f, NULL);
  ASSERT_OK(post(&f, &first, TOKEN, 5000));
  fx_run_until(&f.loop, &f.done);
  apns_mock_set_paused(f.mock, 1);
  ASSERT_OK(post(&f, &rec, TOKEN, 100));
  ASSERT_EQ(apns_conn_get_state(f.conn), APNS_CONN_DRAINING);
  fx_run_until_count(&f.loop, &f.done, 2);
  ASSERT_ERR(rec.err, APNS_ETIMEDOUT);
  ASSERT_EQ(f.lost, 1);
  ASSERT_ERR(f.lost_err, APNS_ECLOSED);
  ASSERT_EQ(apns_conn_get_state(f.conn), APNS_CONN_LOST);
  teardown(&f);
}

/* CONNECTING -> CLOSING: on_connect never runs, the close callback does, nothing is left on the loop. */
TEST(conn_close_while_connecting) {
  fx f;
  apns_conn_options o;
  apns_tls_options tlso = APNS_TLS_OPTIONS_INIT;
  char err[128];
  setup(&f, 0);
  f.mock = fx_mock_start(&f.loop, &f.mo);
  apns_conn_options_init(&o);
  o.tls = fx_tls_client(&tlso, &f.certs);
  o.host = "127.0.0.1";
  o.port = (uint16_t)apns_mock_port(f.mock);
  o.on_connect = on_connect;
  o.data = &f;
  ASSERT_OK(apns_conn_open(&f.loop, &f.conn, &o, err, sizeof err));
  ASSERT_EQ(apns_conn_get_state(f.conn), APNS_CONN_CONNECTING);
  fx_rec rec = {0};
  ASSERT_ERR(post(&f, &rec, TOKEN, 1000), APNS_EBLOCKED);
  ASSERT_OK(apns_conn_close(f.conn, on_closed));
  ASSERT_EQ(apns_conn_get_state(f.conn), APNS_CONN_CLOSING);
  fx_run_until(&f.loop, &f.closed);
  ASSERT_EQ(f.connected, 0);
  ASSERT_EQ(rec.calls, 0);
  teardown(&f);
}

/* LOST -> CLOSING: after the server dropped the connection, close still ends it cleanly, once. */
TEST(conn_close_after_lost) {
  fx f;
  fx_rec rec = {0};
  setup(&f, 0);
  open_conn(&f, NULL);
  ASSERT_OK(post(&f, &rec, TOKEN, 5000));
  fx_run_until(&f.loop, &f.done);
  apns_mock_drop_connections(f.mock);
  fx_run_until(&f.loop, &f.lost);
  ASSERT_EQ(apns_conn_get_state(f.conn), APNS_CONN_LOST);
  ASSERT_ERR(post(&f, &rec, TOKEN, 1000), APNS_ECLOSED);
  ASSERT_OK(apns_conn_close(f.conn, on_closed));
  ASSERT_EQ(apns_conn_get_state(f.conn), APNS_CONN_CLOSING);
  fx_run_until(&f.loop, &f.closed);
  ASSERT_EQ(f.lost, 1);
  teardown(&f);
}

/* A 127.0.0.1 address that drops SYNs: a listener with a backlog of 0 whose accept queue is already full (the
 * kernel then drops new SYNs, and the connect hangs in SYN_SENT). fds[0] is the listener, the rest fill it. */
static void black_hole(int fds[3], struct sockaddr_storage *out) {
  struct sockaddr_in a;
  socklen_t len = sizeof a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  fds[0] = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fds[0], 0);
  ASSERT_EQ(bind(fds[0], (struct sockaddr *)&a, sizeof a), 0);
  ASSERT_EQ(listen(fds[0], 0), 0);
  ASSERT_EQ(getsockname(fds[0], (struct sockaddr *)&a, &len), 0);
  for (int i = 1; i < 3; i++) {
    fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    ASSERT_GE(fds[i], 0);
    (void)connect(fds[i], (struct sockaddr *)&a, sizeof a); /* the first gets in, the next one hangs */
  }
  memset(out, 0, sizeof *out);
  memcpy(out, &a, sizeof a);
}

/* The first address black-holes SYNs, the second is the server: the first attempt gets only its share of the
 * connect timeout, so the connection is up long before the whole timeout has passed. */
TEST(conn_black_holed_first_address_does_not_eat_the_timeout) {
  fx f;
  apns_conn_options o;
  struct sockaddr_storage addrs[2];
  int hole[3];
  fx_rec rec = {0};
  uint64_t timeout = 2000 * (uint64_t)test_time_factor();
  setup(&f, 0);
  f.mock = fx_mock_start(&f.loop, &f.mo);
  black_hole(hole, &addrs[0]);
  uv_ip4_addr("127.0.0.1", apns_mock_port(f.mock), (struct sockaddr_in *)&addrs[1]);
  apns__conn_test_addresses(addrs, 2);
  apns_conn_options_init(&o);
  o.connect_timeout_ms = timeout;
  uv_update_time(&f.loop);
  uint64_t t0 = uv_now(&f.loop);
  open_conn(&f, &o);
  uint64_t elapsed = uv_now(&f.loop) - t0;
  ASSERT_OK(f.connect_status);
  ASSERT_GE(elapsed, timeout / 2); /* the black hole was tried first, for its half */
  ASSERT_LT(elapsed, timeout);     /* and did not take it all */
  ASSERT_OK(post(&f, &rec, TOKEN, 5000));
  fx_run_until(&f.loop, &f.done);
  ASSERT_EQ(rec.status, 200);
  apns__conn_test_addresses(NULL, 0);
  for (int i = 0; i < 3; i++) close(hole[i]);
  teardown(&f);
}

/* CONNECTING -> LOST by the connect timer: the only address drops SYNs. */
TEST(conn_connect_timeout_on_black_hole) {
  fx f;
  apns_conn_options o;
  struct sockaddr_storage addr;
  int hole[3];
  setup(&f, 0);
  f.mock = fx_mock_start(&f.loop, &f.mo);
  black_hole(hole, &addr);
  apns__conn_test_addresses(&addr, 1);
  apns_conn_options_init(&o);
  o.connect_timeout_ms = 200;
  uv_update_time(&f.loop);
  uint64_t t0 = uv_now(&f.loop);
  open_conn(&f, &o);
  uint64_t elapsed = uv_now(&f.loop) - t0;
  ASSERT_ERR(f.connect_status, APNS_ETIMEDOUT);
  ASSERT_GE(elapsed, 200);
  ASSERT_LT(elapsed, 2000 * test_time_factor());
  ASSERT_EQ(apns_conn_get_state(f.conn), APNS_CONN_LOST);
  ASSERT_TRUE(strstr(apns_conn_last_error(f.conn), "timed out") != NULL);
  ASSERT_EQ(f.lost, 0);
  apns__conn_test_addresses(NULL, 0);
  for (int i = 0; i < 3; i++) close(hole[i]);
  teardown(&f);
}

/* The writer under the connection, the mock and the relay: bytes the socket does not take wait for writability,
 * and a peer that resets the connection meanwhile costs an error through the callback and for every later write,
 * never SIGPIPE (the test runs with SIGPIPE at its default). */
typedef struct {
  int calls, status, closed;
} so_rec;

static void so_cb(apns__sockout *o, int status) {
  so_rec *r = o->data;
  r->calls++;
  r->status = status;
}

static void so_closed(uv_handle_t *h) {
  so_rec *r = ((apns__sockout *)h->data)->data;
  r->closed++;
}

TEST(sockout_peer_reset_no_sigpipe) {
  uv_loop_t loop;
  uv_tcp_t tcp;
  apns__sockout out;
  so_rec r = {0, 0, 0};
  struct sockaddr_in a;
  socklen_t len = sizeof a;
  long live = test_alloc_live();
  ASSERT_EQ(uv_loop_init(&loop), 0);
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int lfd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_EQ(bind(lfd, (struct sockaddr *)&a, sizeof a), 0);
  ASSERT_EQ(listen(lfd, 1), 0);
  ASSERT_EQ(getsockname(lfd, (struct sockaddr *)&a, &len), 0);
  int cfd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_EQ(connect(cfd, (struct sockaddr *)&a, sizeof a), 0);
  int pfd = accept(lfd, NULL, NULL);
  ASSERT_GE(pfd, 0);
  ASSERT_EQ(uv_tcp_init(&loop, &tcp), 0);
  ASSERT_EQ(uv_tcp_open(&tcp, cfd), 0);
  ASSERT_OK(apns__sockout_init(&out, (uv_stream_t *)&tcp, so_cb, &r));
  /* 16 MiB to a peer that does not read: most of it waits here. */
  for (int i = 0; i < 16; i++) {
    uint8_t *buf = apns__malloc(1 << 20);
    memset(buf, 'x', 1 << 20);
    ASSERT_OK(apns__sockout_write(&out, buf, 1 << 20));
  }
  ASSERT_GT(apns__sockout_pending(&out), 0);
  ASSERT_EQ(r.calls, 0); /* never inside write */
  struct linger lg = {1, 0};
  ASSERT_EQ(setsockopt(pfd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
  close(pfd);
  uv_run(&loop, UV_RUN_DEFAULT); /* the wait is the only handle: this returns once it has ended */
  ASSERT_EQ(r.calls, 1);
  ASSERT_TRUE(r.status == UV_ECONNRESET || r.status == UV_EPIPE);
  ASSERT_EQ(apns__sockout_pending(&out), 0); /* dropped */
  uint8_t *more = apns__malloc(100);
  memset(more, 'y', 100);
  ASSERT_ERR(apns__sockout_write(&out, more, 100), r.status);
  ASSERT_EQ(apns__sockout_close(&out, so_closed), 1);
  uv_close((uv_handle_t *)&tcp, NULL);
  ASSERT_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
  ASSERT_EQ(r.closed, 1);
  ASSERT_EQ(uv_loop_close(&loop), 0);
  close(lfd);
  ASSERT_EQ(test_alloc_live(), live);
}

static void count_active_polls(uv_handle_t *h, void *arg) {
  if (h->type == UV_POLL && uv_is_active(h)) (*(int *)arg)++;
}

/* A connection lost while its writes wait for a full socket drops them: nothing of it stays active on the loop
 * (the wait would keep the loop alive for a peer that is gone). */
TEST(conn_lost_drops_waiting_output) {
  fx f;
  apns_conn_options o;
  static fx_rec recs[900];
  static char pad[16 * 1024];
  setup(&f, 0);
  f.mock = fx_mock_start(&f.loop, &f.mo);
  fx_proxy *proxy = fx_proxy_start(&f.loop, apns_mock_port(f.mock));
  apns_conn_options_init(&o);
  o.port = (uint16_t)fx_proxy_port(proxy);
  /* Long enough that no PING is outstanding when the relay freezes, whatever the slowdown. */
  o.ping_idle_ms = 100 * (uint64_t)test_time_factor();
  o.ping_timeout_ms = 200 * (uint64_t)test_time_factor();
  open_conn(&f, &o);
  fx_rec first = {0};
  ASSERT_OK(post(&f, &first, TOKEN, 5000));
  fx_run_until(&f.loop, &f.done);
  memset(pad, 'p', sizeof pad - 1);
  apns_header headers[] = {{"apns-topic", "com.example.app"}, {"x-pad", pad}};
  fx_proxy_hold(proxy, 1);
  fx_proxy_freeze(proxy, 1);
  for (int i = 0; i < 900; i++) {
    apns_request r;
    fx_request(&r, TOKEN, 30000);
    r.headers = headers;
    r.num_headers = 2;
    recs[i].counter = &f.done;
    ASSERT_OK(apns_conn_post(f.conn, &r, fx_record, &recs[i]));
  }
  int polls = 0;
  while (polls == 0 && !f.lost) {
    ASSERT_NE(uv_run(&f.loop, UV_RUN_ONCE), 0);
    uv_walk(&f.loop, count_active_polls, &polls);
  }
  ASSERT_GT(polls, 0);
  fx_run_until(&f.loop, &f.lost); /* the PING goes unanswered */
  ASSERT_ERR(f.lost_err, APNS_ETIMEDOUT);
  ASSERT_EQ(f.done, 901);
  polls = 0;
  uv_walk(&f.loop, count_active_polls, &polls);
  ASSERT_EQ(polls, 0);
  fx_proxy_stop(proxy);
  teardown(&f);
}

/* Close with the socket full: requests serialized into bytes the socket never took are dropped with them and end
 * NOT_PROCESSED; only those the socket took may have reached the server, and the server never sees more. */
TEST(conn_close_with_full_socket_drops_what_never_left) {
  fx f;
  apns_conn_options o;
  static fx_rec recs[1000];
  static char pad[16 * 1024];
  setup(&f, 0);
  f.mo.paused = 1;
  f.mock = fx_mock_start(&f.loop, &f.mo);
  fx_proxy *proxy = fx_proxy_start(&f.loop, apns_mock_port(f.mock));
  apns_conn_options_init(&o);
  o.port = (uint16_t)fx_proxy_port(proxy);
  open_conn(&f, &o);
  while (max_streams(f.conn) < 1000) ASSERT_NE(uv_run(&f.loop, UV_RUN_ONCE), 0);
  memset(pad, 'p', sizeof pad - 1);
  apns_header headers[] = {{"apns-topic", "com.example.app"}, {"x-pad", pad}};
  fx_proxy_hold(proxy, 1);
  for (int i = 0; i < 1000; i++) {
    apns_request r;
    fx_request(&r, TOKEN, 30000);
    r.headers = headers;
    r.num_headers = 2;
    recs[i].counter = &f.done;
    ASSERT_OK(apns_conn_post(f.conn, &r, fx_record, &recs[i]));
  }
  for (int i = 0; i < 5; i++) uv_run(&f.loop, UV_RUN_NOWAIT);
  ASSERT_OK(apns_conn_close(f.conn, on_closed));
  fx_run_until(&f.loop, &f.closed);
  ASSERT_EQ(f.done_at_close, 1000);
  int unknown = 0, not_processed = 0;
  for (int i = 0; i < 1000; i++) {
    ASSERT_EQ(recs[i].calls, 1);
    ASSERT_ERR(recs[i].err, APNS_ECANCELED);
    if (recs[i].delivery == APNS_DELIVERY_UNKNOWN) {
      ASSERT_EQ(not_processed, 0);
      unknown++;
    } else {
      ASSERT_EQ(recs[i].delivery, APNS_DELIVERY_NOT_PROCESSED);
      not_processed++;
    }
  }
  ASSERT_GT(not_processed, 500);
  /* Let the relay pass on what it holds: the server gets no request we called NOT_PROCESSED. */
  apns_mock_stats ms;
  fx_proxy_hold(proxy, 0);
  for (apns_mock_get_stats(f.mock, &ms); ms.connections_open > 0; apns_mock_get_stats(f.mock, &ms))
    ASSERT_NE(uv_run(&f.loop, UV_RUN_ONCE), 0);
  ASSERT_LE(ms.requests, (uint64_t)unknown);
  fx_proxy_stop(proxy);
  teardown(&f);
}

TEST_SUITE(conn){
    TEST_ENTRY(conn_round_trip_client_cert),
    TEST_ENTRY(conn_reasons_and_timestamp),
    TEST_ENTRY(conn_wrong_ca_refused),
    TEST_ENTRY(conn_host_name_mismatch_refused),
    TEST_ENTRY(conn_insecure_skips_verification),
    TEST_ENTRY(conn_missing_client_cert_refused),
    TEST_ENTRY(conn_refused_port),
    TEST_ENTRY(conn_bad_options),
    TEST_ENTRY(conn_bad_request_refused_at_post),
    TEST_ENTRY(conn_max_streams_one_blocks_second),
    TEST_ENTRY(conn_follows_streams_rise),
    TEST_ENTRY(conn_thousand_concurrent_one_write_per_turn),
    TEST_ENTRY(conn_deadline_resets_stream),
    TEST_ENTRY(conn_deadlines_in_reverse_order_cost_log_n),
    TEST_ENTRY(conn_equal_deadlines_end_in_post_order),
    TEST_ENTRY(conn_goaway_unprocessed_streams),
    TEST_ENTRY(conn_drop_ends_each_once),
    TEST_ENTRY(conn_server_killed_mid_flight),
    TEST_ENTRY(conn_close_with_500_in_flight),
    TEST_ENTRY(conn_close_inside_callback),
    TEST_ENTRY(conn_ping_keeps_idle_connection),
    TEST_ENTRY(conn_ping_timeout_on_silent_peer),
    TEST_ENTRY(conn_reset_mid_write_no_sigpipe),
    TEST_ENTRY(conn_close_drops_unsent_not_processed),
    TEST_ENTRY(conn_close_with_full_socket_drops_what_never_left),
    TEST_ENTRY(conn_timeouts_off_saturate),
    TEST_ENTRY(conn_stream_ids_run_out_drains),
    TEST_ENTRY(conn_draining_last_stream_timeout_ends_at_once),
    TEST_ENTRY(conn_draining_last_stream_answered_then_lost),
    TEST_ENTRY(conn_close_while_draining),
    TEST_ENTRY(conn_ids_spent_last_stream_timeout_ends_at_once),
    TEST_ENTRY(conn_close_while_connecting),
    TEST_ENTRY(conn_close_after_lost),
    TEST_ENTRY(conn_black_holed_first_address_does_not_eat_the_timeout),
    TEST_ENTRY(conn_connect_timeout_on_black_hole),
    TEST_ENTRY(sockout_peer_reset_no_sigpipe),
    TEST_ENTRY(conn_lost_drops_waiting_output),
    TEST_SUITE_END,
};
