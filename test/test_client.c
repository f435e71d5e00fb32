/* apns_client against apns-mock: what goes on the wire, validation before queueing, certificate and token auth. */
#include "fixture.h"

#include "alloc.h"
#include "jwt_verify.h"
#include "pool.h"

#include <stdlib.h>

#define TOKEN "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define KEY_ID "ABC123DEFG"
#define TEAM_ID "DEF123GHIJ"

/* What the mock saw of the last requests. */
typedef struct {
  char path[300];
  char headers[16][2][300];
  size_t num_headers;
  char body[6000];
  size_t body_len;
  int count;
  char auth[8][400]; /* authorization of each request, in order */
} seen;

typedef struct {
  uv_loop_t loop;
  apns__certgen_result certs;
  apns_mock_options mo;
  apns_mock *mock;
  apns_client *client;
  seen seen;
  int done;
  int closed;
  int64_t now_s;      /* the injected wall clock */
  int64_t mock_now_s; /* the mock's wall clock when not 0 (else now_s) */
  uint64_t mono_ms;   /* the injected monotonic clock */
  int tokens;         /* TOKEN events */
  int stopped;        /* on_stopped calls */
  int connected;      /* on_connected calls */
  long live_before;
  char key_pem[1024];
  apns_tls_options tls; /* what base_options points the client options to */
} fx;

static void capture(void *data, apns_mock_request *req) {
  fx *f = data;
  seen *s = &f->seen;
  snprintf(s->path, sizeof s->path, "%s", req->path);
  s->num_headers = 0;
  const char *auth = "";
  for (size_t i = 0; i < req->num_headers && i < 16; i++) {
    snprintf(s->headers[i][0], sizeof s->headers[i][0], "%s", req->headers[i].name);
    snprintf(s->headers[i][1], sizeof s->headers[i][1], "%s", req->headers[i].value);
    if (strcmp(req->headers[i].name, "authorization") == 0) auth = req->headers[i].value;
    s->num_headers++;
  }
  if (s->count < 8) snprintf(s->auth[s->count], sizeof s->auth[0], "%s", auth);
  s->body_len = req->body_len < sizeof s->body - 1 ? req->body_len : sizeof s->body - 1;
  if (req->body) memcpy(s->body, req->body, s->body_len);
  s->body[s->body_len] = '\0';
  s->count++;
}

static const char *header(fx *f, const char *name) {
  for (size_t i = 0; i < f->seen.num_headers; i++)
    if (strcmp(f->seen.headers[i][0], name) == 0) return f->seen.headers[i][1];
  return NULL;
}

static int64_t test_clock(void *data) {
  return ((fx *)data)->now_s;
}

static int64_t mock_clock(void *data) {
  fx *f = data;
  return f->mock_now_s ? f->mock_now_s : f->now_s;
}

static uint64_t test_mono(void *data) {
  return ((fx *)data)->mono_ms;
}

/* Time passes: both clocks (and the mock's, when it has its own) move on. */
static void advance(fx *f, int64_t s) {
  f->now_s += s;
  if (f->mock_now_s) f->mock_now_s += s;
  f->mono_ms += (uint64_t)s * 1000;
}

static fx *current;

static void on_event(apns_pool *p, const apns_pool_event *ev) {
  /* The event's pool is the client's, and its data is the user's data (client.h), not the client. */
  ASSERT_TRUE(apns_pool_data(p) == current);
  ASSERT_TRUE(apns_client_pool(current->client) == p);
  if (ev->type == APNS_POOL_EVENT_TOKEN) current->tokens++;
}

static void on_stopped(apns_client *c) {
  ((fx *)apns_client_data(c))->stopped++;
}

static void on_connected(apns_client *c) {
  ((fx *)apns_client_data(c))->connected++;
}

static void on_closed(apns_client *c) {
  ((fx *)apns_client_data(c))->closed++;
}

/* Everything but the mock, which setup and setup_token_mock start each their own way. */
static void setup_base(fx *f) {
  memset(f, 0, sizeof *f);
  current = f;
  f->live_before = test_alloc_live();
  f->now_s = 1700000000;
  f->mono_ms = 5000;
  ASSERT_EQ(uv_loop_init(&f->loop), 0);
  fx_certs(&f->certs, 0);
  fx_mock_options(&f->mo, &f->certs, 0);
  f->mo.on_request = capture;
  f->mo.data = f;
}

static void setup(fx *f) {
  setup_base(f);
  f->mock = fx_mock_start(&f->loop, &f->mo);
}

static void base_options(fx *f, apns_client_options *o) {
  apns_client_options_init(o);
  o->endpoint = APNS_ENDPOINT_CUSTOM;
  o->host = "127.0.0.1";
  o->port = (uint16_t)apns_mock_port(f->mock);
  o->tls = fx_tls_client(&f->tls, &f->certs);
  o->topic = "com.example.app";
  o->data = f;
  o->on_event = on_event;
  o->on_stopped = on_stopped;
  o->on_connected = on_connected;
}

static void open_cert_client(fx *f) {
  apns_client_options o;
  char err[256] = "";
  base_options(f, &o);
  int rv = apns_client_open(&f->loop, &f->client, &o, err, sizeof err);
  if (rv) test__fail(__FILE__, __LINE__, "apns_client_open: %s (%s)", apns_strerror(rv), err);
}

