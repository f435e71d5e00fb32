/* apns-mock: the sans-I/O connection against a real nghttp2 client in memory, the in-process server on a loop
 * (plain and TLS), and the command (spawned, driven with curl and h2load). */
#include "fixture.h"
#include "harness.h"

#include "alloc.h"
#include "certgen.h"
#include "jwt_verify.h"
#include "mbedtls_compat.h"
#include "mock.h"
#include "mock_server.h"
#include "tls.h"

#include <apns.h>
#include <jansson.h>
#include <mbedtls/pem.h>
#include <mbedtls/pk.h>
#include <mbedtls/version.h>
#include <nghttp2/nghttp2.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

/* ==== an nghttp2 client that records what it sees ==== */

#define MAXS 64

typedef struct {
  int status;
  char apns_id[64];
  char body[512];
  size_t body_len;
  int closed;
  uint32_t error_code;
} rec;

typedef struct {
  const uint8_t *data;
  size_t len, off;
} body_src;

typedef struct {
  nghttp2_session *h2;
  rec r[MAXS];
  body_src src[MAXS];
  int nsub;
  uint32_t mcs[8]; /* MAX_CONCURRENT_STREAMS of each SETTINGS, in order */
  int nmcs;
  int goaway;
  int32_t goaway_last;
  uint32_t goaway_code;
  char goaway_data[256];
  int closed;
} client;

static rec *rec_of(client *cl, int32_t id) {
  ASSERT_TRUE(id > 0 && id % 2 == 1 && (id - 1) / 2 < MAXS);
  return &cl->r[(id - 1) / 2];
}

static int c_header(nghttp2_session *h2, const nghttp2_frame *frame, const uint8_t *name, size_t namelen,
                    const uint8_t *value, size_t valuelen, uint8_t flags, void *ud) {
  (void)h2, (void)flags;
  client *cl = ud;
  rec *r = rec_of(cl, frame->hd.stream_id);
  if (namelen == 7 && memcmp(name, ":status", 7) == 0) r->status = atoi((const char *)value);
  if (namelen == 7 && memcmp(name, "apns-id", 7) == 0 && valuelen < sizeof r->apns_id) {
    memcpy(r->apns_id, value, valuelen);
    r->apns_id[valuelen] = '\0';
  }
  return 0;
}

static int c_data(nghttp2_session *h2, uint8_t flags, int32_t id, const uint8_t *data, size_t len, void *ud) {
  (void)h2, (void)flags;
  rec *r = rec_of(ud, id);
  ASSERT_LT(r->body_len + len, sizeof r->body);
  memcpy(r->body + r->body_len, data, len);
  r->body_len += len;
  r->body[r->body_len] = '\0';
  return 0;
}

static int c_frame(nghttp2_session *h2, const nghttp2_frame *frame, void *ud) {
  (void)h2;
  client *cl = ud;
  if (frame->hd.type == NGHTTP2_SETTINGS && !(frame->hd.flags & NGHTTP2_FLAG_ACK)) {
    for (size_t i = 0; i < frame->settings.niv; i++)
      if (frame->settings.iv[i].settings_id == NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS && cl->nmcs < 8)
        cl->mcs[cl->nmcs++] = frame->settings.iv[i].value;
  } else if (frame->hd.type == NGHTTP2_GOAWAY) {
    cl->goaway++;
    cl->goaway_last = frame->goaway.last_stream_id;
    cl->goaway_code = frame->goaway.error_code;
    size_t n = frame->goaway.opaque_data_len < 255 ? frame->goaway.opaque_data_len : 255;
    memcpy(cl->goaway_data, frame->goaway.opaque_data, n);
    cl->goaway_data[n] = '\0';
  }
  return 0;
}

static int c_close(nghttp2_session *h2, int32_t id, uint32_t code, void *ud) {
  (void)h2;
  client *cl = ud;
  rec *r = rec_of(cl, id);
  r->closed = 1;
  r->error_code = code;
  cl->closed++;
  return 0;
}

static void client_init(client *cl) {
  nghttp2_session_callbacks *cbs;
  memset(cl, 0, sizeof *cl);
  ASSERT_EQ(nghttp2_session_callbacks_new(&cbs), 0);
  nghttp2_session_callbacks_set_on_header_callback(cbs, c_header);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, c_data);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, c_frame);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, c_close);
  ASSERT_EQ(nghttp2_session_client_new(&cl->h2, cbs, cl), 0);
  nghttp2_session_callbacks_del(cbs);
  ASSERT_EQ(nghttp2_submit_settings(cl->h2, NGHTTP2_FLAG_NONE, NULL, 0), 0);
}

static void client_free(client *cl) {
  nghttp2_session_del(cl->h2);
}

static ssize_t c_read_body(nghttp2_session *h2, int32_t id, uint8_t *buf, size_t length, uint32_t *flags,
                           nghttp2_data_source *source, void *ud) {
  (void)h2, (void)id, (void)ud;
  body_src *b = source->ptr;
  size_t n = b->len - b->off < length ? b->len - b->off : length;
  memcpy(buf, b->data + b->off, n);
  b->off += n;
  if (b->off == b->len) *flags |= NGHTTP2_DATA_FLAG_EOF;
  return (ssize_t)n;
}

#define NV(n, v)                                                                                                     \
  { (uint8_t *)(n), (uint8_t *)(v), strlen(n), strlen(v), NGHTTP2_NV_FLAG_NONE }

/* Submits a request; apns_id, push_type may be NULL. Returns the stream id. */
static int32_t client_req(client *cl, const char *method, const char *path, const char *apns_id,
                          const char *push_type, const char *body, size_t body_len) {
  /* The topic a push type needs: "com.example.app" plus its suffix (".voip", ...). */
  static char topic[64];
  apns_push_type type = APNS_PUSH_TYPE_ALERT;
  if (push_type) apns_push_type_from_string(push_type, &type);
  snprintf(topic, sizeof topic, "com.example.app%s", apns_push_type_topic_suffix(type));
  nghttp2_nv nva[8] = {NV(":method", method), NV(":scheme", "https"), NV(":authority", "localhost"),
                       NV(":path", path), NV("apns-topic", topic)};
  size_t n = 5;
  if (apns_id) nva[n++] = (nghttp2_nv)NV("apns-id", apns_id);
  if (push_type) nva[n++] = (nghttp2_nv)NV("apns-push-type", push_type);
  ASSERT_LT(cl->nsub, MAXS);
  body_src *b = &cl->src[cl->nsub++];
  b->data = (const uint8_t *)body;
  b->len = body_len;
  nghttp2_data_provider prd = {.source.ptr = b, .read_callback = c_read_body};
  int32_t id = nghttp2_submit_request(cl->h2, NULL, nva, n, body_len ? &prd : NULL, NULL);
  ASSERT_GT(id, 0);
  return id;
}

static int32_t client_post(client *cl, const char *path, const char *apns_id) {
  return client_req(cl, "POST", path, apns_id, NULL, "{\"aps\":{}}", 10);
}

/* Moves bytes both ways until neither side has anything more to say. */
static void pump(client *cl, apns__mock_conn *mc, uint64_t now) {
  for (int round = 0; round < 1000; round++) {
    size_t moved = 0;
    const uint8_t *p;
    ssize_t n;
    while ((n = nghttp2_session_mem_send(cl->h2, &p)) > 0) {
      ASSERT_OK(apns__mock_conn_feed(mc, p, (size_t)n, now));
      moved += (size_t)n;
    }
    ASSERT_GE(n, 0);
    uint8_t *out;
    size_t len;
    ASSERT_OK(apns__mock_conn_flush(mc, now, &out, &len));
    if (len > 0) ASSERT_EQ(nghttp2_session_mem_recv(cl->h2, out, len), (ssize_t)len);
    apns__free(out);
    moved += len;
    if (moved == 0) return;
  }
  ASSERT_TRUE(!"pump did not settle");
}

typedef struct {
  apns_mock_options o;
  apns_mock_stats st;
  apns__jwt_verifier *jwt; /* token keys, when a test adds some */
  apns__mock_conn *mc;
  client cl;
} rig;

static void rig_start(rig *g) {
  memset(&g->st, 0, sizeof g->st);
  ASSERT_OK(apns__mock_conn_new(&g->mc, &g->o, NULL, g->jwt, &g->st, 42));
  client_init(&g->cl);
}

static void rig_end(rig *g) {
  client_free(&g->cl);
  apns__mock_conn_free(g->mc);
  apns__jwt_verifier_free(g->jwt);
}

/* The reason (and timestamp) of a JSON error body. */
static void body_reason(const rec *r, const char *want, int64_t *timestamp) {
  json_error_t jerr;
  json_t *j = json_loadb(r->body, r->body_len, 0, &jerr);
  ASSERT_NOT_NULL(j);
  ASSERT_STREQ(json_string_value(json_object_get(j, "reason")), want);
  json_t *ts = json_object_get(j, "timestamp");
  if (timestamp)
    *timestamp = json_is_integer(ts) ? (int64_t)json_integer_value(ts) : -1;
  else
    ASSERT_NULL(ts);
  json_decref(j);
}

