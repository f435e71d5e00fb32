/* Broadcast push: channel management (apns_channels) and broadcasts (apns_client_broadcast) against apns-mock's
 * channels, certificate and token auth, every reason the mock knows, the wire format compared with the dry-run
 * builders, the 10 000 limit, and the Live Activity payloads byte for byte. */
#include "fixture.h"

#include "alloc.h"

#include <signal.h>
#include <stdlib.h>

#define BUNDLE "com.example.app" /* the client certificate's topic (fx_certs) */
#define KEY_ID "ABC123DEFG"
#define TEAM_ID "DEF123GHIJ"
#define REQ_ID "2288CF3F-70D8-46A6-97D7-DD5D00867127"
#define REQ_ID_LOWER "2288cf3f-70d8-46a6-97d7-dd5d00867127"
#define TOKEN "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

/* What the mock saw of the last request. */
typedef struct {
  char method[16];
  char path[300];
  char headers[16][2][300];
  size_t num_headers;
  char body[6000];
  size_t body_len;
  int count;
  int force_status; /* when set, the hook answers this status instead (with the mock's reason) */
} seen;

typedef struct {
  uv_loop_t loop;
  apns__certgen_result certs;
  apns_mock_options mo;
  apns_mock *mock;
  apns_client_options co;
  apns_client *client;
  apns_channels *ch;
  seen seen;
  int done;
  int closed;
  int64_t now_s;
  long live_before;
  char key_pem[1024];
  apns_tls_options tls; /* what co.tls points to */
} fx;

/* One management request's outcome. */
typedef struct {
  int calls;
  int err;
  int ok;
  int status;
  apns_channel_op op;
  apns_reason reason;
  apns_delivery delivery;
  char request_id[40];
  char channel_id[APNS_CHANNEL_ID_MAX + 1];
  int storage;
  char push_type[32];
  size_t num_channels;
  char *ids; /* list: the ids, each followed by '\n' (malloc'd) */
  int *counter;
} crec;

static void capture(void *data, apns_mock_request *req) {
  fx *f = data;
  seen *s = &f->seen;
  snprintf(s->method, sizeof s->method, "%s", req->method);
  snprintf(s->path, sizeof s->path, "%s", req->path);
  s->num_headers = 0;
  for (size_t i = 0; i < req->num_headers && i < 16; i++) {
    snprintf(s->headers[i][0], sizeof s->headers[i][0], "%s", req->headers[i].name);
    snprintf(s->headers[i][1], sizeof s->headers[i][1], "%s", req->headers[i].value);
    s->num_headers++;
  }
  s->body_len = req->body_len < sizeof s->body - 1 ? req->body_len : sizeof s->body - 1;
  if (req->body) memcpy(s->body, req->body, s->body_len);
  s->body[s->body_len] = '\0';
  s->count++;
  if (s->force_status) req->status = s->force_status;
}

static const char *seen_header(fx *f, const char *name) {
  for (size_t i = 0; i < f->seen.num_headers; i++)
    if (strcmp(f->seen.headers[i][0], name) == 0) return f->seen.headers[i][1];
  return NULL;
}

/* The headers the mock saw, authorization left out, are exactly these, in this order. */
static void assert_headers(fx *f, const apns_header *h, size_t n) {
  size_t k = 0;
  for (size_t i = 0; i < f->seen.num_headers; i++) {
    if (strcmp(f->seen.headers[i][0], "authorization") == 0) continue;
    ASSERT_LT(k, n);
    ASSERT_STREQ(f->seen.headers[i][0], h[k].name);
    ASSERT_STREQ(f->seen.headers[i][1], h[k].value);
    k++;
  }
  ASSERT_EQ(k, n);
}

static void on_chan(apns_channels *ch, int err, const apns_channel_result *res, void *data) {
  crec *r = data;
  ASSERT_NOT_NULL(ch);
  ASSERT_NOT_NULL(res);
  ASSERT_NOT_NULL(res->response);
  r->calls++;
  ASSERT_EQ(r->calls, 1);
  r->err = err;
  r->ok = res->ok;
  r->status = res->status;
  r->op = res->op;
  r->reason = res->reason;
  r->delivery = res->response->delivery;
  snprintf(r->request_id, sizeof r->request_id, "%s", res->request_id ? res->request_id : "");
  snprintf(r->channel_id, sizeof r->channel_id, "%s", res->channel_id ? res->channel_id : "");
  r->storage = (int)res->storage;
  snprintf(r->push_type, sizeof r->push_type, "%s", res->push_type ? res->push_type : "");
  r->num_channels = res->num_channels;
  if (res->num_channels > 0) {
    size_t total = 1;
    for (size_t i = 0; i < res->num_channels; i++) total += strlen(res->channels[i]) + 1;
    r->ids = malloc(total);
    ASSERT_NOT_NULL(r->ids);
    r->ids[0] = '\0';
    size_t off = 0;
    for (size_t i = 0; i < res->num_channels; i++)
      off += (size_t)snprintf(r->ids + off, total - off, "%s\n", res->channels[i]);
  }
  if (r->counter) (*r->counter)++;
}

static int64_t test_clock(void *data) {
  return ((fx *)data)->now_s;
}

/* Loop, certificates and mock options (client certificates required, so that the certificate's topic binds). */
static void setup_base(fx *f) {
  memset(f, 0, sizeof *f);
  f->live_before = test_alloc_live();
  f->now_s = 1700000000;
  ASSERT_EQ(uv_loop_init(&f->loop), 0);
  fx_certs(&f->certs, 0);
  fx_mock_options(&f->mo, &f->certs, 1);
  f->mo.on_request = capture;
  f->mo.data = f;
}

static void start_mock(fx *f) {
  f->mock = fx_mock_start(&f->loop, &f->mo);
}

static void start_token_mock(fx *f) {
  f->mo.ca_pem = NULL; /* no client certificates: every connection is token-authenticated */
  f->mo.clock = test_clock;
  fx_ec_key_pem(f->key_pem, sizeof f->key_pem);
  apns_mock_token_key tk = {.key_id = KEY_ID, .pem = f->key_pem};
  f->mo.token_keys = &tk;
  f->mo.num_token_keys = 1;
  f->mock = fx_mock_start(&f->loop, &f->mo);
  f->mo.token_keys = NULL;
  f->mo.num_token_keys = 0;
}

/* The push client and the channels object, both on the one mock, sharing client options. */
static void open_both(fx *f, int token) {
  char err[256] = "";
  apns_client_options *o = &f->co;
  apns_client_options_init(o);
  o->endpoint = APNS_ENDPOINT_CUSTOM;
  o->host = "127.0.0.1";
  o->port = (uint16_t)apns_mock_port(f->mock);
  o->tls = fx_tls_client(&f->tls, &f->certs);
  o->topic = BUNDLE;
  o->data = f;
  o->connections = 1;
  o->timeout_ms = 10000 * (uint64_t)test_time_factor(); /* the channels inherit it */
  if (token) {
    f->tls.cert_pem = f->tls.key_pem = NULL;
    o->token_key_pem = f->key_pem;
    o->key_id = KEY_ID;
    o->team_id = TEAM_ID;
    o->clock = test_clock;
  }
  int rv = apns_client_open(&f->loop, &f->client, o, err, sizeof err);
  if (rv) test__fail(__FILE__, __LINE__, "apns_client_open: %s (%s)", apns_strerror(rv), err);
  apns_channels_options cho = APNS_CHANNELS_OPTIONS_INIT;
  cho.client_options = o;
  cho.host = "127.0.0.1";
  cho.port = (uint16_t)apns_mock_port(f->mock);
  cho.data = f;
  rv = apns_channels_open(&f->loop, &f->ch, &cho, err, sizeof err);
  if (rv) test__fail(__FILE__, __LINE__, "apns_channels_open: %s (%s)", apns_strerror(rv), err);
  ASSERT_TRUE(apns_channels_data(f->ch) == f);
}

static void on_client_closed(apns_client *c) {
  ((fx *)apns_client_data(c))->closed++;
}

static void on_channels_closed(apns_channels *ch) {
  ((fx *)apns_channels_data(ch))->closed++;
}

static void teardown(fx *f) {
  int want = 0;
  if (f->client) {
    ASSERT_OK(apns_client_close(f->client, 0, on_client_closed));
    want++;
  }
  if (f->ch) {
    ASSERT_OK(apns_channels_close(f->ch, 0, on_channels_closed));
    want++;
  }
  fx_run_until_count(&f->loop, &f->closed, want);
  fx_mock_stop_and_close_loop(&f->loop, f->mock);
  apns__certgen_free(&f->certs);
  ASSERT_EQ(test_alloc_live(), f->live_before);
}