static void open_token_client(fx *f) {
  apns_client_options o;
  char err[256] = "";
  base_options(f, &o);
  f->tls.cert_pem = f->tls.key_pem = NULL;
  if (f->key_pem[0] == '\0') fx_ec_key_pem(f->key_pem, sizeof f->key_pem);
  o.token_key_pem = f->key_pem;
  o.key_id = KEY_ID;
  o.team_id = TEAM_ID;
  o.clock = test_clock;
  o.connections = 1;
  int rv = apns_client_open(&f->loop, &f->client, &o, err, sizeof err);
  if (rv) test__fail(__FILE__, __LINE__, "apns_client_open: %s (%s)", apns_strerror(rv), err);
  apns__pool_set_mono_clock(apns_client_pool(f->client), test_mono, f);
}

static void teardown(fx *f) {
  if (f->client && !f->closed) {
    ASSERT_OK(apns_client_close(f->client, 0, on_closed));
    fx_run_until(&f->loop, &f->closed);
  }
  fx_mock_stop_and_close_loop(&f->loop, f->mock);
  apns__certgen_free(&f->certs);
  ASSERT_EQ(test_alloc_live(), f->live_before);
}

static void send_and_wait(fx *f, apns_notification *n, const apns_send_options *so, fx_rec *rec) {
  rec->counter = &f->done;
  int target = f->done + 1;
  ASSERT_OK(apns_client_send(f->client, TOKEN, n, so, fx_record, rec));
  ASSERT_EQ(rec->calls, 0);
  fx_run_until_count(&f->loop, &f->done, target);
}

/* The aapns Quickstart, in C. */
TEST(client_quickstart_on_the_wire) {
  fx f;
  fx_rec rec = {0};
  apns_notification *n;
  const char *args[] = {"foo", "bar"};
  setup(&f);
  open_cert_client(&f);
  ASSERT_OK(apns_notification_new(&n));
  ASSERT_OK(apns_notification_set_alert_loc_key(n, "Hello World!"));
  ASSERT_OK(apns_notification_set_alert_loc_args(n, args, 2));
  ASSERT_OK(apns_notification_set_badge(n, 42));
  apns_send_options so = APNS_SEND_OPTIONS_INIT;
  so.priority = 10;
  send_and_wait(&f, n, &so, &rec);
  ASSERT_OK(rec.err);
  ASSERT_EQ(rec.status, 200);
  ASSERT_EQ(strlen(rec.apns_id), 36);
  ASSERT_STREQ(f.seen.path, "/3/device/" TOKEN);
  ASSERT_STREQ(f.seen.body,
               "{\"aps\":{\"alert\":{\"loc-key\":\"Hello World!\",\"loc-args\":[\"foo\",\"bar\"]},\"badge\":42}}");
  ASSERT_STREQ(header(&f, "apns-push-type"), "alert");
  ASSERT_STREQ(header(&f, "apns-topic"), "com.example.app");
  ASSERT_STREQ(header(&f, "apns-priority"), "10");
  ASSERT_NULL(header(&f, "apns-expiration"));
  ASSERT_NULL(header(&f, "authorization")); /* certificate auth */
  apns_notification_free(n);
  teardown(&f);
}

TEST(client_options_reach_headers) {
  fx f;
  fx_rec rec = {0};
  apns_notification *n;
  setup(&f);
  open_cert_client(&f);
  ASSERT_OK(apns_notification_new(&n));
  ASSERT_OK(apns_notification_set_alert_text(n, "hi"));
  apns_send_options so = APNS_SEND_OPTIONS_INIT;
  so.push_type = APNS_PUSH_TYPE_VOIP;
  so.has_expiration = 1;
  so.expiration = 0;
  so.collapse_id = "group-1";
  so.apns_id = "1C4D1F1A-3F5B-4C7E-9A8B-0D2E3F405162";
  send_and_wait(&f, n, &so, &rec);
  ASSERT_EQ(rec.status, 200);
  ASSERT_STREQ(header(&f, "apns-push-type"), "voip");
  ASSERT_STREQ(header(&f, "apns-topic"), "com.example.app.voip");
  ASSERT_STREQ(header(&f, "apns-expiration"), "0");
  ASSERT_STREQ(header(&f, "apns-collapse-id"), "group-1");
  ASSERT_STREQ(header(&f, "apns-id"), "1c4d1f1a-3f5b-4c7e-9a8b-0d2e3f405162");
  ASSERT_STREQ(rec.apns_id, "1c4d1f1a-3f5b-4c7e-9a8b-0d2e3f405162");
  /* A topic that already has the suffix keeps one. */
  so.topic = "com.other.app.voip";
  so.apns_id = NULL;
  rec = (fx_rec){0};
  send_and_wait(&f, n, &so, &rec);
  ASSERT_STREQ(header(&f, "apns-topic"), "com.other.app.voip");
  apns_notification_free(n);
  teardown(&f);
}

TEST(client_background_by_default) {
  fx f;
  fx_rec rec = {0};
  apns_notification *n;
  setup(&f);
  open_cert_client(&f);
  ASSERT_OK(apns_notification_new(&n));
  ASSERT_OK(apns_notification_set_content_available(n, 1));
  ASSERT_OK(apns_notification_set_custom_string(n, "sync", "inbox"));
  send_and_wait(&f, n, NULL, &rec);
  ASSERT_STREQ(header(&f, "apns-push-type"), "background");
  ASSERT_STREQ(header(&f, "apns-priority"), "5");
  ASSERT_STREQ(f.seen.body, "{\"aps\":{\"content-available\":1},\"sync\":\"inbox\"}");
  apns_notification_free(n);
  teardown(&f);
}