static int64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void assert_uuid_v4(const char *s) {
  ASSERT_EQ(strlen(s), 36);
  ASSERT_TRUE(apns__mock_uuid_valid(s, 36));
  for (const char *p = s; *p; p++) ASSERT_TRUE(*p == '-' || (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'));
  ASSERT_EQ(s[14], '4');
  ASSERT_TRUE(strchr("89ab", s[19]) != NULL);
}

/* ==== sans-I/O ==== */

TEST(mock_uuid) {
  uint64_t st = 7;
  char a[37], b[37];
  apns__mock_uuid(&st, a);
  apns__mock_uuid(&st, b);
  assert_uuid_v4(a);
  assert_uuid_v4(b);
  ASSERT_NE(strcmp(a, b), 0);
  ASSERT_TRUE(apns__mock_uuid_valid("8E3A0D8C-5A7E-4B8B-9F10-1C2D3E4F5A6B", 36));
  ASSERT_TRUE(!apns__mock_uuid_valid("8e3a0d8c-5a7e-4b8b-9f10-1c2d3e4f5a6", 35));
  ASSERT_TRUE(!apns__mock_uuid_valid("8e3a0d8c05a7e-4b8b-9f10-1c2d3e4f5a6b", 36));
  ASSERT_TRUE(!apns__mock_uuid_valid("8e3a0d8c-5a7e-4b8b-9f10-1c2d3e4f5a6g", 36));
}

TEST(mock_conn_echo_200) {
  rig g = {0};
  apns_mock_options_init(&g.o);
  rig_start(&g);
  const char *id = "8e3a0d8c-5a7e-4b8b-9f10-1c2d3e4f5a6b";
  int32_t s = client_post(&g.cl, "/3/device/abcd", id);
  pump(&g.cl, g.mc, 0);
  rec *r = rec_of(&g.cl, s);
  ASSERT_TRUE(r->closed);
  ASSERT_EQ(r->error_code, 0);
  ASSERT_EQ(r->status, 200);
  ASSERT_STREQ(r->apns_id, id);
  ASSERT_EQ(r->body_len, 0);
  ASSERT_EQ(g.st.requests, 1);
  ASSERT_EQ(g.st.responses, 1);
  ASSERT_EQ(g.st.status[200], 1);
  /* The first SETTINGS says 1000 streams and nothing changes after the first answer. */
  ASSERT_EQ(g.cl.nmcs, 1);
  ASSERT_EQ(g.cl.mcs[0], 1000);
  ASSERT_TRUE(!apns__mock_conn_want_close(g.mc));
  rig_end(&g);
}

TEST(mock_conn_generated_id) {
  rig g = {0};
  apns_mock_options_init(&g.o);
  rig_start(&g);
  int32_t a = client_post(&g.cl, "/3/device/abcd", NULL);
  int32_t b = client_post(&g.cl, "/3/device/abcd", NULL);
  pump(&g.cl, g.mc, 0);
  ASSERT_EQ(rec_of(&g.cl, a)->status, 200);
  ASSERT_EQ(rec_of(&g.cl, b)->status, 200);
  assert_uuid_v4(rec_of(&g.cl, a)->apns_id);
  assert_uuid_v4(rec_of(&g.cl, b)->apns_id);
  ASSERT_NE(strcmp(rec_of(&g.cl, a)->apns_id, rec_of(&g.cl, b)->apns_id), 0);
  rig_end(&g);
}

TEST(mock_conn_prefixes) {
  rig g = {0};
  apns_mock_options_init(&g.o);
  g.o.bad_prefix = "dead";
  g.o.unregistered_prefix = "beef";
  rig_start(&g);
  int32_t bad = client_post(&g.cl, "/3/device/deadbeef", NULL);
  int32_t unreg = client_post(&g.cl, "/3/device/beefdead", NULL);
  int32_t ok = client_post(&g.cl, "/3/device/0dead0", NULL);
  int64_t before = wall_ms();
  pump(&g.cl, g.mc, 0);
  int64_t after = wall_ms(), ts = 0;
  ASSERT_EQ(rec_of(&g.cl, bad)->status, 400);
  body_reason(rec_of(&g.cl, bad), "BadDeviceToken", NULL);
  assert_uuid_v4(rec_of(&g.cl, bad)->apns_id);
  ASSERT_EQ(rec_of(&g.cl, unreg)->status, 410);
  body_reason(rec_of(&g.cl, unreg), "Unregistered", &ts);
  ASSERT_GE(ts, before);
  ASSERT_LE(ts, after);
  ASSERT_EQ(rec_of(&g.cl, ok)->status, 200);
  ASSERT_EQ(g.st.status[400], 1);
  ASSERT_EQ(g.st.status[410], 1);
  ASSERT_EQ(g.st.status[200], 1);
  rig_end(&g);
}

TEST(mock_conn_reasons) {
  rig g = {0};
  static char big[5200];
  memset(big, 'x', sizeof big);
  apns_mock_options_init(&g.o);
  rig_start(&g);
  int32_t get = client_req(&g.cl, "GET", "/3/device/abcd", NULL, NULL, NULL, 0);
  int32_t path = client_post(&g.cl, "/4/device/abcd", NULL);
  int32_t root = client_req(&g.cl, "GET", "/", NULL, NULL, NULL, 0);
  int32_t missing = client_post(&g.cl, "/3/device/", NULL);
  int32_t nothex = client_post(&g.cl, "/3/device/xyz", NULL);
  int32_t odd = client_post(&g.cl, "/3/device/abcde", NULL); /* hex, but an odd number of digits */
  int32_t badid = client_post(&g.cl, "/3/device/abcd", "not-a-uuid");
  int32_t empty = client_req(&g.cl, "POST", "/3/device/abcd", NULL, NULL, NULL, 0);
  int32_t large = client_req(&g.cl, "POST", "/3/device/abcd", NULL, NULL, big, 4097);
  int32_t voip = client_req(&g.cl, "POST", "/3/device/abcd", NULL, "voip", big, 5120);
  int32_t voipbig = client_req(&g.cl, "POST", "/3/device/abcd", NULL, "voip", big, 5121);
  pump(&g.cl, g.mc, 0);
  struct {
    int32_t id;
    int status;
    const char *reason;
  } want[] = {{get, 405, "MethodNotAllowed"},       {path, 404, "BadPath"},          {root, 404, "BadPath"},
              {missing, 400, "MissingDeviceToken"}, {nothex, 400, "BadDeviceToken"}, {badid, 400, "BadMessageId"},
              {empty, 400, "PayloadEmpty"},         {large, 413, "PayloadTooLarge"}, {voip, 200, NULL},
              {voipbig, 413, "PayloadTooLarge"},    {odd, 400, "BadDeviceToken"}};
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    rec *r = rec_of(&g.cl, want[i].id);
    ASSERT_EQ(r->status, want[i].status);
    assert_uuid_v4(r->apns_id);
    if (want[i].reason)
      body_reason(r, want[i].reason, NULL);
    else
      ASSERT_EQ(r->body_len, 0);
  }
  ASSERT_EQ(g.st.requests, 11);
  ASSERT_EQ(g.st.responses, 11);
  rig_end(&g);
}

TEST(mock_conn_streams_raise) {
  rig g = {0};
  apns_mock_options_init(&g.o);
  g.o.max_streams = 1;
  g.o.streams_after = 1000;
  rig_start(&g);
  pump(&g.cl, g.mc, 0);
  ASSERT_EQ(nghttp2_session_get_remote_settings(g.cl.h2, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS), 1);
  /* The client holds the second request back until the limit allows it. */
  int32_t a = client_post(&g.cl, "/3/device/abcd", NULL);
  int32_t b = client_post(&g.cl, "/3/device/abcd", NULL);
  pump(&g.cl, g.mc, 0);
  ASSERT_EQ(rec_of(&g.cl, a)->status, 200);
  ASSERT_EQ(rec_of(&g.cl, b)->status, 200);
  ASSERT_EQ(g.cl.nmcs, 2);
  ASSERT_EQ(g.cl.mcs[0], 1);
  ASSERT_EQ(g.cl.mcs[1], 1000);
  ASSERT_EQ(nghttp2_session_get_remote_settings(g.cl.h2, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS), 1000);
  rig_end(&g);
}

TEST(mock_conn_goaway_after) {
  rig g = {0};
  apns_mock_options_init(&g.o);
  g.o.goaway_after = 2;
  g.o.goaway_reason = "Bye \"now\"";
  rig_start(&g);
  int32_t ids[4];
  for (int i = 0; i < 4; i++) ids[i] = client_post(&g.cl, "/3/device/abcd", NULL);
  pump(&g.cl, g.mc, 0);
  ASSERT_EQ(g.cl.goaway, 1);
  ASSERT_EQ(g.cl.goaway_last, ids[1]);
  ASSERT_EQ(g.cl.goaway_code, NGHTTP2_NO_ERROR);
  json_error_t jerr;
  json_t *j = json_loads(g.cl.goaway_data, 0, &jerr);
  ASSERT_NOT_NULL(j);
  ASSERT_STREQ(json_string_value(json_object_get(j, "reason")), "Bye \"now\"");
  json_decref(j);
  ASSERT_EQ(rec_of(&g.cl, ids[0])->status, 200);
  ASSERT_EQ(rec_of(&g.cl, ids[1])->status, 200);
  for (int i = 2; i < 4; i++) {
    ASSERT_EQ(rec_of(&g.cl, ids[i])->status, 0);
    ASSERT_TRUE(rec_of(&g.cl, ids[i])->closed);
    ASSERT_EQ(rec_of(&g.cl, ids[i])->error_code, NGHTTP2_REFUSED_STREAM);
  }
  ASSERT_EQ(g.st.goaways, 1);
  ASSERT_EQ(g.st.responses, 2);
  ASSERT_TRUE(apns__mock_conn_want_close(g.mc));
  ASSERT_TRUE(!apns__mock_conn_dropped(g.mc));
  rig_end(&g);
}

TEST(mock_conn_drop_after) {
  rig g = {0};
  apns_mock_options_init(&g.o);
  g.o.drop_after = 2;
  rig_start(&g);
  int32_t ids[3];
  for (int i = 0; i < 3; i++) ids[i] = client_post(&g.cl, "/3/device/abcd", NULL);
  pump(&g.cl, g.mc, 0);
  ASSERT_EQ(rec_of(&g.cl, ids[0])->status, 200);
  ASSERT_EQ(rec_of(&g.cl, ids[1])->status, 200);
  ASSERT_EQ(rec_of(&g.cl, ids[2])->status, 0);
  ASSERT_TRUE(!rec_of(&g.cl, ids[2])->closed);
  ASSERT_EQ(g.cl.goaway, 0);
  ASSERT_TRUE(apns__mock_conn_want_close(g.mc));
  ASSERT_TRUE(apns__mock_conn_dropped(g.mc));
  ASSERT_EQ(g.st.requests, 3);
  ASSERT_EQ(g.st.responses, 2);
  rig_end(&g);
}

TEST(mock_conn_delay_and_pause) {
  rig g = {0};
  apns_mock_options_init(&g.o);
  g.o.delay_ms = 50;
  rig_start(&g);
  ASSERT_UEQ(apns__mock_conn_next_due(g.mc), APNS__MOCK_NEVER);
  int32_t a = client_post(&g.cl, "/3/device/abcd", NULL);
  pump(&g.cl, g.mc, 1000);
  int32_t b = client_post(&g.cl, "/3/device/abcd", NULL);
  pump(&g.cl, g.mc, 1010);
  ASSERT_EQ(g.st.requests, 2);
  ASSERT_EQ(rec_of(&g.cl, a)->status, 0);
  ASSERT_UEQ(apns__mock_conn_next_due(g.mc), 1050);
  pump(&g.cl, g.mc, 1049);
  ASSERT_EQ(rec_of(&g.cl, a)->status, 0);
  pump(&g.cl, g.mc, 1050);
  ASSERT_EQ(rec_of(&g.cl, a)->status, 200);
  ASSERT_EQ(rec_of(&g.cl, b)->status, 0);
  ASSERT_UEQ(apns__mock_conn_next_due(g.mc), 1060);
  /* Paused: nothing is due, not even what is late. */
  apns__mock_conn_set_paused(g.mc, 1);
  ASSERT_UEQ(apns__mock_conn_next_due(g.mc), APNS__MOCK_NEVER);
  pump(&g.cl, g.mc, 5000);
  ASSERT_EQ(rec_of(&g.cl, b)->status, 0);
  apns__mock_conn_set_paused(g.mc, 0);
  pump(&g.cl, g.mc, 5000);
  ASSERT_EQ(rec_of(&g.cl, b)->status, 200);
  ASSERT_UEQ(apns__mock_conn_next_due(g.mc), APNS__MOCK_NEVER);
  rig_end(&g);
}

/* Holds of two lengths at once (chaos holds 10 ms, the rest wait delay_ms 100): each answer goes out at its own due
 * time, a short hold overtaking longer ones held before it, and the long ones keep their arrival order. */
TEST(mock_conn_holds_of_two_lengths_each_at_its_due) {
  enum { N = 40 };
  rig g = {0};
  char err[160];
  apns_mock_options_init(&g.o);
  g.o.delay_ms = 100;
  ASSERT_EQ(apns_mock_chaos_parse(&g.o.chaos, "11,0,hold=500000,hold-ms=10", err, sizeof err), 0);
  rig_start(&g);
  int32_t ids[N];
  uint64_t posted[N], answered[N] = {0};
  for (uint64_t now = 1000; now <= 1200; now++) {
    int i = (int)(now - 1000);
    if (i < N) {
      ids[i] = client_post(&g.cl, "/3/device/abcd", NULL);
      posted[i] = now;
    }
    pump(&g.cl, g.mc, now);
    for (int k = 0; k < N && k <= i; k++)
      if (answered[k] == 0 && rec_of(&g.cl, ids[k])->status != 0) answered[k] = now;
  }
  int shorts = 0, longs = 0;
  uint64_t last_long = 0;
  for (int k = 0; k < N; k++) {
    ASSERT_EQ(rec_of(&g.cl, ids[k])->status, 200);
    uint64_t held = answered[k] - posted[k];
    if (held == 10) {
      shorts++;
    } else {
      ASSERT_UEQ(held, 100);
      ASSERT_GT(answered[k], last_long);
      last_long = answered[k];
      longs++;
    }
  }
  ASSERT_UEQ(g.st.chaos[APNS_MOCK_CHAOS_HOLD], shorts);
  ASSERT_GT(shorts, 5);
  ASSERT_GT(longs, 5);
  ASSERT_UEQ(apns__mock_conn_next_due(g.mc), APNS__MOCK_NEVER);
  rig_end(&g);
}

TEST(mock_conn_reset_while_held) {
  rig g = {0};
  apns_mock_options_init(&g.o);
  g.o.paused = 1;
  rig_start(&g);
  int32_t ids[3];
  for (int i = 0; i < 3; i++) ids[i] = client_post(&g.cl, "/3/device/abcd", NULL);
  pump(&g.cl, g.mc, 0);
  ASSERT_EQ(g.st.requests, 3);
  /* Reset the middle one: it leaves the held queue; the others still come. */
  ASSERT_EQ(nghttp2_submit_rst_stream(g.cl.h2, NGHTTP2_FLAG_NONE, ids[1], NGHTTP2_CANCEL), 0);
  pump(&g.cl, g.mc, 0);
  apns__mock_conn_set_paused(g.mc, 0);
  pump(&g.cl, g.mc, 0);
  ASSERT_EQ(rec_of(&g.cl, ids[0])->status, 200);
  ASSERT_EQ(rec_of(&g.cl, ids[1])->status, 0);
  ASSERT_EQ(rec_of(&g.cl, ids[1])->error_code, NGHTTP2_CANCEL);
  ASSERT_EQ(rec_of(&g.cl, ids[2])->status, 200);
  ASSERT_EQ(g.st.responses, 2);
  rig_end(&g);
}

typedef struct {
  int calls;
  char path[64], topic[64], body[64];
  uint64_t seq;
} hook_seen;

static void hook(void *data, apns_mock_request *req) {
  hook_seen *h = data;
  h->calls++;
  h->seq = req->seq;
  ASSERT_STREQ(req->method, "POST");
  snprintf(h->path, sizeof h->path, "%s", req->path);
  for (size_t i = 0; i < req->num_headers; i++)
    if (strcmp(req->headers[i].name, "apns-topic") == 0)
      snprintf(h->topic, sizeof h->topic, "%s", req->headers[i].value);
  ASSERT_NOT_NULL(req->body);
  snprintf(h->body, sizeof h->body, "%.*s", (int)req->body_len, (const char *)req->body);
  ASSERT_EQ(req->status, 200);
  ASSERT_NULL(req->reason);
  if (req->seq == 2) {
    req->status = 429;
    req->reason = "TooManyRequests";
  }
}

TEST(mock_conn_hook) {
  rig g = {0};
  hook_seen seen;
  memset(&seen, 0, sizeof seen);
  apns_mock_options_init(&g.o);
  g.o.on_request = hook;
  g.o.data = &seen;
  rig_start(&g);
  int32_t a = client_post(&g.cl, "/3/device/abcd", NULL);
  pump(&g.cl, g.mc, 0);
  ASSERT_EQ(seen.calls, 1);
  ASSERT_STREQ(seen.path, "/3/device/abcd");
  ASSERT_STREQ(seen.topic, "com.example.app");
  ASSERT_STREQ(seen.body, "{\"aps\":{}}");
  int32_t b = client_post(&g.cl, "/3/device/abcd", NULL);
  pump(&g.cl, g.mc, 0);
  ASSERT_EQ(seen.calls, 2);
  ASSERT_EQ(seen.seq, 2);
  ASSERT_EQ(rec_of(&g.cl, a)->status, 200);
  ASSERT_EQ(rec_of(&g.cl, b)->status, 429);
  body_reason(rec_of(&g.cl, b), "TooManyRequests", NULL);
  ASSERT_EQ(g.st.status[429], 1);
  rig_end(&g);
}

TEST(mock_conn_garbage_is_fatal) {
  rig g = {0};
  apns_mock_options_init(&g.o);
  rig_start(&g);
  static const char junk[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_ERR(apns__mock_conn_feed(g.mc, (const uint8_t *)junk, sizeof junk - 1, 0), APNS_EHTTP2);
  ASSERT_TRUE(apns__mock_conn_want_close(g.mc));
  ASSERT_EQ(g.st.protocol_errors, 1);
  ASSERT_TRUE(strlen(apns__mock_conn_error(g.mc)) > 0);
  rig_end(&g);
}

TEST(mock_conn_alloc_failure) {
  apns_mock_options o;
  apns_mock_options_init(&o);
  apns_mock_stats st;
  long live = test_alloc_live();
  int ok = 0;
  for (long i = 0; i < 200 && !ok; i++) {
    apns__mock_conn *mc = NULL;
    test_alloc_fail_after(i);
    int rv = apns__mock_conn_new(&mc, &o, NULL, NULL, &st, 1);
    test_alloc_reset();
    if (rv == 0) {
      ok = 1;
      apns__mock_conn_free(mc);
    } else {
      ASSERT_ERR(rv, APNS_ENOMEM);
      ASSERT_NULL(mc);
    }
    ASSERT_EQ(test_alloc_live(), live);
  }
  ASSERT_TRUE(ok);
}

/* ==== Apple's checks ==== */

/* POST path with the headers given as name, value pairs up to a NULL name, and a small body. */
static int32_t client_reqh(client *cl, const char *path, const char *const *hdrs) {
  nghttp2_nv nva[16] = {NV(":method", "POST"), NV(":scheme", "https"), NV(":authority", "localhost"),
                        NV(":path", path)};
  size_t n = 4;
  for (; hdrs && hdrs[0]; hdrs += 2) {
    ASSERT_LT(n, 16);
    nva[n++] = (nghttp2_nv)NV(hdrs[0], hdrs[1]);
  }
  ASSERT_LT(cl->nsub, MAXS);
  body_src *b = &cl->src[cl->nsub++];
  b->data = (const uint8_t *)"{\"aps\":{}}";
  b->len = 10;
  nghttp2_data_provider prd = {.source.ptr = b, .read_callback = c_read_body};
  int32_t id = nghttp2_submit_request(cl->h2, NULL, nva, n, &prd, NULL);
  ASSERT_GT(id, 0);
  return id;
}

/* Sends one request, runs it to its answer, and checks status and reason (NULL: none). */
static void expect(rig *g, uint64_t now, const char *path, const char *const *hdrs, int status, const char *reason) {
  int32_t id = client_reqh(&g->cl, path, hdrs);
  pump(&g->cl, g->mc, now);
  rec *r = rec_of(&g->cl, id);
  ASSERT_TRUE(r->closed);
  if (r->status != status) printf("request %d: %d %s\n", id, r->status, r->body);
  ASSERT_EQ(r->status, status);
  assert_uuid_v4(r->apns_id);
  if (reason)
    body_reason(r, reason, NULL);
  else
    ASSERT_EQ(r->body_len, 0);
}

#define H(...) ((const char *const[]){__VA_ARGS__, NULL})
#define DEV "/3/device/abcd"

TEST(mock_conn_header_checks) {
  rig g = {0};
  char long_topic[300], c64[65], c65[66];
  memset(long_topic, 'a', 256);
  long_topic[256] = '\0';
  memset(c64, 'c', 64);
  c64[64] = '\0';
  memset(c65, 'c', 65);
  c65[65] = '\0';
  apns_mock_options_init(&g.o);
  rig_start(&g);
  /* Without any auth the topic is optional. */
  expect(&g, 0, DEV, NULL, 200, NULL);
  expect(&g, 0, DEV, H("apns-priority", "7"), 400, "BadPriority");
  expect(&g, 0, DEV, H("apns-priority", "010"), 400, "BadPriority");
  expect(&g, 0, DEV, H("apns-priority", ""), 400, "BadPriority");
  expect(&g, 0, DEV, H("apns-priority", "10", "apns-push-type", "background"), 400, "BadPriority");
  expect(&g, 0, DEV, H("apns-priority", "5", "apns-push-type", "background"), 200, NULL);
  expect(&g, 0, DEV, H("apns-priority", "1"), 200, NULL);
  expect(&g, 0, DEV, H("apns-priority", "10"), 200, NULL);
  expect(&g, 0, DEV, H("apns-push-type", "bogus"), 400, "InvalidPushType");
  expect(&g, 0, DEV, H("apns-push-type", "Alert"), 400, "InvalidPushType");
  expect(&g, 0, DEV, H("apns-push-type", "liveactivity", "apns-topic", "com.example.app.push-type.liveactivity"), 200,
         NULL);
  expect(&g, 0, DEV, H("apns-topic", "com.example app"), 400, "BadTopic");
  expect(&g, 0, DEV, H("apns-topic", ""), 400, "BadTopic");
  expect(&g, 0, DEV, H("apns-topic", long_topic), 400, "BadTopic");
  expect(&g, 0, DEV, H("apns-push-type", "voip", "apns-topic", "com.example.app"), 400, "DeviceTokenNotForTopic");
  expect(&g, 0, DEV, H("apns-push-type", "voip", "apns-topic", "com.example.app.voip"), 200, NULL);
  expect(&g, 0, DEV, H("apns-collapse-id", c65), 400, "BadCollapseId");
  expect(&g, 0, DEV, H("apns-collapse-id", ""), 400, "BadCollapseId");
  expect(&g, 0, DEV, H("apns-collapse-id", c64), 200, NULL);
  expect(&g, 0, DEV, H("apns-expiration", "soon"), 400, "BadExpirationDate");
  expect(&g, 0, DEV, H("apns-expiration", "-1"), 400, "BadExpirationDate");
  expect(&g, 0, DEV, H("apns-expiration", "1.5"), 400, "BadExpirationDate");
  expect(&g, 0, DEV, H("apns-expiration", "12345678901234567890"), 400, "BadExpirationDate");
  expect(&g, 0, DEV, H("apns-expiration", "0"), 200, NULL);
  expect(&g, 0, DEV, H("apns-expiration", "1700000000"), 200, NULL);
  expect(&g, 0, DEV, H("apns-topic", "a.b", "apns-topic", "a.b"), 400, "DuplicateHeaders");
  expect(&g, 0, DEV, H("apns-priority", "10", "apns-priority", "5"), 400, "DuplicateHeaders");
  expect(&g, 0, DEV,
         H("apns-id", "8e3a0d8c-5a7e-4b8b-9f10-1c2d3e4f5a6b", "apns-id", "8e3a0d8c-5a7e-4b8b-9f10-1c2d3e4f5a6b"), 400,
         "DuplicateHeaders");
  expect(&g, 0, DEV, H("authorization", "bearer x", "authorization", "bearer x"), 400, "DuplicateHeaders");
  /* Order: the first failing check answers. */
  expect(&g, 0, DEV, H("apns-priority", "7", "apns-priority", "7"), 400, "DuplicateHeaders");
  expect(&g, 0, "/3/device/xyz", H("apns-priority", "7"), 400, "BadDeviceToken");
  expect(&g, 0, DEV, H("apns-id", "nope", "apns-push-type", "bogus"), 400, "BadMessageId");
  expect(&g, 0, DEV, H("apns-push-type", "bogus", "apns-priority", "7"), 400, "InvalidPushType");
  expect(&g, 0, DEV, H("apns-priority", "7", "apns-topic", "a b"), 400, "BadPriority");
  expect(&g, 0, DEV, H("apns-topic", "a b", "apns-collapse-id", ""), 400, "BadTopic");
  expect(&g, 0, DEV, H("apns-collapse-id", "", "apns-expiration", "x"), 400, "BadCollapseId");
  /* Without token keys the authorization header is not looked at. */
  expect(&g, 0, DEV, H("authorization", "bearer nonsense"), 200, NULL);
  ASSERT_EQ(g.st.status[400], 27);
  ASSERT_EQ(g.st.status[200], 10);
  /* No token auth: the limit is 1000 from the start. */
  ASSERT_EQ(g.cl.mcs[0], 1000);
  rig_end(&g);
}

/* Token keys for the tests: a .p8 from certgen, signers over it, and a public-key PEM of a second key. */
#define KID_A "ABC123DEFG"
#define KID_B "XYZ987WVUT"
#define TEAM "DEF123GHIJ"

typedef struct {
  char *p8_a, *p8_b;
  char pub_b[512];
  apns__jwt_signer *a, *a_other_team, *b, *b_as_a, *unknown;
  int64_t now;
} keys;

static int64_t keys_clock(void *data) {
  return ((keys *)data)->now;
}

static void keys_make(keys *k) {
  char err[256];
  memset(k, 0, sizeof *k);
  k->now = 1700000000;
  ASSERT_OK(apns__certgen_p8_key(&k->p8_a, err, sizeof err));
  ASSERT_OK(apns__certgen_p8_key(&k->p8_b, err, sizeof err));
  size_t la = strlen(k->p8_a), lb = strlen(k->p8_b);
  ASSERT_OK(apns__jwt_signer_new(&k->a, NULL, k->p8_a, la, KID_A, TEAM, err, sizeof err));
  ASSERT_OK(apns__jwt_signer_new(&k->a_other_team, NULL, k->p8_a, la, KID_A, "OTHERTEAM1", err, sizeof err));
  ASSERT_OK(apns__jwt_signer_new(&k->b, NULL, k->p8_b, lb, KID_B, TEAM, err, sizeof err));
  ASSERT_OK(apns__jwt_signer_new(&k->b_as_a, NULL, k->p8_b, lb, KID_A, TEAM, err, sizeof err));
  ASSERT_OK(apns__jwt_signer_new(&k->unknown, NULL, k->p8_a, la, "UNKNOWN123", TEAM, err, sizeof err));
  /* Key B is registered by its public half only. */
  mbedtls_pk_context pk;
  mbedtls_pk_init(&pk);
  ASSERT_EQ(apns__mbed_pk_parse_key(&pk, (const unsigned char *)k->p8_b, lb + 1, NULL, 0, NULL, NULL), 0);
  ASSERT_EQ(mbedtls_pk_write_pubkey_pem(&pk, (unsigned char *)k->pub_b, sizeof k->pub_b), 0);
  mbedtls_pk_free(&pk);
}

static void keys_free(keys *k) {
  apns__jwt_signer_free(k->a);
  apns__jwt_signer_free(k->a_other_team);
  apns__jwt_signer_free(k->b);
  apns__jwt_signer_free(k->b_as_a);
  apns__jwt_signer_free(k->unknown);
  apns__zero(k->p8_a, strlen(k->p8_a));
  apns__zero(k->p8_b, strlen(k->p8_b));
  apns__free(k->p8_a);
  apns__free(k->p8_b);
}

/* "bearer <JWT>" signed by s at iat, in buf. */
static const char *bearer(char *buf, size_t cap, apns__jwt_signer *s, int64_t iat) {
  char *jwt;
  ASSERT_OK(apns__jwt_sign(s, iat, &jwt, NULL));
  snprintf(buf, cap, "bearer %s", jwt);
  apns__free(jwt);
  return buf;
}

/* A rig whose connection verifies tokens with keys A (the .p8) and B (its public key), on k's clock. */
static void token_rig(rig *g, keys *k) {
  char err[256];
  memset(g, 0, sizeof *g);
  apns_mock_options_init(&g->o);
  g->o.clock = keys_clock;
  g->o.data = k;
  ASSERT_OK(apns__jwt_verifier_new(&g->jwt));
  ASSERT_OK(apns__jwt_verifier_add(g->jwt, KID_A, NULL, k->p8_a, strlen(k->p8_a) + 1, err, sizeof err));
  ASSERT_OK(apns__jwt_verifier_add(g->jwt, KID_B, NULL, k->pub_b, strlen(k->pub_b) + 1, err, sizeof err));
  rig_start(g);
}

TEST(mock_p8_key) {
  char *pem = NULL, err[256];
  ASSERT_ERR(apns__certgen_p8_key(NULL, err, sizeof err), APNS_EINVAL);
  ASSERT_OK(apns__certgen_p8_key(&pem, err, sizeof err));
  /* PKCS#8 as Apple's .p8, not mbedTLS's SEC1. */
  ASSERT_EQ(strncmp(pem, "-----BEGIN PRIVATE KEY-----\n", 28), 0);
  ASSERT_TRUE(strstr(pem, "-----END PRIVATE KEY-----\n") != NULL);
  size_t len = strlen(pem);
  unsigned char der[512];
  size_t der_len;
  /* The DER: SEQUENCE { INTEGER 0, SEQUENCE { OID id-ecPublicKey, OID prime256v1 }, OCTET STRING ... }. */
  mbedtls_pem_context ctx;
  mbedtls_pem_init(&ctx);
  ASSERT_EQ(mbedtls_pem_read_buffer(&ctx, "-----BEGIN PRIVATE KEY-----", "-----END PRIVATE KEY-----",
                                    (const unsigned char *)pem, NULL, 0, &der_len),
            0);
  ASSERT_LT(ctx.APNS__MBED_PRIV(buflen), sizeof der);
  memcpy(der, ctx.APNS__MBED_PRIV(buf), ctx.APNS__MBED_PRIV(buflen));
  der_len = ctx.APNS__MBED_PRIV(buflen);
  mbedtls_pem_free(&ctx);
  static const unsigned char head[] = {0x02, 0x01, 0x00, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d,
                                       0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
  ASSERT_EQ(der[0], 0x30);
  ASSERT_GT(der_len, 2 + sizeof head);
  ASSERT_MEMEQ(der + 2 + (der[1] & 0x80 ? (der[1] & 0x7f) : 0), head, sizeof head);
  /* It signs, and its tokens verify. */
  apns__jwt_signer *s;
  apns__jwt_verifier *v;
  char *jwt;
  ASSERT_OK(apns__jwt_signer_new(&s, NULL, pem, len, KID_A, TEAM, err, sizeof err));
  ASSERT_OK(apns__jwt_verifier_new(&v));
  ASSERT_OK(apns__jwt_verifier_add(v, KID_A, NULL, pem, len + 1, err, sizeof err));
  ASSERT_OK(apns__jwt_sign(s, 1700000000, &jwt, NULL));
  ASSERT_EQ(apns__jwt_verify(v, jwt, strlen(jwt), NULL), APNS__JWT_VALID);
  apns__free(jwt);
  apns__jwt_signer_free(s);
  apns__jwt_verifier_free(v);
  /* Two calls, two keys. */
  char *pem2;
  ASSERT_OK(apns__certgen_p8_key(&pem2, err, sizeof err));
  ASSERT_NE(strcmp(pem, pem2), 0);
  apns__zero(pem, len);
  apns__free(pem);
  apns__free(pem2);
}

TEST(mock_conn_token_auth) {
  keys k;
  rig g;
  char b1[600], b2[600], b3[600], tmp[600];
  keys_make(&k);
  token_rig(&g, &k);
  const int64_t t0 = k.now;
  pump(&g.cl, g.mc, 0);
  /* A token connection starts at one stream. */
  ASSERT_EQ(g.cl.nmcs, 1);
  ASSERT_EQ(g.cl.mcs[0], 1);
  bearer(b1, sizeof b1, k.a, t0);
  const char *topic = "com.example.app";
  expect(&g, 0, DEV, H("apns-topic", topic), 403, "MissingProviderToken");
  expect(&g, 0, DEV, H("apns-topic", topic, "authorization", "bearer"), 403, "InvalidProviderToken");
  expect(&g, 0, DEV, H("apns-topic", topic, "authorization", "Basic dXNlcjpwYXNz"), 403, "InvalidProviderToken");
  expect(&g, 0, DEV, H("apns-topic", topic, "authorization", "bearer a.b.c"), 403, "InvalidProviderToken");
  expect(&g, 0, DEV, H("apns-topic", topic, "authorization", b1 + 7), 403, "InvalidProviderToken"); /* no scheme */
  expect(&g, 0, DEV, H("apns-topic", topic, "authorization", bearer(tmp, sizeof tmp, k.unknown, t0)), 403,
         "InvalidProviderToken");
  expect(&g, 0, DEV, H("apns-topic", topic, "authorization", bearer(tmp, sizeof tmp, k.b_as_a, t0)), 403,
         "InvalidProviderToken"); /* kid A, signed by B */
  /* A tampered signature: change the last character. */
  snprintf(tmp, sizeof tmp, "%s", b1);
  tmp[strlen(tmp) - 1] = tmp[strlen(tmp) - 1] == 'A' ? 'B' : 'A';
  expect(&g, 0, DEV, H("apns-topic", topic, "authorization", tmp), 403, "InvalidProviderToken");
  expect(&g, 0, DEV, H("apns-topic", topic, "authorization", bearer(tmp, sizeof tmp, k.a, t0 - 3601)), 403,
         "ExpiredProviderToken");
  /* Refused requests leave the limit at 1. */
  ASSERT_EQ(g.cl.nmcs, 1);
  ASSERT_EQ(g.st.tokens_accepted, 0);
  /* A valid token whose request fails a later check is accepted, but only a 200 raises the limit. */
  expect(&g, 0, DEV, H("authorization", b1), 400, "MissingTopic");
  expect(&g, 0, "/3/device/xyz", H("apns-topic", topic, "authorization", b1), 400, "BadDeviceToken");
  ASSERT_EQ(g.st.tokens_accepted, 1);
  ASSERT_EQ(g.cl.nmcs, 1);
  /* "Bearer" in any case, as HTTP auth schemes are. */
  snprintf(tmp, sizeof tmp, "Bearer %s", b1 + 7);
  expect(&g, 0, DEV, H("apns-topic", topic, "authorization", tmp), 200, NULL);
  ASSERT_EQ(g.cl.nmcs, 2);
  ASSERT_EQ(g.cl.mcs[1], 1000);
  ASSERT_EQ(g.st.streams_raised, 1);
  expect(&g, 0, DEV, H("apns-topic", topic, "authorization", b1), 200, NULL);
  ASSERT_EQ(g.cl.nmcs, 2); /* raised once */

  /* Another valid token within 20 minutes of the first's acceptance. */
  k.now = t0 + 1199;
  bearer(b2, sizeof b2, k.a, k.now);
  expect(&g, 0, DEV, H("apns-topic", topic, "authorization", b2), 429, "TooManyProviderTokenUpdates");
  expect(&g, 0, DEV, H("apns-topic", topic, "authorization", b1), 200, NULL); /* the current one still works */
  /* The connection is bound to key A and team TEAM. */
  k.now = t0 + 1200;
  expect(&g, 0, DEV, H("apns-topic", topic, "authorization", bearer(tmp, sizeof tmp, k.b, k.now)), 403,
         "UnrelatedKeyIdInToken");
  expect(&g, 0, DEV, H("apns-topic", topic, "authorization", bearer(tmp, sizeof tmp, k.a_other_team, k.now)), 403,
         "InvalidProviderToken");
  /* 20 minutes on, the update is taken; the old token is then a different one. */
  expect(&g, 0, DEV, H("apns-topic", topic, "authorization", b2), 200, NULL);
  ASSERT_EQ(g.st.tokens_accepted, 2);
  expect(&g, 0, DEV, H("apns-topic", topic, "authorization", b1), 429, "TooManyProviderTokenUpdates");
  expect(&g, 0, DEV, H("apns-topic", topic, "authorization", b2), 200, NULL);
  /* The current token expires an hour after its iat (b2's iat is t0 + 1199). */
  k.now = t0 + 1199 + 3600;
  expect(&g, 0, DEV, H("apns-topic", topic, "authorization", b2), 200, NULL);
  k.now++;
  expect(&g, 0, DEV, H("apns-topic", topic, "authorization", b2), 403, "ExpiredProviderToken");
  bearer(b3, sizeof b3, k.a, k.now);
  expect(&g, 0, DEV, H("apns-topic", topic, "authorization", b3), 200, NULL);
  ASSERT_EQ(g.st.tokens_accepted, 3);
  ASSERT_EQ(g.st.status[429], 2);
  ASSERT_EQ(g.st.status[403], 12);
  rig_end(&g);
  keys_free(&k);
}

/* Requests in flight together on a raised connection: the same token is recognised without a second check, and a
 * new token sent on several streams at once is taken once. */
TEST(mock_conn_token_many_streams) {
  keys k;
  rig g;
  char b1[600], b2[600];
  keys_make(&k);
  token_rig(&g, &k);
  const int64_t t0 = k.now;
  bearer(b1, sizeof b1, k.a, t0);
  expect(&g, 0, DEV, H("apns-topic", "t", "authorization", b1), 200, NULL);
  int32_t ids[10];
  for (int i = 0; i < 10; i++) ids[i] = client_reqh(&g.cl, DEV, H("apns-topic", "t", "authorization", b1));
  pump(&g.cl, g.mc, 0);
  for (int i = 0; i < 10; i++) ASSERT_EQ(rec_of(&g.cl, ids[i])->status, 200);
  ASSERT_GE(g.st.max_concurrent, 2);
  k.now = t0 + 3000;
  bearer(b2, sizeof b2, k.a, k.now);
  for (int i = 0; i < 10; i++) ids[i] = client_reqh(&g.cl, DEV, H("apns-topic", "t", "authorization", b2));
  pump(&g.cl, g.mc, 0);
  for (int i = 0; i < 10; i++) ASSERT_EQ(rec_of(&g.cl, ids[i])->status, 200);
  ASSERT_EQ(g.st.tokens_accepted, 2);
  rig_end(&g);
  keys_free(&k);
}

TEST(mock_conn_token_alloc_failure) {
  /* Out of memory while keeping a new token: the connection fails cleanly and nothing leaks. */
  keys k;
  char b1[600];
  keys_make(&k);
  bearer(b1, sizeof b1, k.a, k.now);
  long live = test_alloc_live();
  int ok = 0;
  for (long i = 0; i < 400 && !ok; i++) {
    rig g;
    token_rig(&g, &k);
    int32_t id = client_reqh(&g.cl, DEV, H("apns-topic", "t", "authorization", b1));
    const uint8_t *p;
    ssize_t n;
    int rv = 0;
    test_alloc_fail_after(i);
    while (rv == 0 && (n = nghttp2_session_mem_send(g.cl.h2, &p)) > 0)
      rv = apns__mock_conn_feed(g.mc, p, (size_t)n, 0);
    uint8_t *out = NULL;
    size_t len = 0;
    if (rv == 0) rv = apns__mock_conn_flush(g.mc, 0, &out, &len);
    test_alloc_reset();
    if (rv == 0) {
      ASSERT_EQ(nghttp2_session_mem_recv(g.cl.h2, out, len), (ssize_t)len);
      ok = rec_of(&g.cl, id)->status == 200;
      ASSERT_TRUE(ok);
    } else {
      ASSERT_TRUE(rv == APNS_ENOMEM || rv == APNS_EHTTP2);
    }
    apns__free(out);
    rig_end(&g);
    ASSERT_EQ(test_alloc_live(), live);
  }
  ASSERT_TRUE(ok);
  keys_free(&k);
}

/* ==== on a loop: the in-process server and a client over TCP (TLS optional) ==== */

typedef struct netc netc;
struct netc {
  uv_loop_t *loop;
  uv_tcp_t tcp;
  uv_connect_t creq;
  apns__tls_config *tls_cfg;
  apns__tls *tls;
  client cl;
  apns_mock *mock;
  int ready;
  int closed;
  void (*on_ready)(netc *n);
  void (*on_progress)(netc *n);
  uint8_t rbuf[65536];
  void *data;
};

typedef struct {
  uv_write_t req;
  uint8_t *buf;
} wreq;

static void net_written(uv_write_t *req, int status) {
  wreq *w = (wreq *)req;
  (void)status;
  apns__free(w->buf);
  apns__free(w);
}

static void net_send(netc *n, uint8_t *buf, size_t len) {
  if (len == 0) {
    apns__free(buf);
    return;
  }
  wreq *w = apns__malloc(sizeof *w);
  ASSERT_NOT_NULL(w);
  w->buf = buf;
  uv_buf_t b = uv_buf_init((char *)buf, (unsigned)len);
  ASSERT_EQ(uv_write(&w->req, (uv_stream_t *)&n->tcp, &b, 1, net_written), 0);
}

static void net_flush(netc *n) {
  if (n->closed) return;
  if (n->tls && !apns__tls_handshake_done(n->tls)) {
    uint8_t *out;
    size_t len;
    apns__tls_take_output(n->tls, &out, &len);
    net_send(n, out, len);
    return;
  }
  size_t len = 0, cap = 0;
  uint8_t *buf = NULL;
  const uint8_t *p;
  ssize_t k;
  while ((k = nghttp2_session_mem_send(n->cl.h2, &p)) > 0) {
    if (len + (size_t)k > cap) {
      cap = (len + (size_t)k) * 2;
      buf = apns__realloc(buf, cap);
      ASSERT_NOT_NULL(buf);
    }
    memcpy(buf + len, p, (size_t)k);
    len += (size_t)k;
  }
  ASSERT_GE(k, 0);
  if (n->tls == NULL) {
    net_send(n, buf, len);
    return;
  }
  if (len > 0) ASSERT_OK(apns__tls_write(n->tls, buf, len));
  apns__free(buf);
  uint8_t *out;
  size_t olen;
  apns__tls_take_output(n->tls, &out, &olen);
  net_send(n, out, olen);
}

static void net_closed(uv_handle_t *h) {
  (void)h;
}

static void net_close(netc *n) {
  if (n->closed) return;
  n->closed = 1;
  uv_close((uv_handle_t *)&n->tcp, net_closed);
}

static void net_alloc(uv_handle_t *h, size_t sz, uv_buf_t *buf) {
  (void)sz;
  netc *n = h->data;
  *buf = uv_buf_init((char *)n->rbuf, sizeof n->rbuf);
}

static void net_input(netc *n, const uint8_t *data, size_t len) {
  ASSERT_EQ(nghttp2_session_mem_recv(n->cl.h2, data, len), (ssize_t)len);
}

static void net_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  netc *n = s->data;
  if (nread == 0) return;
  if (nread < 0) {
    net_close(n);
    if (n->on_progress) n->on_progress(n);
    return;
  }
  if (n->tls == NULL) {
    net_input(n, (const uint8_t *)buf->base, (size_t)nread);
  } else {
    ASSERT_OK(apns__tls_feed(n->tls, (const uint8_t *)buf->base, (size_t)nread));
    if (!apns__tls_handshake_done(n->tls)) {
      int rv = apns__tls_handshake(n->tls);
      if (rv < 0) {
        net_flush(n);
        net_close(n);
        if (n->on_progress) n->on_progress(n);
        return;
      }
    }
    if (apns__tls_handshake_done(n->tls)) {
      uint8_t tmp[16384];
      ssize_t k;
      while ((k = apns__tls_read(n->tls, tmp, sizeof tmp)) > 0) net_input(n, tmp, (size_t)k);
    }
  }
  if (!n->ready && (n->tls == NULL || apns__tls_handshake_done(n->tls))) {
    n->ready = 1;
    if (n->on_ready) n->on_ready(n);
  }
  net_flush(n);
  if (n->on_progress) n->on_progress(n);
}

static void net_connected(uv_connect_t *req, int status) {
  netc *n = req->data;
  ASSERT_OK(status);
  ASSERT_EQ(uv_read_start((uv_stream_t *)&n->tcp, net_alloc, net_read), 0);
  if (n->tls) {
    ASSERT_EQ(apns__tls_handshake(n->tls), 1);
  } else {
    n->ready = 1;
    if (n->on_ready) n->on_ready(n);
  }
  net_flush(n);
}

/* Connects to the mock; with tls_opts, over TLS (host name "localhost"). */
static void net_start(netc *n, uv_loop_t *loop, apns_mock *m, const apns__tls_options *tls_opts) {
  struct sockaddr_in addr;
  n->loop = loop;
  n->mock = m;
  client_init(&n->cl);
  if (tls_opts) {
    char err[256];
    ASSERT_OK(apns__tls_config_new(&n->tls_cfg, tls_opts, err, sizeof err));
    ASSERT_OK(apns__tls_new(&n->tls, n->tls_cfg, "localhost"));
  }
  ASSERT_EQ(uv_tcp_init(loop, &n->tcp), 0);
  n->tcp.data = n;
  n->creq.data = n;
  ASSERT_EQ(uv_ip4_addr("127.0.0.1", apns_mock_port(m), &addr), 0);
  ASSERT_EQ(uv_tcp_connect(&n->creq, &n->tcp, (const struct sockaddr *)&addr, net_connected), 0);
}

static void net_free(netc *n) {
  client_free(&n->cl);
  apns__tls_free(n->tls);
  apns__tls_config_unref(n->tls_cfg);
}

static apns_mock_stats final_stats;
static int stopped;
static void mock_stopped(apns_mock *m, void *data) {
  (void)data;
  apns_mock_get_stats(m, &final_stats);
  stopped = 1;
}

static void finish(netc *n) {
  net_close(n);
  apns_mock_stop(n->mock, mock_stopped, NULL);
}

/* -- delay on a real loop -- */
typedef struct {
  uint64_t sent_at, done_at;
  int32_t id[3];
} delay_ctx;

static void delay_ready(netc *n) {
  delay_ctx *d = n->data;
  d->sent_at = uv_now(n->loop);
  for (int i = 0; i < 3; i++) d->id[i] = client_post(&n->cl, "/3/device/abcd", NULL);
}

static void delay_progress(netc *n) {
  delay_ctx *d = n->data;
  if (n->cl.closed == 3 && !n->closed) {
    d->done_at = uv_now(n->loop);
    finish(n);
  }
}

TEST(mock_loop_delay) {
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  apns_mock_options o;
  apns_mock_options_init(&o);
  o.delay_ms = 40;
  apns_mock *m;
  char err[256];
  ASSERT_OK(apns_mock_start(&m, &loop, &o, err, sizeof err));
  ASSERT_GT(apns_mock_port(m), 0);
  netc *n = calloc(1, sizeof *n);
  delay_ctx d;
  memset(&d, 0, sizeof d);
  n->data = &d;
  n->on_ready = delay_ready;
  n->on_progress = delay_progress;
  net_start(n, &loop, m, NULL);
  ASSERT_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
  ASSERT_TRUE(stopped);
  for (int i = 0; i < 3; i++) ASSERT_EQ(rec_of(&n->cl, d.id[i])->status, 200);
  ASSERT_GE(d.done_at - d.sent_at, 40);
  ASSERT_EQ(final_stats.connections, 1);
  ASSERT_EQ(final_stats.connections_open, 0);
  ASSERT_EQ(final_stats.status[200], 3);
  net_free(n);
  free(n);
  ASSERT_EQ(uv_loop_close(&loop), 0);
}

/* -- pause on a real loop: requests are taken, nothing is answered until resumed -- */
typedef struct {
  netc *n;
  uv_timer_t hop;
  int seen;
  int checked;
} pause_ctx;

static void pause_hop(uv_timer_t *t) {
  pause_ctx *p = t->data;
  apns_mock_stats st;
  apns_mock_get_stats(p->n->mock, &st);
  /* A loop turn later and all five are in: still nothing answered. */
  ASSERT_EQ(st.requests, 5);
  ASSERT_EQ(st.responses, 0);
  ASSERT_EQ(p->n->cl.closed, 0);
  p->checked = 1;
  uv_close((uv_handle_t *)t, NULL);
  apns_mock_set_paused(p->n->mock, 0);
}

static void pause_hook(void *data, apns_mock_request *req) {
  pause_ctx *p = data;
  (void)req;
  if (++p->seen == 5) {
    ASSERT_EQ(uv_timer_init(p->n->loop, &p->hop), 0);
    p->hop.data = p;
    ASSERT_EQ(uv_timer_start(&p->hop, pause_hop, 0, 0), 0);
  }
}

static void pause_ready(netc *n) {
  for (int i = 0; i < 5; i++) client_post(&n->cl, "/3/device/abcd", NULL);
}

static void pause_progress(netc *n) {
  if (n->cl.closed == 5 && !n->closed) finish(n);
}

TEST(mock_loop_pause) {
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  pause_ctx p;
  memset(&p, 0, sizeof p);
  apns_mock_options o;
  apns_mock_options_init(&o);
  o.paused = 1;
  o.on_request = pause_hook;
  o.data = &p;
  apns_mock *m;
  ASSERT_OK(apns_mock_start(&m, &loop, &o, NULL, 0));
  netc *n = calloc(1, sizeof *n);
  p.n = n;
  n->on_ready = pause_ready;
  n->on_progress = pause_progress;
  net_start(n, &loop, m, NULL);
  ASSERT_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
  ASSERT_TRUE(p.checked);
  for (int i = 0; i < 5; i++) ASSERT_EQ(n->cl.r[i].status, 200);
  ASSERT_EQ(final_stats.responses, 5);
  net_free(n);
  free(n);
  ASSERT_EQ(uv_loop_close(&loop), 0);
}

/* -- drop_connections: the client sees the connection end with its request unanswered -- */
static void drop_hook(void *data, apns_mock_request *req) {
  (void)req;
  netc *n = data;
  apns_mock_drop_connections(n->mock);
}

static void drop_ready(netc *n) {
  client_post(&n->cl, "/3/device/abcd", NULL);
}

static void drop_progress(netc *n) {
  if (n->closed) apns_mock_stop(n->mock, mock_stopped, NULL);
}

TEST(mock_loop_drop_connections) {
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  netc *n = calloc(1, sizeof *n);
  apns_mock_options o;
  apns_mock_options_init(&o);
  o.paused = 1;
  o.on_request = drop_hook;
  o.data = n;
  apns_mock *m;
  ASSERT_OK(apns_mock_start(&m, &loop, &o, NULL, 0));
  n->on_ready = drop_ready;
  n->on_progress = drop_progress;
  net_start(n, &loop, m, NULL);
  ASSERT_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
  ASSERT_TRUE(stopped);
  ASSERT_EQ(n->cl.r[0].status, 0);
  ASSERT_EQ(final_stats.requests, 1);
  ASSERT_EQ(final_stats.responses, 0);
  ASSERT_EQ(final_stats.connections_open, 0);
  net_free(n);
  free(n);
  ASSERT_EQ(uv_loop_close(&loop), 0);
}

/* -- goaway_after and drop_after over a socket: the mock ends the connection itself once its answers are out -- */
static void ends_ready(netc *n) {
  for (int i = 0; i < 4; i++) client_post(&n->cl, "/3/device/abcd", NULL);
}

static void ends_progress(netc *n) {
  if (n->closed && !stopped) apns_mock_stop(n->mock, mock_stopped, NULL);
}

static void run_ends(int goaway) {
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  apns_mock_options o;
  apns_mock_options_init(&o);
  if (goaway)
    o.goaway_after = 2;
  else
    o.drop_after = 2;
  o.delay_ms = 5; /* the answers go out after the decision to end: they must not be lost */
  apns_mock *m;
  ASSERT_OK(apns_mock_start(&m, &loop, &o, NULL, 0));
  netc *n = calloc(1, sizeof *n);
  n->on_ready = ends_ready;
  n->on_progress = ends_progress;
  net_start(n, &loop, m, NULL);
  ASSERT_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
  ASSERT_TRUE(stopped);
  ASSERT_EQ(n->cl.r[0].status, 200);
  ASSERT_EQ(n->cl.r[1].status, 200);
  ASSERT_EQ(n->cl.r[2].status, 0);
  ASSERT_EQ(n->cl.r[3].status, 0);
  ASSERT_EQ(n->cl.goaway, goaway ? 1 : 0);
  if (goaway) {
    ASSERT_EQ(n->cl.goaway_last, 3);
    ASSERT_STREQ(n->cl.goaway_data, "{\"reason\":\"Shutdown\"}");
    ASSERT_EQ(n->cl.r[2].error_code, NGHTTP2_REFUSED_STREAM);
  }
  ASSERT_EQ(final_stats.responses, 2);
  ASSERT_EQ(final_stats.goaways, goaway ? 1 : 0);
  ASSERT_EQ(final_stats.drops, goaway ? 0 : 1);
  ASSERT_EQ(final_stats.connections_open, 0);
  net_free(n);
  free(n);
  ASSERT_EQ(uv_loop_close(&loop), 0);
}

TEST(mock_loop_goaway_closes) {
  run_ends(1);
}

TEST(mock_loop_drop_after_closes) {
  run_ends(0);
}

TEST(mock_start_bad_options) {
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  apns_mock_options o;
  apns_mock *m = NULL;
  char err[256];
  apns_mock_options_init(&o);
  o.host = "localhost";
  ASSERT_ERR(apns_mock_start(&m, &loop, &o, err, sizeof err), APNS_EINVAL);
  ASSERT_TRUE(strstr(err, "localhost") != NULL);
  apns_mock_options_init(&o);
  o.cert_pem = "x";
  ASSERT_ERR(apns_mock_start(&m, &loop, &o, err, sizeof err), APNS_EINVAL);
  apns_mock_options_init(&o);
  o.port = 70000;
  ASSERT_ERR(apns_mock_start(&m, &loop, &o, err, sizeof err), APNS_EINVAL);
  ASSERT_NULL(m);
  ASSERT_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
  ASSERT_EQ(uv_loop_close(&loop), 0);
}

/* -- TLS with client certificates, over a socket -- */
typedef struct {
  int32_t id[4];
  const char *apns_id;
} tls_ctx;

static void tls_ready(netc *n) {
  tls_ctx *t = n->data;
  t->id[0] = client_post(&n->cl, "/3/device/abcd", t->apns_id);
  for (int i = 1; i < 4; i++) t->id[i] = client_post(&n->cl, "/3/device/abcd", NULL);
}

static void tls_progress(netc *n) {
  if ((n->cl.closed == 4 || n->closed) && !stopped) finish(n);
}

static void certs_make(apns__certgen_result *c) {
  char err[256];
  ASSERT_OK(apns__certgen(NULL, c, err, sizeof err));
}

TEST(mock_loop_tls_client_cert) {
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  apns__certgen_result c;
  certs_make(&c);
  apns_mock_options o;
  apns_mock_options_init(&o);
  o.cert_pem = c.server_cert;
  o.key_pem = c.server_key;
  o.ca_pem = c.ca_cert;
  apns_mock *m;
  char err[512];
  ASSERT_OK(apns_mock_start(&m, &loop, &o, err, sizeof err));
  netc *n = calloc(1, sizeof *n);
  tls_ctx t = {.apns_id = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"};
  n->data = &t;
  n->on_ready = tls_ready;
  n->on_progress = tls_progress;
  apns__tls_options to;
  memset(&to, 0, sizeof to);
  to.ca_pem = c.ca_cert;
  to.cert_pem = c.client_cert;
  to.key_pem = c.client_key;
  net_start(n, &loop, m, &to);
  ASSERT_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
  for (int i = 0; i < 4; i++) ASSERT_EQ(rec_of(&n->cl, t.id[i])->status, 200);
  ASSERT_STREQ(rec_of(&n->cl, t.id[0])->apns_id, t.apns_id);
  assert_uuid_v4(rec_of(&n->cl, t.id[1])->apns_id);
  ASSERT_EQ(final_stats.handshake_failures, 0);
  ASSERT_EQ(final_stats.status[200], 4);
  net_free(n);
  free(n);
  apns__certgen_free(&c);
  ASSERT_EQ(uv_loop_close(&loop), 0);
}

TEST(mock_loop_tls_no_client_cert_refused) {
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  apns__certgen_result c;
  certs_make(&c);
  apns_mock_options o;
  apns_mock_options_init(&o);
  o.cert_pem = c.server_cert;
  o.key_pem = c.server_key;
  o.ca_pem = c.ca_cert;
  apns_mock *m;
  char err[512];
  ASSERT_OK(apns_mock_start(&m, &loop, &o, err, sizeof err));
  netc *n = calloc(1, sizeof *n);
  tls_ctx t = {.apns_id = NULL};
  n->data = &t;
  n->on_ready = tls_ready;
  n->on_progress = tls_progress;
  apns__tls_options to;
  memset(&to, 0, sizeof to);
  to.ca_pem = c.ca_cert;
  net_start(n, &loop, m, &to);
  ASSERT_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
  ASSERT_EQ(n->cl.closed, 0);
  ASSERT_EQ(final_stats.handshake_failures, 1);
  ASSERT_EQ(final_stats.requests, 0);
  net_free(n);
  free(n);
  apns__certgen_free(&c);
  ASSERT_EQ(uv_loop_close(&loop), 0);
}

/* -- certificate connections: the UID is the topic; tokens are not asked for even with token keys -- */
typedef struct {
  int32_t id[8];
  int n;
  const char *bearer;
} topic_ctx;

static void topic_ready(netc *n) {
  topic_ctx *t = n->data;
  t->id[t->n++] = client_reqh(&n->cl, DEV, NULL);
  t->id[t->n++] = client_reqh(&n->cl, DEV, H("apns-topic", "com.example.app"));
  t->id[t->n++] = client_reqh(&n->cl, DEV, H("apns-topic", "com.example.app.voip", "apns-push-type", "voip"));
  t->id[t->n++] = client_reqh(&n->cl, DEV, H("apns-topic", "com.example.app.complication"));
  t->id[t->n++] = client_reqh(&n->cl, DEV, H("apns-topic", "com.other.app"));
  t->id[t->n++] = client_reqh(&n->cl, DEV, H("apns-topic", "com.example.application"));
  t->id[t->n++] = client_reqh(&n->cl, DEV, H("apns-push-type", "voip"));
  t->id[t->n++] = client_reqh(&n->cl, DEV, H("authorization", "bearer junk"));
}

static void topic_progress(netc *n) {
  topic_ctx *t = n->data;
  if (((t->n > 0 && n->cl.closed == t->n) || n->closed) && !stopped) finish(n);
}

TEST(mock_loop_tls_cert_topic) {
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  apns__certgen_result c;
  certs_make(&c);
  keys k;
  keys_make(&k);
  apns_mock_options o;
  apns_mock_options_init(&o);
  o.cert_pem = c.server_cert;
  o.key_pem = c.server_key;
  o.ca_pem = c.ca_cert;
  apns_mock_token_key tk = {.key_id = KID_A, .pem = k.p8_a};
  o.token_keys = &tk;
  o.num_token_keys = 1;
  apns_mock *m;
  char err[512];
  ASSERT_OK(apns_mock_start(&m, &loop, &o, err, sizeof err));
  netc *n = calloc(1, sizeof *n);
  topic_ctx t = {.n = 0};
  n->data = &t;
  n->on_ready = topic_ready;
  n->on_progress = topic_progress;
  apns__tls_options to;
  memset(&to, 0, sizeof to);
  to.ca_pem = c.ca_cert;
  to.cert_pem = c.client_cert;
  to.key_pem = c.client_key;
  net_start(n, &loop, m, &to);
  ASSERT_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
  static const struct {
    int status;
    const char *reason;
  } want[8] = {{200, NULL},
               {200, NULL},
               {200, NULL},
               {200, NULL},
               {400, "BadTopic"},
               {400, "BadTopic"},
               {400, "DeviceTokenNotForTopic"},
               {200, NULL}};
  for (int i = 0; i < 8; i++) {
    rec *r = rec_of(&n->cl, t.id[i]);
    ASSERT_EQ(r->status, want[i].status);
    if (want[i].reason) body_reason(r, want[i].reason, NULL);
  }
  /* A certificate connection is not held at one stream. */
  ASSERT_EQ(n->cl.nmcs, 1);
  ASSERT_EQ(n->cl.mcs[0], 1000);
  ASSERT_EQ(final_stats.tokens_accepted, 0);
  net_free(n);
  free(n);
  apns__certgen_free(&c);
  keys_free(&k);
  ASSERT_EQ(uv_loop_close(&loop), 0);
}

/* -- token auth over TCP: one stream until the first 200, then 1000 -- */
typedef struct {
  int32_t id[6];
  int n;
  char bearer[600];
} tok_ctx;

/* One request first: the client does not know the limit yet, and the mock refuses streams beyond it. */
static void tok_ready(netc *n) {
  tok_ctx *t = n->data;
  t->id[t->n++] = client_reqh(&n->cl, DEV, H("apns-topic", "t", "authorization", t->bearer));
}

static void tok_progress(netc *n) {
  tok_ctx *t = n->data;
  if (t->n == 1 && n->cl.closed == 1) {
    while (t->n < 6) t->id[t->n++] = client_reqh(&n->cl, DEV, H("apns-topic", "t", "authorization", t->bearer));
    net_flush(n);
  }
  if ((n->cl.closed == 6 || n->closed) && !stopped) finish(n);
}

TEST(mock_loop_token_streams) {
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  keys k;
  keys_make(&k);
  apns_mock_options o;
  apns_mock_options_init(&o);
  apns_mock_token_key tk[2] = {{.key_id = KID_A, .pem = k.p8_a}, {.key_id = KID_B, .pem = k.pub_b}};
  o.token_keys = tk;
  o.num_token_keys = 2;
  o.clock = keys_clock;
  o.data = &k;
  apns_mock *m;
  char err[512];
  ASSERT_OK(apns_mock_start(&m, &loop, &o, err, sizeof err));
  netc *n = calloc(1, sizeof *n);
  tok_ctx t = {.n = 0};
  bearer(t.bearer, sizeof t.bearer, k.b, k.now);
  n->data = &t;
  n->on_ready = tok_ready;
  n->on_progress = tok_progress;
  net_start(n, &loop, m, NULL);
  ASSERT_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
  for (int i = 0; i < 6; i++) ASSERT_EQ(rec_of(&n->cl, t.id[i])->status, 200);
  ASSERT_EQ(n->cl.nmcs, 2);
  ASSERT_EQ(n->cl.mcs[0], 1);
  ASSERT_EQ(n->cl.mcs[1], 1000);
  ASSERT_EQ(final_stats.tokens_accepted, 1);
  ASSERT_EQ(final_stats.streams_raised, 1);
  ASSERT_GE(final_stats.max_concurrent, 2);
  net_free(n);
  free(n);
  keys_free(&k);
  ASSERT_EQ(uv_loop_close(&loop), 0);
}

TEST(mock_start_bad_token_keys) {
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  keys k;
  keys_make(&k);
  apns_mock_options o;
  apns_mock *m = NULL;
  char err[256], path[600];
  apns_mock_token_key tk[2] = {
      {.key_id = KID_A, .pem = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"},
      {.key_id = KID_A, .pem = k.p8_a}};
  apns_mock_options_init(&o);
  o.token_keys = tk;
  o.num_token_keys = 1;
  ASSERT_ERR(apns_mock_start(&m, &loop, &o, err, sizeof err), APNS_EBADKEY);
  tk[0].pem = NULL;
  snprintf(path, sizeof path, "%s/missing.p8", test_tmpdir());
  tk[0].file = path;
  ASSERT_ERR(apns_mock_start(&m, &loop, &o, err, sizeof err), APNS_EBADKEY);
  ASSERT_TRUE(strstr(err, "missing.p8") != NULL);
  tk[0] = (apns_mock_token_key){.key_id = "short", .pem = k.p8_a};
  ASSERT_ERR(apns_mock_start(&m, &loop, &o, err, sizeof err), APNS_EINVAL);
  tk[0].key_id = KID_A;
  o.num_token_keys = 2; /* the same key id twice */
  ASSERT_ERR(apns_mock_start(&m, &loop, &o, err, sizeof err), APNS_EINVAL);
  o.token_keys = NULL;
  ASSERT_ERR(apns_mock_start(&m, &loop, &o, err, sizeof err), APNS_EINVAL);
  ASSERT_NULL(m);
  ASSERT_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
  ASSERT_EQ(uv_loop_close(&loop), 0);
  keys_free(&k);
}

/* ==== the command ==== */

/* Spawns argv (fixture.h's fx_child, stdout and stderr collected); returns 0 or the uv error (UV_ENOENT when not
 * installed). */
static int child_spawn(fx_child *c, uv_loop_t *loop, char **argv) {
  return fx_child_try_start(c, loop, (const char *const *)argv);
}

static const char *mock_bin(void) {
  const char *b = getenv("APNS_MOCK_BIN");
  return b && *b ? b : APNS_MOCK_BIN_DEFAULT;
}

typedef struct {
  uv_loop_t loop;
  fx_child mock, tool;
  int port;
  char dir[512];
  char portstr[16];
  int tool_missing;
  void (*start_tool)(void *cli);
  const char *payload_file;
} cli;

/* The mock's first stdout line is its port: then start the client tool. */
static void mock_line(fx_child *c, int from_stderr, const char *p, size_t n) {
  cli *x = c->data;
  (void)p, (void)n;
  if (from_stderr || x->port != 0 || strchr(fx_child_out(c), '\n') == NULL) return;
  x->port = atoi(fx_child_out(c));
  ASSERT_GT(x->port, 0);
  snprintf(x->portstr, sizeof x->portstr, "%d", x->port);
  x->start_tool(x);
}

static void tool_exit(fx_child *c) {
  cli *x = c->data;
  ASSERT_EQ(uv_process_kill(&x->mock.proc, SIGTERM), 0);
}

static void cli_run(cli *x, char **mock_argv) {
  x->mock.data = x->tool.data = x;
  x->mock.on_output = mock_line;
  x->tool.on_done = tool_exit;
  ASSERT_EQ(child_spawn(&x->mock, &x->loop, mock_argv), 0);
  ASSERT_EQ(uv_run(&x->loop, UV_RUN_DEFAULT), 0);
  ASSERT_TRUE(x->mock.exited);
  if (x->mock.status != 0 || x->mock.term_signal != 0) printf("mock stderr:\n%s\n", fx_child_err(&x->mock));
  ASSERT_EQ(x->mock.term_signal, 0);
  ASSERT_EQ(x->mock.status, 0);
  ASSERT_EQ(uv_loop_close(&x->loop), 0);
}

static void curl_start(void *arg) {
  cli *x = arg;
  char resolve[64], url[128], cacert[600], cert[600], key[600];
  snprintf(resolve, sizeof resolve, "localhost:%d:127.0.0.1", x->port);
  snprintf(url, sizeof url, "https://localhost:%d/3/device/abcd", x->port);
  snprintf(cacert, sizeof cacert, "%s/ca.pem", x->dir);
  snprintf(cert, sizeof cert, "%s/client.pem", x->dir);
  snprintf(key, sizeof key, "%s/client-key.pem", x->dir);
  char *argv[] = {"curl",
                  "-sS",
                  "--http2",
                  "--resolve",
                  resolve,
                  "--cacert",
                  cacert,
                  "--cert",
                  cert,
                  "--key",
                  key,
                  "-H",
                  "apns-id: 11111111-2222-4333-8444-555555555555",
                  "-D",
                  "-",
                  "-o",
                  "/dev/null",
                  "-d",
                  "{\"aps\":{}}",
                  url,
                  NULL};
  int rv = child_spawn(&x->tool, &x->loop, argv);
  if (rv == UV_ENOENT) {
    x->tool_missing = 1;
    ASSERT_EQ(uv_process_kill(&x->mock.proc, SIGTERM), 0);
    return;
  }
  ASSERT_EQ(rv, 0);
}

TEST(mock_cli_curl) {
  test_need_program("curl");
  cli x;
  memset(&x, 0, sizeof x);
  ASSERT_EQ(uv_loop_init(&x.loop), 0);
  snprintf(x.dir, sizeof x.dir, "%s/certs", test_tmpdir());
  x.start_tool = curl_start;
  char *argv[] = {(char *)mock_bin(), "--listen",        "127.0.0.1:0", "--self-signed", x.dir,
                  "--topic",          "com.example.cli", NULL};
  cli_run(&x, argv);
  /* scripts/deps installs curl: a missing one is a failure, not a skip. */
  if (x.tool_missing) test__fail(__FILE__, __LINE__, "curl is not installed (scripts/deps installs it)");
  if (!x.tool.exited || x.tool.status != 0) printf("curl stderr:\n%s\n", fx_child_err(&x.tool));
  ASSERT_EQ(x.tool.status, 0);
  ASSERT_TRUE(strstr(fx_child_out(&x.tool), "HTTP/2 200") != NULL);
  ASSERT_TRUE(strstr(fx_child_out(&x.tool), "apns-id: 11111111-2222-4333-8444-555555555555") != NULL);
  ASSERT_TRUE(strstr(fx_child_err(&x.mock), "connections=1 requests=1 responses=1") != NULL);
  ASSERT_TRUE(strstr(fx_child_err(&x.mock), " 200=1") != NULL);
  ASSERT_EQ(strchr(fx_child_err(&x.mock), '\n') - fx_child_err(&x.mock) + 1,
            (long)strlen(fx_child_err(&x.mock))); /* one line */
  fx_child_free(&x.mock);
  fx_child_free(&x.tool);
}

/* Two requests on one curl run: without a token, then with one signed by the key --self-signed wrote. */
static void curl_token_start(void *arg) {
  cli *x = arg;
  static char resolve[64], url[128], cacert[600], keyfile[600], auth[700];
  char err[256], *jwt;
  apns__jwt_signer *s;
  snprintf(resolve, sizeof resolve, "localhost:%d:127.0.0.1", x->port);
  snprintf(url, sizeof url, "https://localhost:%d/3/device/abcd", x->port);
  snprintf(cacert, sizeof cacert, "%s/ca.pem", x->dir);
  snprintf(keyfile, sizeof keyfile, "%s/token-key.p8", x->dir);
  ASSERT_OK(apns__jwt_signer_new(&s, keyfile, NULL, 0, "ABC123DEFG", TEAM, err, sizeof err));
  ASSERT_OK(apns__jwt_sign(s, (int64_t)time(NULL), &jwt, NULL));
  snprintf(auth, sizeof auth, "authorization: bearer %s", jwt);
  apns__free(jwt);
  apns__jwt_signer_free(s);
  char *argv[] = {"curl",
                  "-sS",
                  "--http2",
                  "--resolve",
                  resolve,
                  "--cacert",
                  cacert,
                  "-H",
                  "apns-topic: com.example.app",
                  "-D",
                  "-",
                  "-d",
                  "{\"aps\":{}}",
                  url,
                  "--next",
                  "--http2",
                  "--resolve",
                  resolve,
                  "--cacert",
                  cacert,
                  "-H",
                  "apns-topic: com.example.app",
                  "-H",
                  auth,
                  "-D",
                  "-",
                  "-o",
                  "/dev/null",
                  "-d",
                  "{\"aps\":{}}",
                  url,
                  NULL};
  int rv = child_spawn(&x->tool, &x->loop, argv);
  if (rv == UV_ENOENT) {
    x->tool_missing = 1;
    ASSERT_EQ(uv_process_kill(&x->mock.proc, SIGTERM), 0);
    return;
  }
  ASSERT_EQ(rv, 0);
}

TEST(mock_cli_token_curl) {
  test_need_program("curl");
  cli x;
  memset(&x, 0, sizeof x);
  ASSERT_EQ(uv_loop_init(&x.loop), 0);
  snprintf(x.dir, sizeof x.dir, "%s/certs", test_tmpdir());
  x.start_tool = curl_token_start;
  char *argv[] = {(char *)mock_bin(), "--listen", "127.0.0.1:0", "--self-signed", x.dir, "--no-client-auth", NULL};
  cli_run(&x, argv);
  if (x.tool_missing) test__fail(__FILE__, __LINE__, "curl is not installed (scripts/deps installs it)");
  if (x.tool.status != 0) printf("curl stderr:\n%s\n", fx_child_err(&x.tool));
  ASSERT_EQ(x.tool.status, 0);
  const char *refused = strstr(fx_child_out(&x.tool), "HTTP/2 403"),
             *ok = strstr(fx_child_out(&x.tool), "HTTP/2 200");
  ASSERT_NOT_NULL(refused);
  ASSERT_NOT_NULL(ok);
  ASSERT_LT(refused, ok);
  ASSERT_TRUE(strstr(fx_child_out(&x.tool), "{\"reason\":\"MissingProviderToken\"}") != NULL);
  ASSERT_TRUE(strstr(fx_child_err(&x.mock), "tokens_accepted=1 streams_raised=1") != NULL);
  ASSERT_TRUE(strstr(fx_child_err(&x.mock), " 200=1 403=1") != NULL);
  /* The key is private to its owner, as the other keys. */
  char keyfile[600];
  struct stat st;
  snprintf(keyfile, sizeof keyfile, "%s/token-key.p8", x.dir);
  ASSERT_EQ(stat(keyfile, &st), 0);
  ASSERT_EQ(st.st_mode & 0777, 0600);
  fx_child_free(&x.mock);
  fx_child_free(&x.tool);
}

static void h2load_start(void *arg) {
  cli *x = arg;
  char url[128];
  snprintf(url, sizeof url, "https://127.0.0.1:%d/3/device/abcd", x->port);
  char *argv[] = {"h2load", "-n", "100", "-c", "1", "-m", "10", "-d", (char *)x->payload_file, url, NULL};
  int rv = child_spawn(&x->tool, &x->loop, argv);
  if (rv == UV_ENOENT) {
    x->tool_missing = 1;
    ASSERT_EQ(uv_process_kill(&x->mock.proc, SIGTERM), 0);
    return;
  }
  ASSERT_EQ(rv, 0);
}

TEST(mock_cli_h2load) {
  test_need_program("h2load");
  cli x;
  memset(&x, 0, sizeof x);
  ASSERT_EQ(uv_loop_init(&x.loop), 0);
  snprintf(x.dir, sizeof x.dir, "%s/certs", test_tmpdir());
  char payload[600];
  snprintf(payload, sizeof payload, "%s/payload.json", test_tmpdir());
  FILE *f = fopen(payload, "w");
  ASSERT_NOT_NULL(f);
  fputs("{\"aps\":{\"alert\":\"hi\"}}", f);
  fclose(f);
  x.payload_file = payload;
  x.start_tool = h2load_start;
  char *argv[] = {(char *)mock_bin(), "--listen",        "127.0.0.1:0", "--self-signed", x.dir,
                  "--no-client-auth", "--no-token-auth", NULL};
  cli_run(&x, argv);
  if (x.tool_missing)
    test__fail(__FILE__, __LINE__, "h2load is not installed (scripts/deps installs nghttp2-client)");
  if (x.tool.status != 0 || strstr(fx_child_out(&x.tool), "100 succeeded") == NULL)
    printf("h2load:\n%s\n%s\n", fx_child_out(&x.tool), fx_child_err(&x.tool));
  ASSERT_EQ(x.tool.status, 0);
  ASSERT_TRUE(strstr(fx_child_out(&x.tool), "100 succeeded, 0 failed, 0 errored") != NULL);
  ASSERT_TRUE(strstr(fx_child_out(&x.tool), "100 2xx") != NULL);
  ASSERT_TRUE(strstr(fx_child_err(&x.mock), "requests=100 responses=100") != NULL);
  fx_child_free(&x.mock);
  fx_child_free(&x.tool);
}

TEST(mock_cli_help_and_usage_errors) {
  static const struct {
    const char *arg;
    int status;
    const char *text; /* in stdout for 0, stderr otherwise */
  } cases[] = {
      {"--help", 0, "--token-key KEYID=FILE"},
      {"--bogus", 2, "usage"},
      {"--delay-ms=x", 2, "not a number"},
      {"--streams=5", 2, "A,B"},
      {"--token-key=ABC123DEFG", 2, "KEYID=FILE"},
      {"--token-key=ABC123DEFG=/nonexistent/key.p8", 1, "/nonexistent/key.p8"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    uv_loop_t loop;
    fx_child c;
    memset(&c, 0, sizeof c);
    ASSERT_EQ(uv_loop_init(&loop), 0);
    char *argv[] = {(char *)mock_bin(), (char *)cases[i].arg, "--no-tls", NULL};
    if (i == 0) argv[2] = NULL;
    ASSERT_EQ(child_spawn(&c, &loop, argv), 0);
    ASSERT_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
    ASSERT_EQ(uv_loop_close(&loop), 0);
    ASSERT_EQ(c.status, cases[i].status);
    ASSERT_TRUE(strstr(cases[i].status == 0 ? fx_child_out(&c) : fx_child_err(&c), cases[i].text) != NULL);
    fx_child_free(&c);
  }
}

/* --self-signed DIR never writes over an earlier run's certificates: a second mock on the same DIR serves with
 * the first one's (the files stay byte for byte, and clients of either connect with them), and a set that is
 * incomplete or made for another --topic is refused, naming the file. */
typedef struct {
  uv_loop_t *loop;
  apns_conn *conn;
  int done, closed, status, err;
} reuse_cli;

static void reuse_resp(int err, const apns_response *res, void *data) {
  reuse_cli *r = data;
  r->err = err;
  r->status = res->status;
  r->done = 1;
}

static void reuse_connected(apns_conn *c, int status) {
  reuse_cli *r = apns_conn_data(c);
  static const char body[] = "{\"aps\":{}}";
  apns_request req;
  if (status != 0) {
    r->err = status;
    r->done = 1;
    return;
  }
  apns_request_init(&req);
  req.path = "/3/device/abcd";
  req.body = body;
  req.body_len = sizeof body - 1;
  req.timeout_ms = 5000;
  ASSERT_OK(apns_conn_post(c, &req, reuse_resp, r));
}

static void reuse_closed(apns_conn *c) {
  ((reuse_cli *)apns_conn_data(c))->closed = 1;
}

static void reuse_request(uv_loop_t *loop, const char *dir, int port) {
  char ca[600], cert[600], key[600], err[256] = "";
  reuse_cli r;
  apns_conn_options o;
  apns_tls_options tlso = APNS_TLS_OPTIONS_INIT;
  memset(&r, 0, sizeof r);
  apns_conn_options_init(&o);
  o.tls = &tlso;
  snprintf(ca, sizeof ca, "%s/ca.pem", dir);
  snprintf(cert, sizeof cert, "%s/client.pem", dir);
  snprintf(key, sizeof key, "%s/client-key.pem", dir);
  o.host = "127.0.0.1";
  o.port = (uint16_t)port;
  tlso.ca_file = ca;
  tlso.cert_file = cert;
  tlso.key_file = key;
  tlso.verify_name = "localhost";
  o.on_connect = reuse_connected;
  o.data = &r;
  ASSERT_OK(apns_conn_open(loop, &r.conn, &o, err, sizeof err));
  while (!r.done) ASSERT_NE(uv_run(loop, UV_RUN_ONCE), 0);
  ASSERT_OK(r.err);
  ASSERT_EQ(r.status, 200);
  ASSERT_OK(apns_conn_close(r.conn, reuse_closed));
  while (!r.closed) ASSERT_NE(uv_run(loop, UV_RUN_ONCE), 0);
}

static char *slurp(const char *dir, const char *name) {
  char path[600];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "rb");
  ASSERT_NOT_NULL(f);
  char *buf = calloc(1, 65536);
  size_t n = fread(buf, 1, 65535, f);
  ASSERT_GT(n, 0);
  fclose(f);
  return buf;
}

static void wait_port(uv_loop_t *loop, fx_child *c) {
  while (strchr(fx_child_out(c), '\n') == NULL) {
    ASSERT_EQ(c->exited, 0);
    ASSERT_NE(uv_run(loop, UV_RUN_ONCE), 0);
  }
}

static void run_refused(uv_loop_t *loop, char **argv, const char *want1, const char *want2) {
  fx_child c;
  memset(&c, 0, sizeof c);
  ASSERT_EQ(child_spawn(&c, loop, argv), 0);
  ASSERT_EQ(uv_run(loop, UV_RUN_DEFAULT), 0);
  if (c.status != 1 || !strstr(fx_child_err(&c), want1) || !strstr(fx_child_err(&c), want2))
    printf("stderr: %s\n", fx_child_err(&c));
  ASSERT_EQ(c.status, 1);
  ASSERT_TRUE(strstr(fx_child_err(&c), want1) != NULL);
  ASSERT_TRUE(strstr(fx_child_err(&c), want2) != NULL);
  fx_child_free(&c);
}

TEST(mock_cli_self_signed_reuses_dir) {
  static const char *const names[] = {"ca.pem",     "server.pem",     "server-key.pem",
                                      "client.pem", "client-key.pem", "token-key.p8"};
  uv_loop_t loop;
  fx_child a, b;
  char dir[512], *before[6];
  memset(&a, 0, sizeof a);
  memset(&b, 0, sizeof b);
  ASSERT_EQ(uv_loop_init(&loop), 0);
  snprintf(dir, sizeof dir, "%s/certs", test_tmpdir());
  char *argv[] = {(char *)mock_bin(), "--listen", "127.0.0.1:0", "--self-signed", dir, NULL};
  ASSERT_EQ(child_spawn(&a, &loop, argv), 0);
  wait_port(&loop, &a);
  for (int i = 0; i < 6; i++) before[i] = slurp(dir, names[i]);
  ASSERT_EQ(child_spawn(&b, &loop, argv), 0);
  wait_port(&loop, &b);
  for (int i = 0; i < 6; i++) {
    char *now = slurp(dir, names[i]);
    if (strcmp(now, before[i]) != 0) test__fail(__FILE__, __LINE__, "%s was replaced by the second mock", names[i]);
    free(now);
    free(before[i]);
  }
  /* Clients with DIR's files get through to both. */
  reuse_request(&loop, dir, atoi(fx_child_out(&a)));
  reuse_request(&loop, dir, atoi(fx_child_out(&b)));
  ASSERT_EQ(uv_process_kill(&a.proc, SIGTERM), 0);
  ASSERT_EQ(uv_process_kill(&b.proc, SIGTERM), 0);
  ASSERT_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
  ASSERT_EQ(a.status, 0);
  ASSERT_EQ(b.status, 0);
  fx_child_free(&a);
  fx_child_free(&b);

  char *other[] = {(char *)mock_bin(), "--listen", "127.0.0.1:0", "--self-signed", dir, "--topic", "com.other", NULL};
  run_refused(&loop, other, "client.pem", "--topic");
  char path[600];
  snprintf(path, sizeof path, "%s/client.pem", dir);
  ASSERT_EQ(unlink(path), 0);
  run_refused(&loop, argv, "client.pem", "remove them");
  ASSERT_EQ(uv_loop_close(&loop), 0);
}

TEST_SUITE(mock){
    TEST_ENTRY(mock_uuid),
    TEST_ENTRY(mock_conn_echo_200),
    TEST_ENTRY(mock_conn_generated_id),
    TEST_ENTRY(mock_conn_prefixes),
    TEST_ENTRY(mock_conn_reasons),
    TEST_ENTRY(mock_conn_streams_raise),
    TEST_ENTRY(mock_conn_goaway_after),
    TEST_ENTRY(mock_conn_drop_after),
    TEST_ENTRY(mock_conn_delay_and_pause),
    TEST_ENTRY(mock_conn_holds_of_two_lengths_each_at_its_due),
    TEST_ENTRY(mock_conn_reset_while_held),
    TEST_ENTRY(mock_conn_hook),
    TEST_ENTRY(mock_conn_garbage_is_fatal),
    TEST_ENTRY(mock_conn_alloc_failure),
    TEST_ENTRY(mock_conn_header_checks),
    TEST_ENTRY(mock_p8_key),
    TEST_ENTRY(mock_conn_token_auth),
    TEST_ENTRY(mock_conn_token_many_streams),
    TEST_ENTRY(mock_conn_token_alloc_failure),
    TEST_ENTRY(mock_loop_delay),
    TEST_ENTRY(mock_loop_pause),
    TEST_ENTRY(mock_loop_drop_connections),
    TEST_ENTRY(mock_loop_goaway_closes),
    TEST_ENTRY(mock_loop_drop_after_closes),
    TEST_ENTRY(mock_start_bad_options),
    TEST_ENTRY(mock_loop_tls_client_cert),
    TEST_ENTRY(mock_loop_tls_no_client_cert_refused),
    TEST_ENTRY(mock_loop_tls_cert_topic),
    TEST_ENTRY(mock_loop_token_streams),
    TEST_ENTRY(mock_start_bad_token_keys),
    TEST_ENTRY(mock_cli_curl),
    TEST_ENTRY(mock_cli_h2load),
    TEST_ENTRY(mock_cli_token_curl),
    TEST_ENTRY(mock_cli_help_and_usage_errors),
    TEST_ENTRY(mock_cli_self_signed_reuses_dir),
    TEST_SUITE_END,
};