static void wait_rec(fx *f, crec *r) {
  fx_run_until(&f->loop, &r->calls);
  (void)f;
}

static void create(fx *f, apns_channel_storage storage, const char *request_id, crec *r) {
  apns_channel_request_options ro = APNS_CHANNEL_REQUEST_OPTIONS_INIT;
  ro.request_id = request_id;
  ASSERT_OK(apns_channels_create(f->ch, storage, &ro, on_chan, r));
  ASSERT_EQ(r->calls, 0); /* never inside the call */
  wait_rec(f, r);
}

static void broadcast_wait(fx *f, const char *id, apns_notification *n, const apns_broadcast_options *bo,
                           fx_rec *rec) {
  rec->counter = &f->done;
  int target = f->done + 1;
  ASSERT_OK(apns_client_broadcast(f->client, id, n, bo, fx_record, rec));
  ASSERT_EQ(rec->calls, 0);
  fx_run_until_count(&f->loop, &f->done, target);
}

/* A raw request on the management connections (for what the API refuses to send). */
static void raw(fx *f, apns_pool *pool, const char *method, const char *path, const apns_header *h, size_t nh,
                const char *body, fx_rec *rec) {
  apns_request req = {
      sizeof(apns_request), method, path, h, nh, body, body ? strlen(body) : 0, 10000 * (uint64_t)test_time_factor()};
  rec->counter = &f->done;
  int target = f->done + 1;
  ASSERT_OK(apns_pool_post(pool, &req, fx_record, rec));
  fx_run_until_count(&f->loop, &f->done, target);
}

typedef struct {
  int n, deleted;
  uint64_t broadcasts, rejected;
  char last_id[64];
  int last_storage;
} chan_count;

static void count_channel(void *data, const apns_mock_channel *c) {
  chan_count *cc = data;
  cc->n++;
  cc->deleted += c->deleted;
  cc->broadcasts += c->broadcasts;
  cc->rejected += c->rejected;
  snprintf(cc->last_id, sizeof cc->last_id, "%s", c->id);
  cc->last_storage = c->storage;
  ASSERT_STREQ(c->bundle_id, BUNDLE);
}

static apns_notification *la_update(void) {
  apns_notification *n;
  ASSERT_OK(apns_notification_new(&n));
  ASSERT_OK(apns_notification_set_timestamp(n, 1685952000));
  ASSERT_OK(apns_notification_set_event(n, "update"));
  ASSERT_OK(apns_notification_set_content_state(n, "{\"home\":2,\"away\":1}"));
  return n;
}

/* ---- pure: validators and dry-run builders ---- */