TEST(client_send_json) {
  fx f;
  fx_rec rec = {0};
  static const char json[] = "{\"aps\":{\"alert\":\"raw \xc3\xa9\"},\"k\":[1,2]}";
  setup(&f);
  open_cert_client(&f);
  rec.counter = &f.done;
  ASSERT_OK(apns_client_send_json(f.client, TOKEN, json, sizeof json - 1, NULL, fx_record, &rec));
  fx_run_until(&f.loop, &f.done);
  ASSERT_EQ(rec.status, 200);
  ASSERT_STREQ(f.seen.body, json);
  ASSERT_ERR(apns_client_send_json(f.client, TOKEN, "{\"aps\":", 7, NULL, fx_record, &rec), APNS_EBADJSON);
  /* A raw payload that only sets content-available defaults to a background push, as a built one does. */
  static const char bg[] = "{\"aps\":{\"content-available\":1}}";
  fx_rec rec2 = {0};
  rec2.counter = &f.done;
  ASSERT_OK(apns_client_send_json(f.client, TOKEN, bg, sizeof bg - 1, NULL, fx_record, &rec2));
  fx_run_until_count(&f.loop, &f.done, 2);
  ASSERT_EQ(rec2.status, 200);
  ASSERT_STREQ(header(&f, "apns-push-type"), "background");
  ASSERT_STREQ(header(&f, "apns-priority"), "5");
  teardown(&f);
}

/* Bad input is an error from send, and nothing reaches the server. */
TEST(client_validates_before_queueing) {
  fx f;
  fx_rec rec = {0};
  apns_notification *n, *big;
  char long_id[70];
  static char huge[5000];
  setup(&f);
  open_cert_client(&f);
  ASSERT_OK(apns_notification_new(&n));
  ASSERT_OK(apns_notification_set_alert_text(n, "hi"));
  apns_send_options so = APNS_SEND_OPTIONS_INIT;
  ASSERT_ERR(apns_client_send(f.client, "xyz", n, NULL, fx_record, &rec), APNS_EBADTOKEN);
  ASSERT_ERR(apns_client_send(f.client, "abc", n, NULL, fx_record, &rec), APNS_EBADTOKEN);
  ASSERT_ERR(apns_client_send(f.client, "", n, NULL, fx_record, &rec), APNS_EBADTOKEN);
  so.priority = 7;
  ASSERT_ERR(apns_client_send(f.client, TOKEN, n, &so, fx_record, &rec), APNS_EBADPRIORITY);
  so.priority = 0;
  memset(long_id, 'c', 65);
  long_id[65] = '\0';
  so.collapse_id = long_id;
  ASSERT_ERR(apns_client_send(f.client, TOKEN, n, &so, fx_record, &rec), APNS_EBADCOLLAPSEID);
  so.collapse_id = "a\r\nb";
  ASSERT_ERR(apns_client_send(f.client, TOKEN, n, &so, fx_record, &rec), APNS_EBADCOLLAPSEID);
  so.collapse_id = NULL;
  so.apns_id = "not-a-uuid";
  ASSERT_ERR(apns_client_send(f.client, TOKEN, n, &so, fx_record, &rec), APNS_EBADAPNSID);
  so.apns_id = NULL;
  so.topic = "com.example app";
  ASSERT_ERR(apns_client_send(f.client, TOKEN, n, &so, fx_record, &rec), APNS_EBADTOPIC);
  so.topic = NULL;
  so.has_expiration = 1;
  so.expiration = -5;
  ASSERT_ERR(apns_client_send(f.client, TOKEN, n, &so, fx_record, &rec), APNS_EINVAL);
  so.has_expiration = 0;
  memset(huge, 'x', sizeof huge - 1);
  ASSERT_OK(apns_notification_new(&big));
  ASSERT_OK(apns_notification_set_alert_text(big, huge));
  ASSERT_ERR(apns_client_send(f.client, TOKEN, big, NULL, fx_record, &rec), APNS_EPAYLOADTOOLARGE);
  ASSERT_ERR(apns_client_send(f.client, TOKEN, n, NULL, NULL, &rec), APNS_EINVAL);
  ASSERT_ERR(apns_client_send(f.client, NULL, n, NULL, fx_record, &rec), APNS_EINVAL);
  /* Let the loop run: nothing was queued, nothing reaches the mock, no callback. */
  for (int i = 0; i < 20; i++) uv_run(&f.loop, UV_RUN_NOWAIT);
  apns_pool_stats st;
  apns_client_get_stats(f.client, &st, sizeof st);
  ASSERT_EQ(st.posted, 0);
  ASSERT_EQ(f.seen.count, 0);
  ASSERT_EQ(rec.calls, 0);
  apns_notification_free(n);
  apns_notification_free(big);
  teardown(&f);
}

TEST(client_open_errors) {
  uv_loop_t loop;
  apns_client *c = NULL;
  apns_client_options o;
  apns_tls_options tlso = APNS_TLS_OPTIONS_INIT;
  char err[256] = "";
  ASSERT_EQ(uv_loop_init(&loop), 0);
  apns_client_options_init(&o);
  o.tls = &tlso;
  o.endpoint = APNS_ENDPOINT_DEVELOPMENT;
  ASSERT_ERR(apns_client_open(&loop, &c, &o, err, sizeof err), APNS_EINVAL);
  ASSERT_TRUE(strstr(err, "authentication") != NULL);
  tlso.cert_file = "a.pem";
  o.token_key_file = "b.p8";
  ASSERT_ERR(apns_client_open(&loop, &c, &o, err, sizeof err), APNS_EINVAL);
  ASSERT_TRUE(strstr(err, "not both") != NULL);
  tlso.cert_file = NULL;
  o.token_key_file = "/nonexistent/AuthKey.p8";
  o.key_id = KEY_ID;
  o.team_id = TEAM_ID;
  ASSERT_ERR(apns_client_open(&loop, &c, &o, err, sizeof err), APNS_EBADKEY);
  ASSERT_TRUE(strstr(err, "/nonexistent/AuthKey.p8") != NULL);
  o.key_id = "short";
  ASSERT_ERR(apns_client_open(&loop, &c, &o, err, sizeof err), APNS_EINVAL);
  o.endpoint = APNS_ENDPOINT_CUSTOM;
  ASSERT_ERR(apns_client_open(&loop, &c, &o, err, sizeof err), APNS_EINVAL);
  ASSERT_TRUE(strstr(err, "host") != NULL);
  ASSERT_NULL(c);
  ASSERT_EQ(uv_loop_close(&loop), 0);
}

/* Token auth: the JWT verifies against the key, carries the injected clock, and is kept per connection. */
TEST(client_token_auth) {
  fx f;
  fx_rec rec = {0};
  apns_notification *n;
  setup(&f);
  open_token_client(&f);
  ASSERT_OK(apns_notification_new(&n));
  ASSERT_OK(apns_notification_set_alert_text(n, "hi"));
  send_and_wait(&f, n, NULL, &rec);
  ASSERT_EQ(rec.status, 200);
  const char *auth = header(&f, "authorization");
  ASSERT_NOT_NULL(auth);
  ASSERT_EQ(strncmp(auth, "bearer ", 7), 0);
  apns__jwt_verifier *v;
  apns__jwt_claims claims;
  ASSERT_OK(apns__jwt_verifier_new(&v));
  ASSERT_OK(apns__jwt_verifier_add(v, KEY_ID, NULL, f.key_pem, strlen(f.key_pem) + 1, NULL, 0));
  ASSERT_EQ(apns__jwt_verify(v, auth + 7, strlen(auth + 7), &claims), APNS__JWT_VALID);
  ASSERT_STREQ(claims.kid, KEY_ID);
  ASSERT_STREQ(claims.iss, TEAM_ID);
  ASSERT_EQ(claims.iat, 1700000000);
  apns__jwt_verifier_free(v);
  apns_notification_free(n);
  teardown(&f);
}

/* A connection keeps its token past 19 minutes and replaces it at 50. */
TEST(client_token_refresh_schedule) {
  fx f;
  fx_rec r1 = {0}, r2 = {0}, r3 = {0}, r4 = {0};
  apns_notification *n;
  setup(&f);
  open_token_client(&f);
  ASSERT_OK(apns_notification_new(&n));
  ASSERT_OK(apns_notification_set_alert_text(n, "hi"));
  send_and_wait(&f, n, NULL, &r1);
  advance(&f, 19 * 60);
  send_and_wait(&f, n, NULL, &r2);
  ASSERT_STREQ(f.seen.auth[1], f.seen.auth[0]);
  advance(&f, 30 * 60 + 59); /* 49:59 */
  send_and_wait(&f, n, NULL, &r3);
  ASSERT_STREQ(f.seen.auth[2], f.seen.auth[0]);
  ASSERT_EQ(f.tokens, 0);
  advance(&f, 1); /* 50:00 */
  send_and_wait(&f, n, NULL, &r4);
  ASSERT_NE(strcmp(f.seen.auth[3], f.seen.auth[0]), 0);
  ASSERT_EQ(f.tokens, 1);
  ASSERT_EQ(r4.status, 200);
  apns_notification_free(n);
  teardown(&f);
}

/* 403 ExpiredProviderToken to the request number expire_at: the connection takes a new token and the request is
 * retried once. */
static int expire_at;
static void expire_nth(void *data, apns_mock_request *req) {
  fx *f = data;
  capture(data, req);
  if (f->seen.count == expire_at) {
    req->status = 403;
    req->reason = "ExpiredProviderToken";
    f->now_s += 1; /* so that the new token differs (signatures are deterministic) */
  }
}

TEST(client_expired_token_retried_once) {
  fx f;
  fx_rec r1 = {0}, rec = {0};
  apns_notification *n;
  setup(&f);
  apns_mock_stop(f.mock, NULL, NULL);
  expire_at = 2;
  f.mo.on_request = expire_nth;
  f.mock = fx_mock_start(&f.loop, &f.mo);
  open_token_client(&f);
  ASSERT_OK(apns_notification_new(&n));
  ASSERT_OK(apns_notification_set_alert_text(n, "hi"));
  send_and_wait(&f, n, NULL, &r1);
  advance(&f, 25 * 60);
  send_and_wait(&f, n, NULL, &rec);
  ASSERT_EQ(rec.status, 200);
  ASSERT_EQ(rec.attempts, 2);
  ASSERT_EQ(f.seen.count, 3);
  ASSERT_EQ(f.tokens, 1);
  ASSERT_STREQ(f.seen.auth[1], f.seen.auth[0]);
  ASSERT_NE(strcmp(f.seen.auth[1], f.seen.auth[2]), 0);
  apns_notification_free(n);
  teardown(&f);
}

/* The server calls a token expired that is younger than 20 minutes by the monotonic clock (the wall clock that
 * gave its iat was wrong): a new token would draw 429 TooManyProviderTokenUpdates, so none is made and the request
 * ends with its 403. */
TEST(client_expired_young_token_kept) {
  fx f;
  fx_rec rec = {0}, r2 = {0};
  apns_notification *n;
  setup(&f);
  apns_mock_stop(f.mock, NULL, NULL);
  expire_at = 1;
  f.mo.on_request = expire_nth;
  f.mock = fx_mock_start(&f.loop, &f.mo);
  open_token_client(&f);
  ASSERT_OK(apns_notification_new(&n));
  ASSERT_OK(apns_notification_set_alert_text(n, "hi"));
  send_and_wait(&f, n, NULL, &rec);
  ASSERT_OK(rec.err);
  ASSERT_EQ(rec.status, 403);
  ASSERT_EQ(rec.reason, APNS_REASON_ExpiredProviderToken);
  ASSERT_EQ(rec.attempts, 1);
  ASSERT_EQ(f.tokens, 0);
  send_and_wait(&f, n, NULL, &r2);
  ASSERT_EQ(r2.status, 200);
  ASSERT_STREQ(f.seen.auth[1], f.seen.auth[0]);
  apns_notification_free(n);
  teardown(&f);
}