TEST(channels_validate) {
  const char *good[] = {"dHN0LXNyY2gtY2hubA==", "YQ==", "YWI=", "YWJj", "YWJjZA", "YWJjZGU", "+/+/", "Ab"};
  for (size_t i = 0; i < sizeof good / sizeof *good; i++) ASSERT_OK(apns_validate_channel_id(good[i]));
  const char *bad[] = {"", "a", "YWJjZ", "Y=Q=", "YQ===", "====", "YQ=", "dHN0 LXNy", "dHN0-LXNy", "a_b", "\xc3\xa9"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    ASSERT_ERR(apns_validate_channel_id(bad[i]), APNS_EBADCHANNELID);
  ASSERT_ERR(apns_validate_channel_id(NULL), APNS_EBADCHANNELID);
  char longid[APNS_CHANNEL_ID_MAX + 2];
  memset(longid, 'A', sizeof longid - 1);
  longid[sizeof longid - 1] = '\0';
  ASSERT_ERR(apns_validate_channel_id(longid), APNS_EBADCHANNELID);
  longid[APNS_CHANNEL_ID_MAX - 1] = '\0'; /* 254 = 4*63+2: fine */
  ASSERT_OK(apns_validate_channel_id(longid));

  ASSERT_OK(apns_validate_bundle_id("com.example.MyApp"));
  ASSERT_OK(apns_validate_bundle_id("com.ex-ample.my_app2"));
  const char *badb[] = {"", "com/example", "com example", "com.example?x", "com%2f", "\xc3\xa9"};
  for (size_t i = 0; i < sizeof badb / sizeof *badb; i++)
    ASSERT_ERR(apns_validate_bundle_id(badb[i]), APNS_EBADTOPIC);
  ASSERT_ERR(apns_validate_bundle_id(NULL), APNS_EBADTOPIC);
  ASSERT_STREQ(apns_channel_op_string(APNS_CHANNEL_LIST), "list");
  ASSERT_NULL(apns_channel_op_string((apns_channel_op)9));
  ASSERT_STREQ(apns_err_name(APNS_EBADCHANNELID), "APNS_EBADCHANNELID");
}

TEST(channels_build_requests) {
  apns_channel_request cr;
  ASSERT_OK(apns_build_channel_request(APNS_CHANNEL_CREATE, BUNDLE, NULL, APNS_CHANNEL_STORAGE_LATEST, REQ_ID, &cr,
                                       sizeof cr));
  ASSERT_STREQ(cr.method, "POST");
  ASSERT_STREQ(cr.path, "/1/apps/com.example.app/channels");
  ASSERT_EQ(cr.num_headers, 1);
  ASSERT_STREQ(cr.headers[0].name, "apns-request-id");
  ASSERT_STREQ(cr.headers[0].value, REQ_ID_LOWER);
  ASSERT_STREQ(cr.body, "{\"message-storage-policy\":1,\"push-type\":\"LiveActivity\"}");
  ASSERT_EQ(cr.body_len, strlen(cr.body));
  ASSERT_OK(
      apns_build_channel_request(APNS_CHANNEL_CREATE, BUNDLE, NULL, APNS_CHANNEL_STORAGE_NONE, NULL, &cr, sizeof cr));
  ASSERT_EQ(cr.num_headers, 0);
  ASSERT_STREQ(cr.body, "{\"message-storage-policy\":0,\"push-type\":\"LiveActivity\"}");

  ASSERT_OK(apns_build_channel_request(APNS_CHANNEL_READ, BUNDLE, "dHN0LXNyY2gtY2hubA==", 0, REQ_ID, &cr, sizeof cr));
  ASSERT_STREQ(cr.method, "GET");
  ASSERT_STREQ(cr.path, "/1/apps/com.example.app/channels");
  ASSERT_EQ(cr.num_headers, 2);
  ASSERT_STREQ(cr.headers[0].name, "apns-channel-id");
  ASSERT_STREQ(cr.headers[0].value, "dHN0LXNyY2gtY2hubA==");
  ASSERT_STREQ(cr.headers[1].name, "apns-request-id");
  ASSERT_EQ(cr.body_len, 0);
  ASSERT_OK(apns_build_channel_request(APNS_CHANNEL_DELETE, BUNDLE, "dHN0LXNyY2gtY2hubA==", 0, NULL, &cr, sizeof cr));
  ASSERT_STREQ(cr.method, "DELETE");
  ASSERT_EQ(cr.num_headers, 1);
  ASSERT_OK(apns_build_channel_request(APNS_CHANNEL_LIST, BUNDLE, NULL, 0, NULL, &cr, sizeof cr));
  ASSERT_STREQ(cr.method, "GET");
  ASSERT_STREQ(cr.path, "/1/apps/com.example.app/all-channels");
  ASSERT_EQ(cr.num_headers, 0);

  /* Checks in order: operation, bundle, channel id, storage, request id. */
  ASSERT_ERR(apns_build_channel_request((apns_channel_op)0, BUNDLE, NULL, 0, NULL, &cr, sizeof cr), APNS_EINVAL);
  ASSERT_ERR(apns_build_channel_request(APNS_CHANNEL_READ, "a/b", "x", 0, "bad", &cr, sizeof cr), APNS_EBADTOPIC);
  ASSERT_ERR(apns_build_channel_request(APNS_CHANNEL_READ, BUNDLE, NULL, 0, NULL, &cr, sizeof cr),
             APNS_EBADCHANNELID);
  ASSERT_ERR(apns_build_channel_request(APNS_CHANNEL_DELETE, BUNDLE, "a b", 0, NULL, &cr, sizeof cr),
             APNS_EBADCHANNELID);
  ASSERT_ERR(
      apns_build_channel_request(APNS_CHANNEL_CREATE, BUNDLE, NULL, (apns_channel_storage)2, NULL, &cr, sizeof cr),
      APNS_EINVAL);
  ASSERT_ERR(apns_build_channel_request(APNS_CHANNEL_LIST, BUNDLE, NULL, 0, "not-a-uuid", &cr, sizeof cr),
             APNS_EBADAPNSID);
  ASSERT_ERR(apns_build_channel_request(APNS_CHANNEL_LIST, BUNDLE, NULL, 0, NULL, NULL, sizeof(apns_channel_request)),
             APNS_EINVAL);
}

TEST(broadcast_build_request) {
  apns_broadcast_request br;
  apns_broadcast_options bo = APNS_BROADCAST_OPTIONS_INIT;
  ASSERT_OK(apns_build_broadcast_request(BUNDLE, "dHN0LXNyY2gtY2hubA==", NULL, &br, sizeof br));
  ASSERT_STREQ(br.path, "/4/broadcasts/apps/com.example.app");
  ASSERT_EQ(br.num_headers, 4);
  const char *want[4][2] = {{"apns-channel-id", "dHN0LXNyY2gtY2hubA=="},
                            {"apns-push-type", "liveactivity"},
                            {"apns-priority", "10"},
                            {"apns-expiration", "0"}};
  for (int i = 0; i < 4; i++) {
    ASSERT_STREQ(br.headers[i].name, want[i][0]);
    ASSERT_STREQ(br.headers[i].value, want[i][1]);
  }
  /* The client's topic may carry the liveactivity suffix; the path never does. */
  bo.priority = 5;
  bo.expiration = 1700003600;
  bo.request_id = REQ_ID;
  ASSERT_OK(apns_build_broadcast_request(BUNDLE ".push-type.liveactivity", "YWJj", &bo, &br, sizeof br));
  ASSERT_STREQ(br.path, "/4/broadcasts/apps/com.example.app");
  ASSERT_EQ(br.num_headers, 5);
  ASSERT_STREQ(br.headers[2].value, "5");
  ASSERT_STREQ(br.headers[3].value, "1700003600");
  ASSERT_STREQ(br.headers[4].name, "apns-request-id");
  ASSERT_STREQ(br.headers[4].value, REQ_ID_LOWER);
  bo.bundle_id = "com.other.app";
  ASSERT_OK(apns_build_broadcast_request(BUNDLE, "YWJj", &bo, &br, sizeof br));
  ASSERT_STREQ(br.path, "/4/broadcasts/apps/com.other.app");

  apns_broadcast_options_init(&bo);
  ASSERT_ERR(apns_build_broadcast_request(BUNDLE, "a=b", &bo, &br, sizeof br), APNS_EBADCHANNELID);
  ASSERT_ERR(apns_build_broadcast_request(NULL, "YWJj", &bo, &br, sizeof br), APNS_EBADTOPIC);
  ASSERT_ERR(apns_build_broadcast_request("com example", "YWJj", &bo, &br, sizeof br), APNS_EBADTOPIC);
  bo.priority = 7;
  ASSERT_ERR(apns_build_broadcast_request(BUNDLE, "YWJj", &bo, &br, sizeof br), APNS_EBADPRIORITY);
  bo.priority = 1;
  bo.expiration = -1;
  ASSERT_ERR(apns_build_broadcast_request(BUNDLE, "YWJj", &bo, &br, sizeof br), APNS_EINVAL);
  bo.expiration = 0;
  bo.request_id = "123";
  ASSERT_ERR(apns_build_broadcast_request(BUNDLE, "YWJj", &bo, &br, sizeof br), APNS_EBADAPNSID);
}

/* The three Live Activity payloads, byte for byte, whatever order the keys are set in. */
TEST(channels_live_activity_payloads) {
  apns_notification *n;
  const char *json;
  size_t len;
  /* push-to-start: event start with its attributes, asking for the activity's token and naming its channel */
  ASSERT_OK(apns_notification_new(&n));
  ASSERT_OK(apns_notification_set_input_push_channel(n, "dHN0LXNyY2gtY2hubA=="));
  ASSERT_OK(apns_notification_set_input_push_token(n, 1));
  ASSERT_OK(apns_notification_set_attributes(n, "{\"homeTeam\":\"Lions\",\"awayTeam\":\"Bears\"}"));
  ASSERT_OK(apns_notification_set_attributes_type(n, "MatchAttributes"));
  ASSERT_OK(apns_notification_set_content_state(n, "{\"home\":0,\"away\":0}"));
  ASSERT_OK(apns_notification_set_event(n, "start"));
  ASSERT_OK(apns_notification_set_timestamp(n, 1685952000));
  ASSERT_OK(apns_notification_set_alert_title(n, "Kick-off"));
  ASSERT_OK(apns_notification_set_alert_body(n, "Lions v Bears"));
  ASSERT_OK(apns_notification_serialize(n, APNS_PAYLOAD_MAX, &json, &len));
  ASSERT_STREQ(json,
               "{\"aps\":{\"alert\":{\"title\":\"Kick-off\",\"body\":\"Lions v Bears\"},\"timestamp\":1685952000,"
               "\"event\":\"start\",\"content-state\":{\"home\":0,\"away\":0},"
               "\"attributes-type\":\"MatchAttributes\",\"attributes\":{\"homeTeam\":\"Lions\",\"awayTeam\":"
               "\"Bears\"},\"input-push-token\":1,\"input-push-channel\":\"dHN0LXNyY2gtY2hubA==\"}}");
  ASSERT_EQ(len, strlen(json));
  apns_notification_free(n);

  /* update: new content state, a stale date and a relevance score */
  ASSERT_OK(apns_notification_new(&n));
  ASSERT_OK(apns_notification_set_relevance_score(n, 0.75));
  ASSERT_OK(apns_notification_set_stale_date(n, 1685955600));
  ASSERT_OK(apns_notification_set_content_state_value(n, "home", "1"));
  ASSERT_OK(apns_notification_set_content_state_value(n, "away", "0"));
  ASSERT_OK(apns_notification_set_event(n, "update"));
  ASSERT_OK(apns_notification_set_timestamp(n, 1685952900));
  ASSERT_OK(apns_notification_serialize(n, APNS_PAYLOAD_MAX_BROADCAST, &json, &len));
  ASSERT_STREQ(json, "{\"aps\":{\"relevance-score\":0.75,\"timestamp\":1685952900,\"event\":\"update\","
                     "\"content-state\":{\"home\":1,\"away\":0},\"stale-date\":1685955600}}");
  apns_notification_free(n);

  /* end: the final state, and when to take it off the Lock Screen */
  ASSERT_OK(apns_notification_new(&n));
  ASSERT_OK(apns_notification_set_dismissal_date(n, 1685966400));
  ASSERT_OK(apns_notification_set_content_state(n, "{\"home\":3,\"away\":1,\"final\":true}"));
  ASSERT_OK(apns_notification_set_event(n, "end"));
  ASSERT_OK(apns_notification_set_timestamp(n, 1685959200));
  ASSERT_OK(apns_notification_serialize(n, APNS_PAYLOAD_MAX_BROADCAST, &json, &len));
  ASSERT_STREQ(json, "{\"aps\":{\"timestamp\":1685959200,\"event\":\"end\","
                     "\"content-state\":{\"home\":3,\"away\":1,\"final\":true},\"dismissal-date\":1685966400}}");
  apns_notification_free(n);
}

/* ---- against the mock ---- */

/* create, read, list, broadcast, delete, then read, broadcast and list after the delete; every request on the
 * wire compared with the dry-run builders. */
static void lifecycle(fx *f) {
  crec c = {0}, r = {0}, l = {0}, d = {0}, r2 = {0}, l2 = {0};
  apns_channel_request cr;

  create(f, APNS_CHANNEL_STORAGE_LATEST, REQ_ID, &c);
  ASSERT_OK(c.err);
  if (!c.ok) printf("create: %d %s\n", c.status, apns_reason_string(c.reason));
  ASSERT_EQ(c.ok, 1);
  ASSERT_EQ(c.status, 201);
  ASSERT_EQ(c.op, APNS_CHANNEL_CREATE);
  ASSERT_STREQ(c.request_id, REQ_ID_LOWER);
  ASSERT_EQ(strlen(c.channel_id), 24);
  ASSERT_OK(apns_validate_channel_id(c.channel_id));
  ASSERT_OK(apns_build_channel_request(APNS_CHANNEL_CREATE, BUNDLE, NULL, APNS_CHANNEL_STORAGE_LATEST, REQ_ID, &cr,
                                       sizeof cr));
  ASSERT_STREQ(f->seen.method, cr.method);
  ASSERT_STREQ(f->seen.path, cr.path);
  assert_headers(f, cr.headers, cr.num_headers);
  ASSERT_EQ(f->seen.body_len, cr.body_len);
  ASSERT_MEMEQ(f->seen.body, cr.body, cr.body_len);

  ASSERT_OK(apns_channels_read(f->ch, c.channel_id, NULL, on_chan, &r));
  wait_rec(f, &r);
  ASSERT_OK(r.err);
  ASSERT_EQ(r.ok, 1);
  ASSERT_EQ(r.status, 200);
  ASSERT_EQ(r.storage, APNS_CHANNEL_STORAGE_LATEST);
  ASSERT_STREQ(r.push_type, "LiveActivity");
  ASSERT_STREQ(r.channel_id, c.channel_id);
  ASSERT_EQ(strlen(r.request_id), 36); /* made by the server: none was sent */
  ASSERT_OK(apns_build_channel_request(APNS_CHANNEL_READ, BUNDLE, c.channel_id, 0, NULL, &cr, sizeof cr));
  ASSERT_STREQ(f->seen.method, "GET");
  ASSERT_STREQ(f->seen.path, cr.path);
  assert_headers(f, cr.headers, cr.num_headers);
  ASSERT_EQ(f->seen.body_len, 0);

  ASSERT_OK(apns_channels_list(f->ch, NULL, on_chan, &l));
  wait_rec(f, &l);
  ASSERT_EQ(l.ok, 1);
  ASSERT_EQ(l.num_channels, 1);
  char line[64];
  snprintf(line, sizeof line, "%.30s\n", c.channel_id);
  ASSERT_STREQ(l.ids, line);
  ASSERT_STREQ(f->seen.path, "/1/apps/" BUNDLE "/all-channels");
  ASSERT_EQ(f->seen.num_headers - (seen_header(f, "authorization") != NULL), 0);

  /* A broadcast on the push client: an update, stored until an hour from now. */
  apns_notification *n = la_update();
  apns_broadcast_options bo = APNS_BROADCAST_OPTIONS_INIT;
  bo.expiration = f->now_s + 3600;
  bo.request_id = REQ_ID;
  fx_rec b = {0};
  broadcast_wait(f, c.channel_id, n, &bo, &b);
  ASSERT_OK(b.err);
  ASSERT_EQ(b.status, 200);
  apns_broadcast_request br;
  ASSERT_OK(apns_build_broadcast_request(BUNDLE, c.channel_id, &bo, &br, sizeof br));
  ASSERT_STREQ(f->seen.method, "POST");
  ASSERT_STREQ(f->seen.path, br.path);
  assert_headers(f, br.headers, br.num_headers);
  const char *json;
  size_t len;
  ASSERT_OK(apns_notification_serialize(n, APNS_PAYLOAD_MAX_BROADCAST, &json, &len));
  ASSERT_EQ(f->seen.body_len, len);
  ASSERT_MEMEQ(f->seen.body, json, len);
  ASSERT_STREQ(f->seen.body, "{\"aps\":{\"timestamp\":1685952000,\"event\":\"update\","
                             "\"content-state\":{\"home\":2,\"away\":1}}}");

  ASSERT_OK(apns_channels_delete(f->ch, c.channel_id, NULL, on_chan, &d));
  wait_rec(f, &d);
  ASSERT_OK(d.err);
  ASSERT_EQ(d.ok, 1);
  ASSERT_EQ(d.status, 204);
  ASSERT_STREQ(f->seen.method, "DELETE");
  ASSERT_STREQ(seen_header(f, "apns-channel-id"), c.channel_id);

  /* Gone: read, broadcast and list say so. */
  ASSERT_OK(apns_channels_read(f->ch, c.channel_id, NULL, on_chan, &r2));
  wait_rec(f, &r2);
  ASSERT_OK(r2.err);
  ASSERT_EQ(r2.ok, 0);
  ASSERT_EQ(r2.status, 400);
  ASSERT_EQ(r2.reason, APNS_REASON_ChannelNotRegistered);
  fx_rec b2 = {0};
  broadcast_wait(f, c.channel_id, n, NULL, &b2);
  ASSERT_OK(b2.err);
  ASSERT_EQ(b2.status, 400);
  ASSERT_EQ(b2.reason, APNS_REASON_ChannelNotRegistered);
  ASSERT_OK(apns_channels_list(f->ch, NULL, on_chan, &l2));
  wait_rec(f, &l2);
  ASSERT_EQ(l2.ok, 1);
  ASSERT_EQ(l2.num_channels, 0);

  chan_count cc = {0};
  apns_mock_foreach_channel(f->mock, count_channel, &cc);
  ASSERT_EQ(cc.n, 1);
  ASSERT_EQ(cc.deleted, 1);
  ASSERT_UEQ(cc.broadcasts, 1);
  ASSERT_STREQ(cc.last_id, c.channel_id);
  ASSERT_EQ(cc.last_storage, 1);
  apns_notification_free(n);
  free(l.ids);
}

TEST(channels_lifecycle_certificate) {
  fx f;
  setup_base(&f);
  start_mock(&f);
  open_both(&f, 0);
  lifecycle(&f);
  ASSERT_NULL(seen_header(&f, "authorization"));
  teardown(&f);
}

TEST(channels_lifecycle_token) {
  fx f;
  setup_base(&f);
  start_token_mock(&f);
  open_both(&f, 1);
  lifecycle(&f);
  const char *auth = seen_header(&f, "authorization");
  ASSERT_NOT_NULL(auth);
  ASSERT_EQ(strncmp(auth, "bearer ", 7), 0);
  apns_mock_stats st;
  apns_mock_get_stats(f.mock, &st);
  ASSERT_EQ(st.connections, 2);     /* one push, one management connection */
  ASSERT_EQ(st.tokens_accepted, 2); /* each signed its own token with the shared key */
  ASSERT_EQ(st.status[403], 0);
  teardown(&f);
}

/* The management client does not resend a create that may have reached the server; a push-to-start send on the
 * same client options uses the liveactivity topic. */
TEST(channels_push_to_start_and_storage_none) {
  fx f;
  crec c = {0};
  setup_base(&f);
  start_mock(&f);
  open_both(&f, 0);
  create(&f, APNS_CHANNEL_STORAGE_NONE, NULL, &c);
  ASSERT_EQ(c.ok, 1);
  ASSERT_STREQ(f.seen.body, "{\"message-storage-policy\":0,\"push-type\":\"LiveActivity\"}");

  apns_notification *n;
  ASSERT_OK(apns_notification_new(&n));
  ASSERT_OK(apns_notification_set_event(n, "start"));
  ASSERT_OK(apns_notification_set_timestamp(n, 1685952000));
  ASSERT_OK(apns_notification_set_attributes_type(n, "MatchAttributes"));
  ASSERT_OK(apns_notification_set_attributes(n, "{\"match\":7}"));
  ASSERT_OK(apns_notification_set_content_state(n, "{\"home\":0}"));
  ASSERT_OK(apns_notification_set_input_push_channel(n, c.channel_id));
  apns_send_options so = APNS_SEND_OPTIONS_INIT;
  so.push_type = APNS_PUSH_TYPE_LIVEACTIVITY;
  fx_rec s = {0};
  s.counter = &f.done;
  ASSERT_OK(apns_client_send(f.client, TOKEN, n, &so, fx_record, &s));
  fx_run_until(&f.loop, &f.done);
  ASSERT_EQ(s.status, 200);
  ASSERT_STREQ(f.seen.path, "/3/device/" TOKEN);
  ASSERT_STREQ(seen_header(&f, "apns-topic"), BUNDLE ".push-type.liveactivity");
  ASSERT_STREQ(seen_header(&f, "apns-push-type"), "liveactivity");
  char want[512];
  snprintf(want, sizeof want,
           "{\"aps\":{\"timestamp\":1685952000,\"event\":\"start\",\"content-state\":{\"home\":0},"
           "\"attributes-type\":\"MatchAttributes\",\"attributes\":{\"match\":7},\"input-push-channel\":\"%s\"}}",
           c.channel_id);
  ASSERT_STREQ(f.seen.body, want);
  apns_notification_free(n);

  /* A no-storage channel takes expiration 0 only (the server's rule). */
  n = la_update();
  apns_broadcast_options bo = APNS_BROADCAST_OPTIONS_INIT;
  fx_rec b1 = {0}, b2 = {0};
  broadcast_wait(&f, c.channel_id, n, &bo, &b1);
  ASSERT_EQ(b1.status, 200);
  bo.expiration = f.now_s + 60;
  broadcast_wait(&f, c.channel_id, n, &bo, &b2);
  ASSERT_EQ(b2.status, 400);
  ASSERT_EQ(b2.reason, APNS_REASON_BadExpirationDate);
  chan_count cc = {0};
  apns_mock_foreach_channel(f.mock, count_channel, &cc);
  ASSERT_UEQ(cc.broadcasts, 1);
  ASSERT_UEQ(cc.rejected, 1);
  apns_notification_free(n);
  teardown(&f);
}

/* Every reason the mock gives on these paths, each from the request that earns it (FeatureNotEnabled and
 * CannotCreateChannelConfig: the next test). */
TEST(channels_error_reasons) {
  fx f;
  setup_base(&f);
  start_mock(&f);
  open_both(&f, 0);
  apns_pool *mp = apns_client_pool(apns_channels_client(f.ch)), *pp = apns_client_pool(f.client);
  crec c = {0};
  create(&f, APNS_CHANNEL_STORAGE_NONE, NULL, &c);
  ASSERT_EQ(c.ok, 1);
  const char *P = "/1/apps/" BUNDLE "/channels", *B = "/4/broadcasts/apps/" BUNDLE;
  const apns_header with_id[] = {{"apns-channel-id", c.channel_id}};
  const apns_header bad_id[] = {{"apns-channel-id", "not*base64"}};
  const apns_header unknown_id[] = {{"apns-channel-id", "dHN0LXNyY2gtY2hubA=="}};
  const apns_header bad_req[] = {{"apns-channel-id", c.channel_id}, {"apns-request-id", "nope"}};
  const apns_header twice[] = {{"apns-channel-id", c.channel_id}, {"apns-channel-id", c.channel_id}};
  const apns_header bc_ok[] = {{"apns-channel-id", c.channel_id},
                               {"apns-push-type", "liveactivity"},
                               {"apns-priority", "10"},
                               {"apns-expiration", "0"}};
  const apns_header bc_no_type[] = {
      {"apns-channel-id", c.channel_id}, {"apns-priority", "10"}, {"apns-expiration", "0"}};
  const apns_header bc_bad_type[] = {{"apns-channel-id", c.channel_id},
                                     {"apns-push-type", "alert"},
                                     {"apns-priority", "10"},
                                     {"apns-expiration", "0"}};
  const apns_header bc_no_prio[] = {
      {"apns-channel-id", c.channel_id}, {"apns-push-type", "liveactivity"}, {"apns-expiration", "0"}};
  const apns_header bc_no_exp[] = {
      {"apns-channel-id", c.channel_id}, {"apns-push-type", "liveactivity"}, {"apns-priority", "5"}};
  const char *body = "{\"aps\":{\"event\":\"update\",\"content-state\":{}}}";
  static char big[APNS_PAYLOAD_MAX_BROADCAST + 64];
  memset(big, ' ', sizeof big - 1);
  memcpy(big, "{\"aps\":{}}", 10);
  struct {
    apns_pool *pool;
    const char *method, *path;
    const apns_header *h;
    size_t nh;
    const char *body;
    int status;
    const char *reason;
  } cases[] = {
      {mp, "GET", P, NULL, 0, NULL, 400, "MissingChannelId"},
      {mp, "DELETE", P, bad_id, 1, NULL, 400, "BadChannelId"},
      {mp, "GET", P, unknown_id, 1, NULL, 400, "ChannelNotRegistered"},
      {mp, "GET", P, bad_req, 2, NULL, 400, "BadMessageId"},
      {mp, "GET", P, twice, 2, NULL, 400, "DuplicateHeaders"},
      {mp, "PUT", P, with_id, 1, NULL, 405, "MethodNotAllowed"},
      {mp, "POST", "/1/apps/" BUNDLE "/all-channels", NULL, 0, NULL, 405, "MethodNotAllowed"},
      {mp, "GET", "/1/apps/" BUNDLE "/nothing", NULL, 0, NULL, 404, "BadPath"},
      {mp, "POST", P, NULL, 0, NULL, 400, "BadRequestPayload"},
      {mp, "POST", P, NULL, 0, "{\"message-storage-policy\":", 400, "BadRequestPayload"},
      {mp, "POST", P, NULL, 0, "[1]", 400, "BadRequestPayload"},
      {mp, "POST", P, NULL, 0, "{\"message-storage-policy\":1,\"push-type\":\"LiveActivity\",\"x\":1}", 400,
       "BadRequestParams"},
      {mp, "POST", P, NULL, 0, "{\"message-storage-policy\":2,\"push-type\":\"LiveActivity\"}", 400,
       "BadRequestParams"},
      {mp, "POST", P, NULL, 0, "{\"message-storage-policy\":1}", 400, "MissingPushType"},
      {mp, "POST", P, NULL, 0, "{\"message-storage-policy\":1,\"push-type\":\"Alert\"}", 400, "InvalidPushType"},
      {mp, "GET", "/1/apps/com.example.disabled/all-channels", NULL, 0, NULL, 403, "TopicMismatch"},
      {mp, "GET", "/1/apps/" BUNDLE ".push-type.liveactivity/all-channels", NULL, 0, NULL, 400, "TopicDisallowed"},
      {pp, "POST", "/4/broadcasts/apps/" BUNDLE ".voip", bc_ok, 4, body, 400, "TopicDisallowed"},
      {pp, "POST", B, bc_no_type, 3, body, 400, "MissingPushType"},
      {pp, "POST", B, bc_bad_type, 4, body, 400, "InvalidPushType"},
      {pp, "POST", B, bc_no_prio, 3, body, 400, "BadPriority"},
      {pp, "POST", B, bc_no_exp, 3, body, 400, "BadExpirationDate"},
      {pp, "POST", B, bc_ok, 4, NULL, 400, "PayloadEmpty"},
      {pp, "POST", B, bc_ok, 4, big, 413, "PayloadTooLarge"},
      {pp, "GET", B, bc_ok, 4, NULL, 405, "MethodNotAllowed"},
      {pp, "POST", B, unknown_id, 1, body, 400, "ChannelNotRegistered"},
      {pp, "POST", B, bc_ok, 4, body, 200, NULL},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    fx_rec rec = {0};
    raw(&f, cases[i].pool, cases[i].method, cases[i].path, cases[i].h, cases[i].nh, cases[i].body, &rec);
    if (rec.status != cases[i].status ||
        (cases[i].reason && rec.reason != apns_reason_from_string(cases[i].reason, strlen(cases[i].reason))))
      test__fail(__FILE__, __LINE__, "case %zu (%s %s): %d %s, want %d %s", i, cases[i].method, cases[i].path,
                 rec.status, apns_reason_string(rec.reason), cases[i].status, cases[i].reason ? cases[i].reason : "");
    ASSERT_OK(rec.err);
  }
  teardown(&f);
}

TEST(channels_feature_not_enabled_and_limit) {
  fx f;
  setup_base(&f);
  f.mo.broadcast_disabled = BUNDLE;
  f.mo.max_channels = 3;
  start_mock(&f);
  open_both(&f, 0);
  crec c = {0};
  create(&f, APNS_CHANNEL_STORAGE_NONE, NULL, &c);
  ASSERT_OK(c.err);
  ASSERT_EQ(c.ok, 0);
  ASSERT_EQ(c.status, 400);
  ASSERT_EQ(c.reason, APNS_REASON_FeatureNotEnabled);
  ASSERT_STREQ(c.channel_id, "");
  ASSERT_EQ(strlen(c.request_id), 36);
  teardown(&f);

  setup_base(&f);
  f.mo.max_channels = 3;
  start_mock(&f);
  open_both(&f, 0);
  for (int i = 0; i < 3; i++) {
    crec k = {0};
    create(&f, APNS_CHANNEL_STORAGE_LATEST, NULL, &k);
    ASSERT_EQ(k.ok, 1);
    if (i == 0) c = k;
  }
  crec over = {0};
  create(&f, APNS_CHANNEL_STORAGE_LATEST, NULL, &over);
  ASSERT_EQ(over.ok, 0);
  ASSERT_EQ(over.reason, APNS_REASON_CannotCreateChannelConfig);
  /* A delete makes room again. */
  crec d = {0}, again = {0};
  ASSERT_OK(apns_channels_delete(f.ch, c.channel_id, NULL, on_chan, &d));
  wait_rec(&f, &d);
  ASSERT_EQ(d.ok, 1);
  create(&f, APNS_CHANNEL_STORAGE_LATEST, NULL, &again);
  ASSERT_EQ(again.ok, 1);
  ASSERT_NE(strcmp(again.channel_id, c.channel_id), 0);
  teardown(&f);
}

/* Apple's real limit, 10 000 channels, then the list of all of them (about 270 KB) parsed. */
TEST(channels_limit_10000) {
  fx f;
  enum { N = 10000 };
  setup_base(&f);
  start_mock(&f);
  f.mo.on_request = NULL;
  open_both(&f, 0);
  crec *recs = calloc(N + 1, sizeof *recs);
  ASSERT_NOT_NULL(recs);
  uint64_t t0 = uv_hrtime();
  for (int i = 0; i <= N; i++) {
    recs[i].counter = &f.done;
    ASSERT_OK(apns_channels_create(f.ch, APNS_CHANNEL_STORAGE_NONE, NULL, on_chan, &recs[i]));
  }
  fx_run_until_count(&f.loop, &f.done, N + 1);
  int ok = 0, refused = 0;
  for (int i = 0; i <= N; i++) {
    ASSERT_EQ(recs[i].calls, 1);
    ok += recs[i].ok;
    refused += recs[i].reason == APNS_REASON_CannotCreateChannelConfig;
  }
  ASSERT_EQ(ok, N);
  ASSERT_EQ(refused, 1);
  crec l = {0};
  ASSERT_OK(apns_channels_list(f.ch, NULL, on_chan, &l));
  wait_rec(&f, &l);
  ASSERT_OK(l.err);
  ASSERT_EQ(l.ok, 1);
  ASSERT_EQ(l.num_channels, N);
  /* Every id created is listed once, in creation order. */
  const char *p = l.ids;
  size_t listed = 0;
  for (int i = 0; i <= N; i++) {
    if (!recs[i].ok) continue;
    size_t n = strlen(recs[i].channel_id);
    ASSERT_EQ(strncmp(p, recs[i].channel_id, n), 0);
    ASSERT_EQ(p[n], '\n');
    p += n + 1;
    listed++;
  }
  ASSERT_EQ(listed, N);
  double secs = (double)(uv_hrtime() - t0) / 1e9;
  printf("10 000 creates and the list: %.2f s\n", secs);
  ASSERT_LT(secs, 30.0 * test_time_factor());
  free(l.ids);
  free(recs);
  teardown(&f);
}

/* Answers that do not parse are errors of their own; the callback still runs once. */
TEST(channels_malformed_answers) {
  fx f;
  setup_base(&f);
  start_mock(&f);
  open_both(&f, 0);
  crec c = {0}, r = {0}, l = {0};
  f.seen.force_status = 201; /* a 201 without apns-channel-id (the mock refused the create: no such body) */
  apns_channel_request_options ro = APNS_CHANNEL_REQUEST_OPTIONS_INIT;
  ro.bundle_id = "com.example.disabled"; /* TopicMismatch on this certificate, turned into a bare 201 */
  ASSERT_OK(apns_channels_create(f.ch, APNS_CHANNEL_STORAGE_NONE, &ro, on_chan, &c));
  wait_rec(&f, &c);
  ASSERT_ERR(c.err, APNS_EBADCHANNELID);
  ASSERT_EQ(c.ok, 0);
  ASSERT_EQ(c.status, 201);
  f.seen.force_status = 200; /* a 200 whose body is {"reason":...}: neither a configuration nor a list */
  ASSERT_OK(apns_channels_read(f.ch, "dHN0LXNyY2gtY2hubA==", NULL, on_chan, &r));
  wait_rec(&f, &r);
  ASSERT_ERR(r.err, APNS_EBADJSON);
  ASSERT_EQ(r.status, 200);
  ASSERT_STREQ(r.channel_id, "dHN0LXNyY2gtY2hubA==");
  ASSERT_OK(apns_channels_list(f.ch, &ro, on_chan, &l));
  wait_rec(&f, &l);
  ASSERT_ERR(l.err, APNS_EBADJSON);
  ASSERT_EQ(l.num_channels, 0);
  teardown(&f);
}

/* Arguments are checked before anything is queued; a close ends what is pending, once. */
TEST(channels_arguments_and_close) {
  fx f;
  setup_base(&f);
  f.mo.paused = 1;
  start_mock(&f);
  open_both(&f, 0);
  crec r = {0};
  apns_channel_request_options ro = APNS_CHANNEL_REQUEST_OPTIONS_INIT;
  ASSERT_ERR(apns_channels_read(f.ch, "a b", NULL, on_chan, &r), APNS_EBADCHANNELID);
  ASSERT_ERR(apns_channels_read(f.ch, NULL, NULL, on_chan, &r), APNS_EINVAL);
  ASSERT_ERR(apns_channels_delete(f.ch, "", NULL, on_chan, &r), APNS_EBADCHANNELID);
  ASSERT_ERR(apns_channels_create(f.ch, (apns_channel_storage)5, NULL, on_chan, &r), APNS_EINVAL);
  ASSERT_ERR(apns_channels_list(f.ch, NULL, NULL, &r), APNS_EINVAL);
  ro.request_id = "x";
  ASSERT_ERR(apns_channels_list(f.ch, &ro, on_chan, &r), APNS_EBADAPNSID);
  ro.request_id = NULL;
  ro.bundle_id = "bad bundle";
  ASSERT_ERR(apns_channels_list(f.ch, &ro, on_chan, &r), APNS_EBADTOPIC);
  apns_notification *n = la_update();
  fx_rec b = {0};
  ASSERT_ERR(apns_client_broadcast(f.client, "a=b", n, NULL, fx_record, &b), APNS_EBADCHANNELID);
  apns_broadcast_options bo = APNS_BROADCAST_OPTIONS_INIT;
  bo.priority = 3;
  ASSERT_ERR(apns_client_broadcast(f.client, "YWJj", n, &bo, fx_record, &b), APNS_EBADPRIORITY);
  static char big[APNS_PAYLOAD_MAX_BROADCAST + 2];
  memset(big, 'x', sizeof big - 1);
  ASSERT_OK(apns_notification_set_custom_string(n, "pad", big + 60));
  ASSERT_ERR(apns_client_broadcast(f.client, "YWJj", n, NULL, fx_record, &b), APNS_EPAYLOADTOOLARGE);
  ASSERT_ERR(apns_client_broadcast_json(f.client, "YWJj", "{\"aps\":", 7, NULL, fx_record, &b), APNS_EBADJSON);
  ASSERT_EQ(b.calls, 0);
  apns_notification_free(n);

  /* The mock holds its answers: close with requests on the wire and queued. */
  crec p1 = {0}, p2 = {0};
  ASSERT_OK(apns_channels_create(f.ch, APNS_CHANNEL_STORAGE_NONE, NULL, on_chan, &p1));
  ASSERT_OK(apns_channels_list(f.ch, NULL, on_chan, &p2));
  for (int i = 0; i < 50 && f.seen.count < 1; i++) uv_run(&f.loop, UV_RUN_ONCE);
  ASSERT_OK(apns_channels_close(f.ch, 0, on_channels_closed));
  ASSERT_ERR(apns_channels_close(f.ch, 0, on_channels_closed), APNS_EBUSY);
  ASSERT_ERR(apns_channels_list(f.ch, NULL, on_chan, &r), APNS_ECLOSED);
  fx_run_until(&f.loop, &f.closed);
  f.ch = NULL;
  f.closed = 0;
  ASSERT_EQ(p1.calls, 1);
  ASSERT_EQ(p2.calls, 1);
  ASSERT_ERR(p1.err, APNS_ECANCELED);
  ASSERT_ERR(p2.err, APNS_ECANCELED);
  ASSERT_EQ(r.calls, 0);
  apns_mock_set_paused(f.mock, 0);
  teardown(&f);
}

TEST(channels_open_errors) {
  uv_loop_t loop;
  apns_channels *ch = (apns_channels *)1;
  char err[256];
  ASSERT_EQ(uv_loop_init(&loop), 0);
  apns_channels_options o = APNS_CHANNELS_OPTIONS_INIT;
  ASSERT_ERR(apns_channels_open(&loop, &ch, &o, err, sizeof err), APNS_EINVAL);
  ASSERT_NULL(ch);
  ASSERT_TRUE(strstr(err, "client options") != NULL);
  apns_client_options co = APNS_CLIENT_OPTIONS_INIT;
  co.endpoint = APNS_ENDPOINT_CUSTOM;
  co.host = "127.0.0.1";
  co.token_key_pem = "x";
  o.client_options = &co;
  ASSERT_ERR(apns_channels_open(&loop, &ch, &o, err, sizeof err), APNS_EINVAL);
  ASSERT_TRUE(strstr(err, "management host") != NULL);
  o.host = "127.0.0.1";
  o.bundle_id = "com/example";
  ASSERT_ERR(apns_channels_open(&loop, &ch, &o, err, sizeof err), APNS_EBADTOPIC);
  o.bundle_id = BUNDLE;
  ASSERT_ERR(apns_channels_open(&loop, &ch, &o, err, sizeof err), APNS_EINVAL); /* key id and team id missing */
  co.key_id = KEY_ID;
  co.team_id = TEAM_ID;
  ASSERT_ERR(apns_channels_open(&loop, &ch, &o, err, sizeof err), APNS_EBADKEY);
  ASSERT_NULL(ch);
  ASSERT_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
  ASSERT_EQ(uv_loop_close(&loop), 0);
}

/* ---- the example command (examples/broadcast.c) against the mock ---- */

/* examples/broadcast with certificate auth against the mock, then the command's own arguments (up to 3). Its
 * stdout in r (freed first: r may hold a previous run's), its stderr on ours. */
static int run_broadcast(fx *f, fx_child *r, const char *a1, const char *a2, const char *a3) {
  char bin[512], hostport[64], cert[512], key[512], ca[512];
  ASSERT_TRUE(APNS_EXAMPLES_DIR[0] != '\0'); /* built with -Dexamples=true */
  snprintf(bin, sizeof bin, "%s/broadcast", APNS_EXAMPLES_DIR);
  snprintf(hostport, sizeof hostport, "127.0.0.1:%d", apns_mock_port(f->mock));
  snprintf(cert, sizeof cert, "%s/client.pem", test_tmpdir());
  snprintf(key, sizeof key, "%s/client-key.pem", test_tmpdir());
  snprintf(ca, sizeof ca, "%s/ca.pem", test_tmpdir());
  const char *const args[] = {bin,      "--cert",        cert,        "--key",  key,      "--ca",
                              ca,       "--bundle",      BUNDLE,      "--host", hostport, "--management-host",
                              hostport, "--verify-name", "localhost", a1,       a2,       a3,
                              NULL};
  fx_child_free(r);
  memset(r, 0, sizeof *r);
  r->stderr_fd = 2;
  fx_child_start(r, &f->loop, args);
  fx_child_wait(r, &f->loop);
  return (int)r->status;
}

/* Create a channel, broadcast to it, list, read and delete it, from the command line. */
TEST(channels_example_command) {
  fx f;
  fx_child r = {0};
  char err[256], id[64];
  setup_base(&f);
  ASSERT_OK(apns__certgen_write_dir(test_tmpdir(), &f.certs, err, sizeof err));
  start_mock(&f);
  ASSERT_EQ(run_broadcast(&f, &r, "create", "latest", NULL), 0);
  ASSERT_EQ(r.out.len, 25); /* an id and a newline */
  snprintf(id, sizeof id, "%.*s", 24, fx_child_out(&r));
  ASSERT_OK(apns_validate_channel_id(id));
  ASSERT_EQ(run_broadcast(&f, &r, "update", id, "{\"home\":1,\"away\":0}"), 0);
  ASSERT_EQ(strncmp(fx_child_out(&r), "broadcast, apns-request-id ", 27), 0);
  ASSERT_STREQ(f.seen.path, "/4/broadcasts/apps/" BUNDLE);
  ASSERT_TRUE(strstr(f.seen.body, "\"event\":\"update\",\"content-state\":{\"home\":1,\"away\":0}}}") != NULL);
  ASSERT_EQ(run_broadcast(&f, &r, "read", id, NULL), 0);
  ASSERT_STREQ(fx_child_out(&r), "storage=latest push-type=LiveActivity\n");
  ASSERT_EQ(run_broadcast(&f, &r, "list", NULL, NULL), 0);
  char line[64];
  snprintf(line, sizeof line, "%.30s\n", id);
  ASSERT_STREQ(fx_child_out(&r), line);
  ASSERT_EQ(run_broadcast(&f, &r, "delete", id, NULL), 0);
  ASSERT_EQ(run_broadcast(&f, &r, "end", id, "{\"home\":1,\"away\":0}"), 1); /* 400 ChannelNotRegistered */
  ASSERT_EQ(r.out.len, 0);
  ASSERT_EQ(run_broadcast(&f, &r, "read", "not base64", NULL), 2);
  chan_count cc = {0};
  apns_mock_foreach_channel(f.mock, count_channel, &cc);
  ASSERT_EQ(cc.n, 1);
  ASSERT_UEQ(cc.broadcasts, 1);
  ASSERT_EQ(cc.deleted, 1);
  fx_child_free(&r);
  teardown(&f);
}

/* The apns-mock command prints a line per channel with its counts when SIGTERM stops it. */
TEST(channels_mock_command_counts) {
  fx f;
  fx_child mp;
  char dir[512], bin[512], ca[600], cert[600], key[600];
  memset(&f, 0, sizeof f);
  memset(&mp, 0, sizeof mp);
  f.live_before = test_alloc_live();
  ASSERT_EQ(uv_loop_init(&f.loop), 0);
  snprintf(dir, sizeof dir, "%s/certs", test_tmpdir());
  const char *env = getenv("APNS_MOCK_BIN");
  snprintf(bin, sizeof bin, "%s", env && *env ? env : APNS_MOCK_BIN_DEFAULT);
  const char *const argv[] = {bin, "--listen", "127.0.0.1:0", "--self-signed", dir, "--max-channels", "5", NULL};
  fx_child_start(&mp, &f.loop, argv);
  while (strchr(fx_child_out(&mp), '\n') == NULL) ASSERT_NE(uv_run(&f.loop, UV_RUN_ONCE), 0);
  int port = atoi(fx_child_out(&mp));
  ASSERT_GT(port, 0);

  snprintf(ca, sizeof ca, "%s/ca.pem", dir);
  snprintf(cert, sizeof cert, "%s/client.pem", dir);
  snprintf(key, sizeof key, "%s/client-key.pem", dir);
  apns_client_options *o = &f.co;
  apns_client_options_init(o);
  apns_tls_options_init(&f.tls);
  o->tls = &f.tls;
  o->endpoint = APNS_ENDPOINT_CUSTOM;
  o->host = "127.0.0.1";
  o->port = (uint16_t)port;
  f.tls.ca_file = ca;
  f.tls.cert_file = cert;
  f.tls.key_file = key;
  f.tls.verify_name = "localhost";
  o->topic = BUNDLE;
  o->data = &f;
  o->timeout_ms = 10000 * (uint64_t)test_time_factor();
  char err[256] = "";
  ASSERT_OK(apns_client_open(&f.loop, &f.client, o, err, sizeof err));
  apns_channels_options cho = APNS_CHANNELS_OPTIONS_INIT;
  cho.client_options = o;
  cho.host = "127.0.0.1";
  cho.port = (uint16_t)port;
  cho.data = &f;
  ASSERT_OK(apns_channels_open(&f.loop, &f.ch, &cho, err, sizeof err));
  crec c1 = {0}, c2 = {0};
  create(&f, APNS_CHANNEL_STORAGE_NONE, NULL, &c1);
  create(&f, APNS_CHANNEL_STORAGE_LATEST, NULL, &c2);
  ASSERT_EQ(c1.ok + c2.ok, 2);
  apns_notification *n = la_update();
  apns_broadcast_options bo = APNS_BROADCAST_OPTIONS_INIT;
  for (int i = 0; i < 3; i++) {
    fx_rec b = {0};
    broadcast_wait(&f, c1.channel_id, n, &bo, &b);
    ASSERT_EQ(b.status, 200);
  }
  bo.expiration = 1900000000; /* refused on a no-storage channel, fine on the other */
  fx_rec r1 = {0}, r2 = {0};
  broadcast_wait(&f, c1.channel_id, n, &bo, &r1);
  ASSERT_EQ(r1.reason, APNS_REASON_BadExpirationDate);
  broadcast_wait(&f, c2.channel_id, n, &bo, &r2);
  ASSERT_EQ(r2.status, 200);
  apns_notification_free(n);
  ASSERT_OK(apns_client_close(f.client, 0, on_client_closed));
  ASSERT_OK(apns_channels_close(f.ch, 0, on_channels_closed));
  fx_run_until_count(&f.loop, &f.closed, 2);

  ASSERT_EQ(uv_process_kill(&mp.proc, SIGTERM), 0);
  ASSERT_EQ(uv_run(&f.loop, UV_RUN_DEFAULT), 0);
  ASSERT_TRUE(mp.exited);
  ASSERT_EQ(mp.status, 0);
  ASSERT_TRUE(mp.done);
  char want[256];
  snprintf(want, sizeof want, "apns-mock: channel %.30s bundle=" BUNDLE " storage=0 broadcasts=3 rejected=1\n",
           c1.channel_id);
  ASSERT_TRUE(strstr(fx_child_err(&mp), want) != NULL);
  snprintf(want, sizeof want, "apns-mock: channel %.30s bundle=" BUNDLE " storage=1 broadcasts=1 rejected=0\n",
           c2.channel_id);
  ASSERT_TRUE(strstr(fx_child_err(&mp), want) != NULL);
  ASSERT_TRUE(strstr(fx_child_err(&mp), " 201=2 ") != NULL);
  fx_child_free(&mp);
  ASSERT_EQ(uv_loop_close(&f.loop), 0);
  ASSERT_EQ(test_alloc_live(), f.live_before);
}

/* Split as Apple does: management on its own listener, broadcasts and pushes on the main one, one store. */
TEST(channels_split_listeners) {
  fx f;
  setup_base(&f);
  f.mo.split_management = 1;
  start_mock(&f);
  int mport = apns_mock_manage_port(f.mock);
  ASSERT_GT(mport, 0);
  ASSERT_NE(mport, apns_mock_port(f.mock));
  char err[256] = "";
  apns_client_options *o = &f.co;
  apns_client_options_init(o);
  o->endpoint = APNS_ENDPOINT_CUSTOM;
  o->host = "127.0.0.1";
  o->port = (uint16_t)apns_mock_port(f.mock);
  o->tls = fx_tls_client(&f.tls, &f.certs);
  o->topic = BUNDLE;
  o->data = &f;
  o->timeout_ms = 10000 * (uint64_t)test_time_factor();
  ASSERT_OK(apns_client_open(&f.loop, &f.client, o, err, sizeof err));
  apns_channels_options cho = APNS_CHANNELS_OPTIONS_INIT;
  cho.client_options = o;
  cho.host = "127.0.0.1";
  cho.port = (uint16_t)mport;
  cho.data = &f;
  ASSERT_OK(apns_channels_open(&f.loop, &f.ch, &cho, err, sizeof err));
  crec c = {0};
  create(&f, APNS_CHANNEL_STORAGE_NONE, NULL, &c);
  ASSERT_EQ(c.ok, 1);
  apns_notification *n = la_update();
  fx_rec b = {0};
  broadcast_wait(&f, c.channel_id, n, NULL, &b);
  ASSERT_EQ(b.status, 200);
  apns_notification_free(n);
  /* Each listener refuses the other's paths. */
  fx_rec wrong1 = {0}, wrong2 = {0}, wrong3 = {0};
  raw(&f, apns_client_pool(f.client), "GET", "/1/apps/" BUNDLE "/all-channels", NULL, 0, NULL, &wrong1);
  ASSERT_EQ(wrong1.status, 404);
  ASSERT_EQ(wrong1.reason, APNS_REASON_BadPath);
  const apns_header bh[] = {{"apns-channel-id", c.channel_id},
                            {"apns-push-type", "liveactivity"},
                            {"apns-priority", "10"},
                            {"apns-expiration", "0"}};
  apns_pool *mp = apns_client_pool(apns_channels_client(f.ch));
  raw(&f, mp, "POST", "/4/broadcasts/apps/" BUNDLE, bh, 4, "{\"aps\":{}}", &wrong2);
  ASSERT_EQ(wrong2.reason, APNS_REASON_BadPath);
  const apns_header ph[] = {{"apns-push-type", "alert"}, {"apns-topic", BUNDLE}};
  raw(&f, mp, "POST", "/3/device/" TOKEN, ph, 2, "{\"aps\":{\"alert\":\"x\"}}", &wrong3);
  ASSERT_EQ(wrong3.reason, APNS_REASON_BadPath);
  teardown(&f);
}

/* Allocation failures: in apns_channels_open (every budget until it succeeds, nothing leaks), then on a connected
 * channels object, in the requests, their answers and the parsing of those (every budget up to a whole run's
 * allocations): every accepted request ends once, nothing leaks, and an answer that arrived but could not be
 * parsed for memory is APNS_ENOMEM, not APNS_EBADJSON. The mock runs in a child process, out of the starvation. */
TEST(channels_allocation_failures) {
  apns__certgen_result certs;
  apns_mock_options mo;
  pid_t pid;
  fx_certs(&certs, 0);
  fx_mock_options(&mo, &certs, 0);
  int port = fx_mock_fork(&mo, &pid);
  long base = test_alloc_live();
  apns_client_options co = APNS_CLIENT_OPTIONS_INIT;
  apns_tls_options co_tls = APNS_TLS_OPTIONS_INIT;
  co.endpoint = APNS_ENDPOINT_CUSTOM;
  co.host = "127.0.0.1";
  co.tls = fx_tls_client(&co_tls, &certs);
  co.topic = BUNDLE;
  fx f;
  memset(&f, 0, sizeof f);
  apns_channels_options cho = APNS_CHANNELS_OPTIONS_INIT;
  cho.client_options = &co;
  cho.host = "127.0.0.1";
  cho.port = (uint16_t)port;
  cho.data = &f;

  for (long budget = 0;; budget++) {
    uv_loop_t loop;
    apns_channels *ch = NULL;
    ASSERT_EQ(uv_loop_init(&loop), 0);
    test_alloc_fail_after(budget);
    int rv = apns_channels_open(&loop, &ch, &cho, NULL, 0);
    test_alloc_reset();
    if (rv == 0) {
      f.closed = 0;
      ASSERT_OK(apns_channels_close(ch, 0, on_channels_closed));
    } else {
      ASSERT_ERR(rv, APNS_ENOMEM);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_EQ(uv_loop_close(&loop), 0);
    ASSERT_EQ(test_alloc_live(), base);
    if (rv == 0) break;
    ASSERT_LT(budget, 1000);
  }

  int full_runs = 0, parse_oom = 0;
  long total = 0;
  /* budget -1: no limit, which measures a whole run; then every budget up to that. */
  for (long budget = -1; budget < total; budget++) {
    uv_loop_t loop;
    apns_channels *ch = NULL;
    crec warm = {0}, recs[3];
    int done = 0, accepted = 0;
    memset(recs, 0, sizeof recs);
    ASSERT_EQ(uv_loop_init(&loop), 0);
    cho.timeout_ms = 10000 * (uint64_t)test_time_factor();
    ASSERT_OK(apns_channels_open(&loop, &ch, &cho, NULL, 0));
    ASSERT_OK(apns_channels_list(ch, NULL, on_chan, &warm)); /* connected before the starvation starts */
    fx_run_until(&loop, &warm.calls);
    ASSERT_EQ(warm.ok, 1);
    free(warm.ids);
    apns_channel_request_options ro = APNS_CHANNEL_REQUEST_OPTIONS_INIT;
    /* A starved request may end only at its deadline: short, so that the sweep stays short, yet long enough for
     * an answer on the connected connection. */
    ro.timeout_ms = budget < 0 ? 10000 * (uint64_t)test_time_factor() : test_time_factor() > 1 ? 300 : 100;
    test_alloc_fail_after(budget < 0 ? 1L << 40 : budget);
    for (int i = 0; i < 3; i++) {
      recs[i].counter = &done;
      int rv = i == 0   ? apns_channels_create(ch, APNS_CHANNEL_STORAGE_LATEST, &ro, on_chan, &recs[i])
               : i == 1 ? apns_channels_list(ch, &ro, on_chan, &recs[i])
                        : apns_channels_read(ch, "dHN0LXNyY2gtY2hubA==", &ro, on_chan, &recs[i]);
      if (rv == 0)
        accepted++;
      else
        ASSERT_ERR(rv, APNS_ENOMEM);
    }
    fx_run_until_count(&loop, &done, accepted);
    long attempted = test_alloc_count();
    test_alloc_reset();
    f.closed = 0;
    ASSERT_OK(apns_channels_close(ch, 0, on_channels_closed));
    fx_run_until(&loop, &f.closed);
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_EQ(uv_loop_close(&loop), 0);
    int ok = 0;
    for (int i = 0; i < 3; i++) {
      ASSERT_TRUE(recs[i].calls <= 1);
      ok += recs[i].calls == 1 && recs[i].err == 0 &&
            (recs[i].ok || recs[i].reason == APNS_REASON_ChannelNotRegistered);
      parse_oom += recs[i].calls == 1 && recs[i].err == APNS_ENOMEM && recs[i].status != 0;
      free(recs[i].ids);
    }
    ASSERT_EQ(test_alloc_live(), base);
    if (ok == 3) full_runs++;
    if (budget < 0) {
      ASSERT_EQ(ok, 3); /* without a limit, everything goes through */
      total = attempted;
      ASSERT_GT(total, 5);
    }
  }
  ASSERT_GE(full_runs, 1);
  ASSERT_GT(parse_oom, 0);
  fx_mock_kill(pid);
  apns__certgen_free(&certs);
}

TEST_SUITE(channels){
    TEST_ENTRY(channels_validate),
    TEST_ENTRY(channels_build_requests),
    TEST_ENTRY(broadcast_build_request),
    TEST_ENTRY(channels_live_activity_payloads),
    TEST_ENTRY(channels_lifecycle_certificate),
    TEST_ENTRY(channels_lifecycle_token),
    TEST_ENTRY(channels_push_to_start_and_storage_none),
    TEST_ENTRY(channels_error_reasons),
    TEST_ENTRY(channels_feature_not_enabled_and_limit),
    TEST_ENTRY(channels_limit_10000),
    TEST_ENTRY(channels_malformed_answers),
    TEST_ENTRY(channels_arguments_and_close),
    TEST_ENTRY(channels_open_errors),
    TEST_ENTRY(channels_example_command),
    TEST_ENTRY(channels_mock_command_counts),
    TEST_ENTRY(channels_split_listeners),
    TEST_ENTRY(channels_allocation_failures),
    TEST_SUITE_END,
};