/* 429 TooManyProviderTokenUpdates ends the request with that answer: it is not retried (the same connection would
 * answer the same until its 20 minutes pass). */
static void too_many_updates(void *data, apns_mock_request *req) {
  capture(data, req);
  req->status = 429;
  req->reason = "TooManyProviderTokenUpdates";
}

TEST(client_too_many_token_updates_not_retried) {
  fx f;
  fx_rec rec = {0};
  apns_notification *n;
  setup(&f);
  apns_mock_stop(f.mock, NULL, NULL);
  f.mo.on_request = too_many_updates;
  f.mock = fx_mock_start(&f.loop, &f.mo);
  open_token_client(&f);
  ASSERT_OK(apns_notification_new(&n));
  ASSERT_OK(apns_notification_set_alert_text(n, "hi"));
  send_and_wait(&f, n, NULL, &rec);
  ASSERT_OK(rec.err);
  ASSERT_EQ(rec.status, 429);
  ASSERT_EQ(rec.reason, APNS_REASON_TooManyProviderTokenUpdates);
  ASSERT_EQ(rec.attempts, 1);
  ASSERT_EQ(f.seen.count, 1);
  ASSERT_EQ(f.tokens, 0);
  apns_notification_free(n);
  teardown(&f);
}

/* ---- token auth against the mock's own verification (apns_mock_options.token_keys) ---- */

/* As setup, with a mock that verifies tokens on the injected clock: with the client's key, or with another key
 * under the same key id. */
static void setup_token_mock(fx *f, int mock_has_other_key) {
  char other[1024];
  setup_base(f);
  f->mo.clock = mock_clock;
  fx_ec_key_pem(f->key_pem, sizeof f->key_pem);
  if (mock_has_other_key) fx_ec_key_pem(other, sizeof other);
  apns_mock_token_key tk = {.key_id = KEY_ID, .pem = mock_has_other_key ? other : f->key_pem};
  f->mo.token_keys = &tk;
  f->mo.num_token_keys = 1;
  f->mock = fx_mock_start(&f->loop, &f->mo);
  f->mo.token_keys = NULL; /* copied by the mock */
  f->mo.num_token_keys = 0;
}

static void mock_stats(fx *f, apns_mock_stats *st) {
  apns_mock_get_stats(f->mock, st);
}

/* The connection starts at one stream; the first 200 raises it to 1000, and the client uses the room. */
TEST(client_token_verified_by_mock) {
  fx f;
  apns_notification *n;
  enum { N = 2000 };
  setup_token_mock(&f, 0);
  open_token_client(&f);
  ASSERT_OK(apns_notification_new(&n));
  ASSERT_OK(apns_notification_set_alert_text(n, "hi"));
  fx_rec *recs = calloc(N, sizeof *recs);
  ASSERT_NOT_NULL(recs);
  for (int i = 0; i < N; i++) {
    recs[i].counter = &f.done;
    ASSERT_OK(apns_client_send(f.client, TOKEN, n, NULL, fx_record, &recs[i]));
  }
  fx_run_until_count(&f.loop, &f.done, N);
  for (int i = 0; i < N; i++) {
    ASSERT_EQ(recs[i].calls, 1);
    ASSERT_OK(recs[i].err);
    ASSERT_EQ(recs[i].status, 200);
  }
  apns_mock_stats st;
  mock_stats(&f, &st);
  ASSERT_EQ(st.connections, 1);
  ASSERT_EQ(st.status[200], N);
  ASSERT_EQ(st.status[403] + st.status[429], 0);
  ASSERT_EQ(st.tokens_accepted, 1);
  ASSERT_EQ(st.streams_raised, 1);
  ASSERT_GT(st.max_concurrent, 1);
  free(recs);
  apns_notification_free(n);
  teardown(&f);
}

/* A client whose key the mock does not know under its key id: 403 InvalidProviderToken reaches the callback. */
TEST(client_token_wrong_key_refused) {
  fx f;
  fx_rec rec = {0};
  apns_notification *n;
  setup_token_mock(&f, 1);
  open_token_client(&f);
  ASSERT_OK(apns_notification_new(&n));
  ASSERT_OK(apns_notification_set_alert_text(n, "hi"));
  send_and_wait(&f, n, NULL, &rec);
  ASSERT_OK(rec.err);
  ASSERT_EQ(rec.status, 403);
  ASSERT_EQ(rec.reason, APNS_REASON_InvalidProviderToken);
  ASSERT_EQ(rec.attempts, 1);
  apns_mock_stats st;
  mock_stats(&f, &st);
  ASSERT_EQ(st.tokens_accepted, 0);
  ASSERT_EQ(st.streams_raised, 0);
  apns_notification_free(n);
  teardown(&f);
}

/* Two simulated hours on one connection, a send every 5 minutes: the client replaces its token at 50 and 100
 * minutes, never within 20 minutes of the last, and never lets one pass the hour. */
TEST(client_token_two_hours) {
  fx f;
  apns_notification *n;
  setup_token_mock(&f, 0);
  open_token_client(&f);
  ASSERT_OK(apns_notification_new(&n));
  ASSERT_OK(apns_notification_set_alert_text(n, "hi"));
  for (int minute = 0; minute <= 120; minute += 5) {
    fx_rec rec = {0};
    send_and_wait(&f, n, NULL, &rec);
    ASSERT_OK(rec.err);
    if (rec.status != 200) printf("minute %d: %d %s\n", minute, rec.status, apns_reason_string(rec.reason));
    ASSERT_EQ(rec.status, 200);
    advance(&f, 5 * 60);
  }
  apns_mock_stats st;
  mock_stats(&f, &st);
  ASSERT_EQ(st.connections, 1);
  ASSERT_EQ(st.status[200], 25);
  ASSERT_EQ(st.status[403], 0);
  ASSERT_EQ(st.status[429], 0);
  ASSERT_EQ(st.tokens_accepted, 3);
  ASSERT_EQ(f.tokens, 2);
  apns_notification_free(n);
  teardown(&f);
}

/* 500 requests in flight under a token the server holds expired (its clock is past the hour, ours not yet at 50
 * minutes): every one gets 403 ExpiredProviderToken, and the connection takes exactly one new token for them all,
 * with no 429 TooManyProviderTokenUpdates. */
TEST(client_token_expiry_in_flight_one_new_token) {
  fx f;
  fx_rec first = {0};
  apns_notification *n;
  enum { N = 500 };
  setup_token_mock(&f, 0);
  f.mock_now_s = f.now_s;
  open_token_client(&f);
  ASSERT_OK(apns_notification_new(&n));
  ASSERT_OK(apns_notification_set_alert_text(n, "hi"));
  send_and_wait(&f, n, NULL, &first); /* the first 200 raises the connection to 1000 streams */
  ASSERT_EQ(first.status, 200);
  advance(&f, 30 * 60);
  f.mock_now_s += 31 * 60; /* the server's clock: 61 minutes after the token's iat */
  fx_rec *recs = calloc(N, sizeof *recs);
  ASSERT_NOT_NULL(recs);
  for (int i = 0; i < N; i++) {
    recs[i].counter = &f.done;
    ASSERT_OK(apns_client_send(f.client, TOKEN, n, NULL, fx_record, &recs[i]));
  }
  fx_run_until_count(&f.loop, &f.done, N + 1);
  for (int i = 0; i < N; i++) {
    ASSERT_EQ(recs[i].calls, 1);
    ASSERT_OK(recs[i].err);
    ASSERT_EQ(recs[i].status, 200);
    ASSERT_EQ(recs[i].attempts, 2);
  }
  apns_mock_stats st;
  mock_stats(&f, &st);
  ASSERT_EQ(st.connections, 1);
  ASSERT_EQ(st.status[403], N);
  ASSERT_EQ(st.status[429], 0);
  ASSERT_EQ(st.tokens_accepted, 2);
  ASSERT_EQ(f.tokens, 1);
  free(recs);
  apns_notification_free(n);
  teardown(&f);
}

/* The wall clock was a day ahead when the first token was made, then is stepped back to the right time: the token's
 * age is measured on the monotonic clock, so it is still replaced at 50 minutes. */
TEST(client_token_refresh_after_clock_step_back) {
  fx f;
  apns_notification *n;
  setup_token_mock(&f, 0);
  f.mock_now_s = f.now_s;
  f.now_s += 86400;
  open_token_client(&f);
  ASSERT_OK(apns_notification_new(&n));
  ASSERT_OK(apns_notification_set_alert_text(n, "hi"));
  for (int minute = 0; minute <= 55; minute += 5) {
    fx_rec rec = {0};
    send_and_wait(&f, n, NULL, &rec);
    ASSERT_OK(rec.err);
    ASSERT_EQ(rec.status, 200);
    ASSERT_EQ(f.tokens, minute < 50 ? 0 : 1);
    if (minute == 0) f.now_s -= 86400; /* the step back */
    advance(&f, 5 * 60);
  }
  apns_mock_stats st;
  mock_stats(&f, &st);
  ASSERT_EQ(st.tokens_accepted, 2);
  ASSERT_EQ(st.status[403] + st.status[429], 0);
  apns_notification_free(n);
  teardown(&f);
}

/* 403 InvalidProviderToken to every try: the client stops after three in a row, with the cause, instead of
 * sending every notification to be refused. */
TEST(client_invalid_token_stops) {
  fx f;
  apns_notification *n;
  enum { N = 6 };
  fx_rec recs[N];
  memset(recs, 0, sizeof recs);
  setup_token_mock(&f, 1);
  open_token_client(&f);
  ASSERT_OK(apns_notification_new(&n));
  ASSERT_OK(apns_notification_set_alert_text(n, "hi"));
  for (int i = 0; i < N; i++) {
    recs[i].counter = &f.done;
    ASSERT_OK(apns_client_send(f.client, TOKEN, n, NULL, fx_record, &recs[i]));
  }
  fx_run_until_count(&f.loop, &f.done, N);
  for (int i = 0; i < 3; i++) {
    ASSERT_OK(recs[i].err);
    ASSERT_EQ(recs[i].status, 403);
    ASSERT_EQ(recs[i].reason, APNS_REASON_InvalidProviderToken);
  }
  for (int i = 3; i < N; i++) {
    ASSERT_ERR(recs[i].err, APNS_ESTOPPED);
    ASSERT_EQ(recs[i].delivery, APNS_DELIVERY_NOT_PROCESSED);
    ASSERT_TRUE(strstr(recs[i].error_text, "InvalidProviderToken") != NULL);
  }
  ASSERT_EQ(f.stopped, 1);
  const char *text = NULL;
  ASSERT_ERR(apns_client_stop_cause(f.client, &text), APNS_ESTOPPED);
  ASSERT_TRUE(text != NULL && strstr(text, "InvalidProviderToken") != NULL);
  fx_rec late = {0};
  ASSERT_ERR(apns_client_send(f.client, TOKEN, n, NULL, fx_record, &late), APNS_ESTOPPED);
  apns_mock_stats st;
  mock_stats(&f, &st);
  ASSERT_EQ(st.requests, 3);
  apns_notification_free(n);
  teardown(&f);
}

/* The client says when it can send (on_connected), and a client that is running has no stop cause. */
TEST(client_on_connected) {
  fx f;
  setup(&f);
  open_cert_client(&f);
  ASSERT_EQ(f.connected, 0); /* never inside open */
  fx_run_until(&f.loop, &f.connected);
  apns_pool_stats st;
  apns_client_get_stats(f.client, &st, sizeof st);
  ASSERT_GE(st.connections_up, 1);
  const char *text = "x";
  ASSERT_EQ(apns_client_stop_cause(f.client, &text), 0);
  ASSERT_NULL(text);
  ASSERT_EQ(f.stopped, 0);
  teardown(&f);
}

/* A client whose server's certificate does not verify stops, and the send ends with the cause, not a timeout. */
TEST(client_wrong_ca_stops_with_cause) {
  fx f;
  fx_rec rec = {0};
  apns_notification *n;
  apns_client_options o;
  char err[256] = "";
  setup(&f);
  base_options(&f, &o);
  f.tls.verify_name = "wrong.example";
  ASSERT_OK(apns_client_open(&f.loop, &f.client, &o, err, sizeof err));
  ASSERT_OK(apns_notification_new(&n));
  ASSERT_OK(apns_notification_set_alert_text(n, "hi"));
  rec.loop = &f.loop;
  uint64_t t0 = uv_now(&f.loop);
  send_and_wait(&f, n, NULL, &rec);
  ASSERT_ERR(rec.err, APNS_ECERTVERIFY);
  ASSERT_EQ(rec.attempts, 0);
  ASSERT_EQ(rec.delivery, APNS_DELIVERY_NOT_PROCESSED);
  ASSERT_LT(rec.t_end - t0, 5000 * test_time_factor());
  ASSERT_EQ(f.stopped, 1);
  ASSERT_ERR(apns_client_stop_cause(f.client, NULL), APNS_ECERTVERIFY);
  apns_notification_free(n);
  teardown(&f);
}

/* A send with timeout UINT64_MAX ("no deadline") is answered, not timed out at once. */
TEST(client_timeout_max_answered) {
  fx f;
  fx_rec rec = {0};
  apns_notification *n;
  setup(&f);
  open_cert_client(&f);
  ASSERT_OK(apns_notification_new(&n));
  ASSERT_OK(apns_notification_set_alert_text(n, "hi"));
  apns_send_options so = APNS_SEND_OPTIONS_INIT;
  so.timeout_ms = UINT64_MAX;
  send_and_wait(&f, n, &so, &rec);
  ASSERT_OK(rec.err);
  ASSERT_EQ(rec.status, 200);
  apns_notification_free(n);
  teardown(&f);
}

/* Accessors take NULL (NULL or zeros back); int-returning calls say APNS_EINVAL. */
TEST(client_accessors_take_null) {
  apns_pool_stats st;
  memset(&st, 0xab, sizeof st);
  apns_client_get_stats(NULL, &st, sizeof st);
  ASSERT_UEQ(st.posted, 0);
  ASSERT_NULL(apns_client_data(NULL));
  ASSERT_NULL(apns_client_pool(NULL));
  ASSERT_ERR(apns_client_stop_cause(NULL, NULL), APNS_EINVAL);
  ASSERT_ERR(apns_client_close(NULL, 0, NULL), APNS_EINVAL);
  ASSERT_ERR(apns_client_send_json(NULL, TOKEN, "{}", 2, NULL, fx_record, NULL), APNS_EINVAL);
}

/* ---- unref (the Node binding's need) and the close callback's timing ---- */

/* The mock in a child process: in-process, its own handles would keep the loop alive whatever the client does. */
static pid_t open_client_forked_mock(fx *f) {
  apns_client_options o;
  apns_tls_options tlso = APNS_TLS_OPTIONS_INIT;
  char err[256] = "";
  pid_t pid;
  setup_base(f);
  int port = fx_mock_fork(&f->mo, &pid);
  apns_client_options_init(&o);
  o.endpoint = APNS_ENDPOINT_CUSTOM;
  o.host = "127.0.0.1";
  o.port = (uint16_t)port;
  o.tls = fx_tls_client(&tlso, &f->certs);
  o.topic = "com.example.app";
  o.data = f;
  o.on_event = on_event;
  o.on_connected = on_connected;
  o.connections = 2; /* every connection's handles, not the first one's only */
  int rv = apns_client_open(&f->loop, &f->client, &o, err, sizeof err);
  if (rv) test__fail(__FILE__, __LINE__, "apns_client_open: %s (%s)", apns_strerror(rv), err);
  return pid;
}

/* The caller's own referenced handle: a timer that keeps the loop running until *until is set, or, with client
 * set, until the client has no connection up. */
typedef struct guard {
  uv_timer_t t;
  const int *until;
  apns_client *down;
} guard;

static void guard_tick(uv_timer_t *t) {
  guard *g = (guard *)t;
  apns_pool_stats st;
  apns_client_get_stats(g->down, &st, sizeof st);
  if (g->down ? st.connections_up == 0 : *g->until) uv_close((uv_handle_t *)t, NULL);
}

TEST(client_unref_lets_the_loop_end) {
  fx f;
  fx_rec rec = {0};
  apns_pool_stats st;
  pid_t pid = open_client_forked_mock(&f);
  fx_run_until_count(&f.loop, &f.connected, 1);
  while (apns_client_get_stats(f.client, &st, sizeof st), st.connections_up < 2) uv_run(&f.loop, UV_RUN_ONCE);
  ASSERT_TRUE(uv_loop_alive(&f.loop)); /* referenced: the client keeps the loop alive */
  apns_client_unref(f.client);
  apns_client_unref(f.client); /* idempotent */
  ASSERT_TRUE(!uv_loop_alive(&f.loop));
  ASSERT_EQ(uv_run(&f.loop, UV_RUN_DEFAULT), 0); /* returns, the client open and connected */
  apns_client_get_stats(f.client, &st, sizeof st);
  ASSERT_EQ(st.connections_up, 2);
  /* A send in flight completes while the caller's own referenced handle keeps the loop running (the binding's
   * way: in-flight sends do not keep the loop alive by themselves, as Node's unref'd sockets). */
  guard g = {.until = &f.done};
  ASSERT_EQ(uv_timer_init(&f.loop, &g.t), 0);
  ASSERT_EQ(uv_timer_start(&g.t, guard_tick, 1, 1), 0);
  rec.counter = &f.done;
  ASSERT_OK(apns_client_send_json(f.client, TOKEN, "{\"aps\":{}}", 10, NULL, fx_record, &rec));
  ASSERT_EQ(uv_run(&f.loop, UV_RUN_DEFAULT), 0);
  ASSERT_EQ(rec.calls, 1);
  ASSERT_EQ(rec.status, 200);
  ASSERT_TRUE(!uv_loop_alive(&f.loop));
  apns_client_ref(f.client);
  ASSERT_TRUE(uv_loop_alive(&f.loop));
  apns_client_unref(f.client);
  /* The server goes away (the guard keeps the loop running until the client has seen it): the reconnect timers
   * and the handles of the connections tried next are unreferenced too. */
  fx_mock_kill(pid);
  guard g2 = {.down = f.client};
  ASSERT_EQ(uv_timer_init(&f.loop, &g2.t), 0);
  ASSERT_EQ(uv_timer_start(&g2.t, guard_tick, 1, 1), 0);
  ASSERT_EQ(uv_run(&f.loop, UV_RUN_DEFAULT), 0);
  apns_client_get_stats(f.client, &st, sizeof st);
  ASSERT_EQ(st.connections_up, 0);
  ASSERT_TRUE(!uv_loop_alive(&f.loop));
  /* The close keeps the loop alive until its callback, which never runs inside the call. */
  ASSERT_OK(apns_client_close(f.client, 1000, on_closed));
  ASSERT_EQ(f.closed, 0);
  ASSERT_TRUE(uv_loop_alive(&f.loop));
  ASSERT_EQ(uv_run(&f.loop, UV_RUN_DEFAULT), 0);
  ASSERT_EQ(f.closed, 1);
  ASSERT_EQ(uv_loop_close(&f.loop), 0);
  apns__certgen_free(&f.certs);
  ASSERT_EQ(test_alloc_live(), f.live_before);
}

static void close_from_callback(int err, const apns_response *res, void *data) {
  fx *f = data;
  (void)err;
  (void)res;
  f->done++;
  ASSERT_OK(apns_client_close(f->client, 0, on_closed));
  ASSERT_EQ(f->closed, 0);
}

/* apns_client_close's callback runs from the loop, never inside the call: with nothing in flight and no drain
 * time, right after open (nothing connected yet), and from inside a send's callback. */
TEST(client_close_callback_never_inside_the_call) {
  for (int mode = 0; mode < 3; mode++) {
    fx f;
    pid_t pid = open_client_forked_mock(&f);
    if (mode > 0) fx_run_until_count(&f.loop, &f.connected, 1);
    if (mode < 2) {
      ASSERT_OK(apns_client_close(f.client, 0, on_closed));
      ASSERT_EQ(f.closed, 0);
    } else {
      ASSERT_OK(apns_client_send_json(f.client, TOKEN, "{\"aps\":{}}", 10, NULL, close_from_callback, &f));
    }
    fx_run_until(&f.loop, &f.closed);
    ASSERT_EQ(f.done, mode == 2 ? 1 : 0);
    fx_mock_kill(pid);
    ASSERT_EQ(uv_run(&f.loop, UV_RUN_DEFAULT), 0);
    ASSERT_EQ(uv_loop_close(&f.loop), 0);
    apns__certgen_free(&f.certs);
    ASSERT_EQ(test_alloc_live(), f.live_before);
  }
}

TEST_SUITE(client){
    TEST_ENTRY(client_unref_lets_the_loop_end),
    TEST_ENTRY(client_close_callback_never_inside_the_call),
    TEST_ENTRY(client_quickstart_on_the_wire),
    TEST_ENTRY(client_options_reach_headers),
    TEST_ENTRY(client_background_by_default),
    TEST_ENTRY(client_send_json),
    TEST_ENTRY(client_validates_before_queueing),
    TEST_ENTRY(client_open_errors),
    TEST_ENTRY(client_token_auth),
    TEST_ENTRY(client_token_refresh_schedule),
    TEST_ENTRY(client_expired_token_retried_once),
    TEST_ENTRY(client_token_verified_by_mock),
    TEST_ENTRY(client_token_wrong_key_refused),
    TEST_ENTRY(client_token_two_hours),
    TEST_ENTRY(client_timeout_max_answered),
    TEST_ENTRY(client_accessors_take_null),
    TEST_ENTRY(client_invalid_token_stops),
    TEST_ENTRY(client_on_connected),
    TEST_ENTRY(client_wrong_ca_stops_with_cause),
    TEST_ENTRY(client_expired_young_token_kept),
    TEST_ENTRY(client_too_many_token_updates_not_retried),
    TEST_ENTRY(client_token_expiry_in_flight_one_new_token),
    TEST_ENTRY(client_token_refresh_after_clock_step_back),
    TEST_SUITE_END,
};
