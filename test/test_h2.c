/* The HTTP/2 client session against a real nghttp2 server session, bytes pumped in memory (no TLS, no sockets).
 *
 * The server answers by path: /ok (200, apns-id echoed), /unique (200 with apns-unique-id), /gone (410 Unregistered
 * with a timestamp), /bad (400 BadDeviceToken), /weird (400 with an unknown reason), /big/N (200 with an N-byte
 * body), /rst/N (RST_STREAM with error code N), /hold (no answer until the test says), /early (413 as soon as the
 * HEADERS arrive, before the body). Every client callback is counted per request: each must run exactly once. */
#include "harness.h"

#include "../lib/alloc.h"
#include "../lib/h2.h"
#include <apns.h>

#define AUTHORITY "api.push.apple.com"
#define MAX_SRV_HEADERS 16

/* ------------------------------------------------------------------------------------------------------------------
 * The in-memory server (plain nghttp2, default allocator: its memory is not counted by the harness)
 * ------------------------------------------------------------------------------------------------------------------
 */
typedef struct srv_stream {
  int32_t id;
  char method[16], scheme[16], path[256], authority[128];
  uint8_t path_flags, authority_flags;
  int nhdrs;
  char names[MAX_SRV_HEADERS][64], values[MAX_SRV_HEADERS][512];
  uint8_t flags[MAX_SRV_HEADERS];
  uint8_t *body;
  size_t body_len;
  int complete, responded, closed;
  uint32_t close_code;
  char *resp;
  size_t resp_len, resp_off;
  int trailers;
  struct srv_stream *next;
} srv_stream;

typedef struct server {
  nghttp2_session *s;
  srv_stream *streams;
  int requests;     /* complete requests seen */
  int headers_seen; /* request HEADERS seen */
  int rst_recv;
  uint32_t last_rst_code;
  int priority_frames, headers_with_priority;
  int goaway_recv;
  int respond_on_receive; /* 0: the test calls srv_answer_all() */
} server;

static srv_stream *srv_find(server *srv, int32_t id) {
  for (srv_stream *st = srv->streams; st; st = st->next)
    if (st->id == id) return st;
  return NULL;
}

static void copy_str(char *dst, size_t cap, const uint8_t *src, size_t len) {
  if (len >= cap) len = cap - 1;
  memcpy(dst, src, len);
  dst[len] = '\0';
}

static const char *srv_header(const srv_stream *st, const char *name) {
  for (int i = 0; i < st->nhdrs; i++)
    if (strcmp(st->names[i], name) == 0) return st->values[i];
  return NULL;
}

static int srv_header_flags(const srv_stream *st, const char *name) {
  for (int i = 0; i < st->nhdrs; i++)
    if (strcmp(st->names[i], name) == 0) return st->flags[i];
  return -1;
}

static ssize_t srv_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                        nghttp2_data_source *src, void *ud) {
  srv_stream *st = src->ptr;
  size_t n = st->resp_len - st->resp_off;
  (void)ud;
  if (n > len) n = len;
  memcpy(buf, st->resp + st->resp_off, n);
  st->resp_off += n;
  if (st->resp_off == st->resp_len) {
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    if (st->trailers) {
      nghttp2_nv tr[] = {{(uint8_t *)"x-trailer", (uint8_t *)"late", 9, 4, NGHTTP2_NV_FLAG_NONE}};
      *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
      ASSERT_OK(nghttp2_submit_trailer(s, id, tr, 1));
    }
  }
  return (ssize_t)n;
}

static void srv_reply_ex(server *srv, srv_stream *st, const char *status, const char *body, size_t body_len,
                         const char *unique_id, const nghttp2_nv *more, size_t nmore) {
  char apns_id[64];
  const char *echo = srv_header(st, "apns-id");
  nghttp2_nv nva[32];
  size_t n = 0;
  nghttp2_data_provider prd;
  if (echo)
    snprintf(apns_id, sizeof apns_id, "%s", echo);
  else
    snprintf(apns_id, sizeof apns_id, "00000000-0000-0000-0000-%012d", (int)st->id);
#define NV(a, b) nva[n++] = (nghttp2_nv){(uint8_t *)(a), (uint8_t *)(b), strlen(a), strlen(b), NGHTTP2_NV_FLAG_NONE}
  NV(":status", status);
  NV("apns-id", apns_id);
  if (unique_id) NV("apns-unique-id", unique_id);
  if (body_len) NV("content-type", "application/json");
#undef NV
  for (size_t i = 0; i < nmore; i++) nva[n++] = more[i];
  st->responded = 1;
  if (body_len == 0) {
    ASSERT_OK(nghttp2_submit_response(srv->s, st->id, nva, n, NULL));
    return;
  }
  st->resp = malloc(body_len);
  memcpy(st->resp, body, body_len);
  st->resp_len = body_len;
  prd.source.ptr = st;
  prd.read_callback = srv_read;
  ASSERT_OK(nghttp2_submit_response(srv->s, st->id, nva, n, &prd));
}

static void srv_reply(server *srv, srv_stream *st, const char *status, const char *body, size_t body_len,
                      const char *unique_id) {
  srv_reply_ex(srv, st, status, body, body_len, unique_id, NULL, 0);
}

static void srv_answer(server *srv, srv_stream *st) {
  const char *p = st->path;
  char json[128];
  if (st->responded || st->closed) return;
  if (strcmp(p, "/ok") == 0 || strncmp(p, "/3/device/", 10) == 0 || strcmp(p, "/hold") == 0) {
    srv_reply(srv, st, "200", NULL, 0, NULL);
  } else if (strcmp(p, "/unique") == 0) {
    srv_reply(srv, st, "200", NULL, 0, "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee");
  } else if (strcmp(p, "/gone") == 0) {
    snprintf(json, sizeof json, "{\"reason\":\"Unregistered\",\"timestamp\":1700000000123}");
    srv_reply(srv, st, "410", json, strlen(json), NULL);
  } else if (strcmp(p, "/bad") == 0) {
    snprintf(json, sizeof json, "{\"reason\":\"BadDeviceToken\"}");
    srv_reply(srv, st, "400", json, strlen(json), NULL);
  } else if (strcmp(p, "/weird") == 0) {
    snprintf(json, sizeof json, "{\"reason\":\"SomethingNew\"}");
    srv_reply(srv, st, "400", json, strlen(json), NULL);
  } else if (strcmp(p, "/gone-real") == 0) {
    snprintf(json, sizeof json, "{\"reason\":\"ExpiredToken\",\"timestamp\":1700000000456.0}");
    srv_reply(srv, st, "410", json, strlen(json), NULL);
  } else if (strncmp(p, "/ts/", 4) == 0) {
    snprintf(json, sizeof json, "{\"reason\":\"Unregistered\",\"timestamp\":%s}", p + 4);
    srv_reply(srv, st, "410", json, strlen(json), NULL);
  } else if (strcmp(p, "/many") == 0) {
    static char names[12][16], values[12][16];
    nghttp2_nv more[12];
    for (int i = 0; i < 12; i++) {
      snprintf(names[i], sizeof names[i], "x-h%d", i);
      snprintf(values[i], sizeof values[i], "value-%d", i * 11);
      more[i] = (nghttp2_nv){(uint8_t *)names[i], (uint8_t *)values[i], strlen(names[i]), strlen(values[i]),
                             NGHTTP2_NV_FLAG_NONE};
    }
    srv_reply_ex(srv, st, "200", NULL, 0, NULL, more, 12);
  } else if (strcmp(p, "/nginx") == 0) { /* what nginx adds to every response, beside the apns-id */
    static const char *const nv[4][2] = {{"server", "nginx/1.22.1"},
                                         {"date", "Tue, 01 Dec 2026 11:17:21 GMT"},
                                         {"content-type", "text/plain"},
                                         {"content-length", "0"}};
    nghttp2_nv more[4];
    for (int i = 0; i < 4; i++)
      more[i] = (nghttp2_nv){(uint8_t *)nv[i][0], (uint8_t *)nv[i][1], strlen(nv[i][0]), strlen(nv[i][1]),
                             NGHTTP2_NV_FLAG_NONE};
    srv_reply_ex(srv, st, "200", NULL, 0, NULL, more, 4);
  } else if (strcmp(p, "/bighdr") == 0) {
    static char big[40000];
    memset(big, 'h', sizeof big - 1);
    nghttp2_nv more = {(uint8_t *)"x-big", (uint8_t *)big, 5, sizeof big - 1, NGHTTP2_NV_FLAG_NONE};
    srv_reply_ex(srv, st, "200", NULL, 0, NULL, &more, 1);
  } else if (strcmp(p, "/info") == 0) {
    nghttp2_nv info[] = {{(uint8_t *)":status", (uint8_t *)"103", 7, 3, NGHTTP2_NV_FLAG_NONE},
                         {(uint8_t *)"link", (uint8_t *)"</style.css>", 4, 12, NGHTTP2_NV_FLAG_NONE}};
    ASSERT_GT(nghttp2_submit_headers(srv->s, NGHTTP2_FLAG_NONE, st->id, NULL, info, 2, NULL), -1);
    srv_reply(srv, st, "400", "{\"reason\":\"BadTopic\"}", 21, NULL);
  } else if (strcmp(p, "/trailers") == 0) {
    st->trailers = 1;
    srv_reply(srv, st, "400", "{\"reason\":\"MissingTopic\"}", 25, NULL);
  } else if (strcmp(p, "/notjson") == 0) {
    srv_reply(srv, st, "500", "oops", 4, NULL);
  } else if (strncmp(p, "/big/", 5) == 0) {
    size_t len = (size_t)atol(p + 5);
    char *body = malloc(len);
    for (size_t i = 0; i < len; i++) body[i] = (char)('a' + i % 26);
    srv_reply(srv, st, "200", body, len, NULL);
    free(body);
  } else if (strncmp(p, "/rst/", 5) == 0) {
    st->responded = 1;
    ASSERT_OK(nghttp2_submit_rst_stream(srv->s, NGHTTP2_FLAG_NONE, st->id, (uint32_t)atoi(p + 5)));
  } else if (strcmp(p, "/early") == 0) {
    snprintf(json, sizeof json, "{\"reason\":\"PayloadTooLarge\"}");
    srv_reply(srv, st, "413", json, strlen(json), NULL);
  } else {
    srv_reply(srv, st, "404", "{\"reason\":\"BadPath\"}", 20, NULL);
  }
}

static void srv_answer_all(server *srv) {
  for (srv_stream *st = srv->streams; st; st = st->next)
    if (st->complete) srv_answer(srv, st);
}

static int srv_on_begin_headers(nghttp2_session *s, const nghttp2_frame *frame, void *ud) {
  server *srv = ud;
  (void)s;
  if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  srv_stream *st = calloc(1, sizeof *st);
  st->id = frame->hd.stream_id;
  st->next = srv->streams;
  srv->streams = st;
  srv->headers_seen++;
  return 0;
}

static int srv_on_header(nghttp2_session *s, const nghttp2_frame *frame, const uint8_t *name, size_t namelen,
                         const uint8_t *value, size_t valuelen, uint8_t flags, void *ud) {
  server *srv = ud;
  srv_stream *st = srv_find(srv, frame->hd.stream_id);
  (void)s;
  if (st == NULL) return 0;
  if (strcmp((const char *)name, ":method") == 0) {
    copy_str(st->method, sizeof st->method, value, valuelen);
  } else if (strcmp((const char *)name, ":scheme") == 0) {
    copy_str(st->scheme, sizeof st->scheme, value, valuelen);
  } else if (strcmp((const char *)name, ":path") == 0) {
    copy_str(st->path, sizeof st->path, value, valuelen);
    st->path_flags = flags;
  } else if (strcmp((const char *)name, ":authority") == 0) {
    copy_str(st->authority, sizeof st->authority, value, valuelen);
    st->authority_flags = flags;
  } else if (st->nhdrs < MAX_SRV_HEADERS) {
    copy_str(st->names[st->nhdrs], sizeof st->names[0], name, namelen);
    copy_str(st->values[st->nhdrs], sizeof st->values[0], value, valuelen);
    st->flags[st->nhdrs++] = flags;
  }
  return 0;
}

static int srv_on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len, void *ud) {
  server *srv = ud;
  srv_stream *st = srv_find(srv, id);
  (void)s, (void)flags;
  if (st == NULL) return 0;
  st->body = realloc(st->body, st->body_len + len);
  memcpy(st->body + st->body_len, data, len);
  st->body_len += len;
  return 0;
}

static int srv_on_frame_recv(nghttp2_session *s, const nghttp2_frame *frame, void *ud) {
  server *srv = ud;
  srv_stream *st = srv_find(srv, frame->hd.stream_id);
  (void)s;
  switch (frame->hd.type) {
  case NGHTTP2_PRIORITY:
    srv->priority_frames++;
    break;
  case NGHTTP2_RST_STREAM:
    srv->rst_recv++;
    srv->last_rst_code = frame->rst_stream.error_code;
    break;
  case NGHTTP2_GOAWAY:
    srv->goaway_recv++;
    break;
  case NGHTTP2_HEADERS:
    if (frame->hd.flags & NGHTTP2_FLAG_PRIORITY) srv->headers_with_priority++;
    if (st && strcmp(st->path, "/early") == 0) srv_answer(srv, st);
    /* fall through */
  case NGHTTP2_DATA:
    if (st && (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
      st->complete = 1;
      srv->requests++;
      if (srv->respond_on_receive && strcmp(st->path, "/hold") != 0) srv_answer(srv, st);
    }
    break;
  default:
    break;
  }
  return 0;
}

static int srv_on_close(nghttp2_session *s, int32_t id, uint32_t code, void *ud) {
  server *srv = ud;
  srv_stream *st = srv_find(srv, id);
  (void)s;
  if (st) {
    st->closed = 1;
    st->close_code = code;
  }
  return 0;
}

/* max_streams 0: the first SETTINGS is not sent (the test sends it later). */
static void srv_init(server *srv, uint32_t max_streams) {
  nghttp2_session_callbacks *cbs;
  memset(srv, 0, sizeof *srv);
  srv->respond_on_receive = 1;
  ASSERT_OK(nghttp2_session_callbacks_new(&cbs));
  nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, srv_on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cbs, srv_on_header);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, srv_on_data);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, srv_on_frame_recv);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, srv_on_close);
  ASSERT_OK(nghttp2_session_server_new(&srv->s, cbs, srv));
  nghttp2_session_callbacks_del(cbs);
  if (max_streams) {
    nghttp2_settings_entry iv = {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, max_streams};
    ASSERT_OK(nghttp2_submit_settings(srv->s, NGHTTP2_FLAG_NONE, &iv, 1));
  }
}

static void srv_settings(server *srv, uint32_t max_streams) {
  nghttp2_settings_entry iv = {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, max_streams};
  ASSERT_OK(nghttp2_submit_settings(srv->s, NGHTTP2_FLAG_NONE, &iv, 1));
}

static void srv_free(server *srv) {
  nghttp2_session_del(srv->s);
  while (srv->streams) {
    srv_stream *next = srv->streams->next;
    free(srv->streams->body);
    free(srv->streams->resp);
    free(srv->streams);
    srv->streams = next;
  }
}

/* ------------------------------------------------------------------------------------------------------------------
 * The client side: counted callbacks
 * ------------------------------------------------------------------------------------------------------------------
 */
typedef struct rec {
  int calls;
  int err;
  apns_delivery delivery;
  int status;
  int seq;
  apns_reason reason;
  char reason_text[64];
  char apns_id[64];
  char unique_id[64];
  int64_t timestamp;
  size_t body_len;
  int body_ok;
  size_t num_headers;
  char headers[512]; /* "name=value;" ... */
  int attempts;
} rec;

typedef struct tctx {
  apns__h2 *h2;
  int responses, errors, goaways, max_calls, ping_acks, seq;
  uint32_t last_max;
  uint32_t goaway_code;
  int32_t goaway_last;
  int goaway_seq;
  char goaway_reason[64];
  int goaway_reason_null;
  /* re-entrancy hooks */
  void (*on_end)(struct tctx *t, apns__req *req);
} tctx;

static tctx T;

static rec *rec_of(apns__req *req) {
  return apns__req_extra(req);
}

static void cb_response(void *ctx, apns__req *req, const apns_response *res) {
  tctx *t = ctx;
  rec *r = rec_of(req);
  ASSERT_TRUE(t == &T);
  ASSERT_EQ(r->calls, 0);
  r->calls++;
  r->err = 0;
  r->seq = ++t->seq;
  r->status = res->status;
  r->delivery = res->delivery;
  r->reason = res->reason;
  r->attempts = (int)res->attempts;
  snprintf(r->reason_text, sizeof r->reason_text, "%s", res->reason_text ? res->reason_text : "(null)");
  snprintf(r->apns_id, sizeof r->apns_id, "%s", res->apns_id ? res->apns_id : "(null)");
  snprintf(r->unique_id, sizeof r->unique_id, "%s", res->apns_unique_id ? res->apns_unique_id : "(null)");
  r->timestamp = res->timestamp_ms;
  r->body_len = res->body_len;
  r->body_ok = res->body == NULL ? res->body_len == 0 : res->body[res->body_len] == '\0';
  r->num_headers = res->num_headers;
  r->headers[0] = '\0';
  for (size_t i = 0; i < res->num_headers; i++) {
    size_t used = strlen(r->headers);
    ASSERT_NOT_NULL(res->headers[i].name);
    ASSERT_NOT_NULL(res->headers[i].value);
    ASSERT_TRUE(res->headers[i].name[0] != ':');
    snprintf(r->headers + used, sizeof r->headers - used, "%s=%s;", res->headers[i].name,
             strlen(res->headers[i].value) < 64 ? res->headers[i].value : "(long)");
  }
  t->responses++;
  if (t->on_end) t->on_end(t, req);
}

static void cb_error(void *ctx, apns__req *req, int err, apns_delivery delivery) {
  tctx *t = ctx;
  rec *r = rec_of(req);
  ASSERT_EQ(r->calls, 0);
  ASSERT_NE(err, 0);
  r->calls++;
  r->err = err;
  r->delivery = delivery;
  r->seq = ++t->seq;
  t->errors++;
  if (t->on_end) t->on_end(t, req);
}

static void cb_goaway(void *ctx, uint32_t code, int32_t last, const char *reason) {
  tctx *t = ctx;
  t->goaways++;
  t->goaway_code = code;
  t->goaway_last = last;
  t->goaway_seq = ++t->seq;
  t->goaway_reason_null = reason == NULL;
  snprintf(t->goaway_reason, sizeof t->goaway_reason, "%s", reason ? reason : "");
}

static void cb_max(void *ctx, uint32_t max) {
  tctx *t = ctx;
  t->max_calls++;
  t->last_max = max;
}

static void cb_ping(void *ctx) {
  ((tctx *)ctx)->ping_acks++;
}

static const apns__h2_callbacks CBS = {cb_response, cb_error, cb_goaway, cb_max, cb_ping};

static apns__h2 *client_new(void) {
  memset(&T, 0, sizeof T);
  ASSERT_OK(apns__h2_new(&T.h2, AUTHORITY, &CBS, &T));
  return T.h2;
}

static apns__req *mkreq_full(const char *method, const char *path, const char *body, size_t body_len,
                             const char *apns_id) {
  apns_header h[] = {{"apns-topic", "com.example.app"}, {"apns-push-type", "alert"}, {"apns-id", apns_id}};
  apns_request desc = {sizeof(apns_request), method, path, h, apns_id ? 3 : 2, body, body_len, 0};
  apns__req *req;
  ASSERT_OK(apns__req_new(&req, &desc, sizeof(rec)));
  return req;
}

static apns__req *mkreq(const char *path) {
  return mkreq_full(NULL, path, "{\"aps\":{\"alert\":\"hi\"}}", 22, NULL);
}

/* Moves bytes both ways until neither side has anything to say. Returns the first client error (feed or
 * take_output), or 0. */
static int pump_rv(apns__h2 *h2, server *srv) {
  for (int round = 0; round < 100000; round++) {
    int moved = 0, rv;
    uint8_t *buf;
    size_t len;
    const uint8_t *out;
    ssize_t n;
    rv = apns__h2_take_output(h2, &buf, &len);
    if (rv != 0) return rv;
    if (len > 0) {
      n = nghttp2_session_mem_recv(srv->s, buf, len);
      apns__free(buf);
      ASSERT_EQ(n, (ssize_t)len);
      moved = 1;
    }
    while ((n = nghttp2_session_mem_send(srv->s, &out)) > 0) {
      rv = apns__h2_feed(h2, out, (size_t)n);
      if (rv != 0) return rv;
      moved = 1;
    }
    ASSERT_GE(n, 0);
    if (!moved) return 0;
  }
  ASSERT_TRUE(0);
  return 0;
}

static void pump(apns__h2 *h2, server *srv) {
  ASSERT_OK(pump_rv(h2, srv));
}

/* A client and a server that have exchanged SETTINGS (limit max_streams). */
static void connect_pair(server *srv, uint32_t max_streams) {
  client_new();
  srv_init(srv, max_streams);
  pump(T.h2, srv);
  ASSERT_EQ(T.max_calls, 1);
  ASSERT_UEQ(apns__h2_max_streams(T.h2), max_streams);
}

/* ------------------------------------------------------------------------------------------------------------------
 * Tests
 * ------------------------------------------------------------------------------------------------------------------
 */

TEST(h2_request_arrives_intact) {
  server srv;
  long live = test_alloc_live();
  connect_pair(&srv, 100);
  /* The client's SETTINGS as the server sees them. */
  ASSERT_UEQ(nghttp2_session_get_remote_settings(srv.s, NGHTTP2_SETTINGS_ENABLE_PUSH), 0);
  ASSERT_UEQ(nghttp2_session_get_remote_settings(srv.s, NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE), 1u << 20);

  apns__req *req = mkreq_full(NULL, "/3/device/0123abcd", "{\"aps\":{\"alert\":\"hi\"}}", 22,
                              "123e4567-e89b-12d3-a456-426614174000");
  char token[] = "bearer eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJ0ZWFtIn0.sig";
  nghttp2_nv auth = {(uint8_t *)"authorization", (uint8_t *)token, 13, strlen(token), NGHTTP2_NV_FLAG_NONE};
  int32_t id = apns__h2_submit(T.h2, req, &auth, 1);
  ASSERT_EQ(id, 1);
  memset(token, 'x', sizeof token - 1); /* extra headers are copied */
  ASSERT_EQ(apns__h2_in_flight(T.h2), 1);
  pump(T.h2, &srv);

  srv_stream *st = srv_find(&srv, 1);
  ASSERT_NOT_NULL(st);
  ASSERT_STREQ(st->method, "POST");
  ASSERT_STREQ(st->scheme, "https");
  ASSERT_STREQ(st->path, "/3/device/0123abcd");
  ASSERT_STREQ(st->authority, AUTHORITY);
  ASSERT_STREQ(srv_header(st, "apns-topic"), "com.example.app");
  ASSERT_STREQ(srv_header(st, "apns-push-type"), "alert");
  ASSERT_STREQ(srv_header(st, "apns-id"), "123e4567-e89b-12d3-a456-426614174000");
  ASSERT_STREQ(srv_header(st, "authorization"), "bearer eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJ0ZWFtIn0.sig");
  ASSERT_EQ(st->body_len, 22);
  ASSERT_MEMEQ(st->body, "{\"aps\":{\"alert\":\"hi\"}}", 22);
  /* HPACK: the receiver sees "never indexed" on :path, authorization and apns-id, and not on the constant ones. */
  ASSERT_TRUE(st->path_flags & NGHTTP2_NV_FLAG_NO_INDEX);
  ASSERT_TRUE(srv_header_flags(st, "authorization") & NGHTTP2_NV_FLAG_NO_INDEX);
  ASSERT_TRUE(srv_header_flags(st, "apns-id") & NGHTTP2_NV_FLAG_NO_INDEX);
  ASSERT_EQ(srv_header_flags(st, "apns-topic") & NGHTTP2_NV_FLAG_NO_INDEX, 0);
  ASSERT_EQ(st->authority_flags & NGHTTP2_NV_FLAG_NO_INDEX, 0);
  /* No PRIORITY frames, no priority in HEADERS. */
  ASSERT_EQ(srv.priority_frames, 0);
  ASSERT_EQ(srv.headers_with_priority, 0);

  rec *r = rec_of(req);
  ASSERT_EQ(r->calls, 1);
  ASSERT_EQ(r->status, 200);
  ASSERT_EQ(r->delivery, APNS_DELIVERY_RESPONDED);
  ASSERT_EQ(r->attempts, 1);
  ASSERT_STREQ(r->apns_id, "123e4567-e89b-12d3-a456-426614174000");
  ASSERT_STREQ(r->unique_id, "(null)");
  ASSERT_EQ(r->reason, APNS_REASON_NONE);
  ASSERT_STREQ(r->reason_text, "(null)");
  ASSERT_EQ(r->body_len, 0);
  ASSERT_TRUE(r->body_ok);
  ASSERT_EQ(r->num_headers, 1); /* apns-id (nghttp2 adds nothing) */
  ASSERT_EQ(apns__h2_in_flight(T.h2), 0);
  ASSERT_EQ(T.responses + T.errors, 1);

  /* A second request reuses the record and the HPACK table; a GET has no body. */
  apns__req *get = mkreq_full("GET", "/ok", NULL, 0, NULL);
  ASSERT_EQ(apns__h2_submit(T.h2, get, NULL, 0), 3);
  pump(T.h2, &srv);
  st = srv_find(&srv, 3);
  ASSERT_STREQ(st->method, "GET");
  ASSERT_STREQ(st->authority, AUTHORITY);
  ASSERT_EQ(st->body_len, 0);
  ASSERT_EQ(rec_of(get)->status, 200);
  ASSERT_STREQ(rec_of(get)->apns_id, "00000000-0000-0000-0000-000000000003");

  apns__h2_free(T.h2);
  ASSERT_EQ(rec_of(req)->calls, 1);
  apns__req_free(req);
  apns__req_free(get);
  srv_free(&srv);
  ASSERT_EQ(test_alloc_live(), live);
}

TEST(h2_error_responses) {
  server srv;
  connect_pair(&srv, 100);
  const char *paths[] = {"/gone", "/bad", "/weird", "/unique", "/notjson", "/nowhere"};
  apns__req *reqs[6];
  for (int i = 0; i < 6; i++) {
    reqs[i] = mkreq(paths[i]);
    ASSERT_GT(apns__h2_submit(T.h2, reqs[i], NULL, 0), 0);
  }
  pump(T.h2, &srv);
  ASSERT_EQ(T.responses, 6);
  ASSERT_EQ(T.errors, 0);
  rec *r = rec_of(reqs[0]);
  ASSERT_EQ(r->status, 410);
  ASSERT_EQ(r->reason, APNS_REASON_Unregistered);
  ASSERT_STREQ(r->reason_text, "Unregistered");
  ASSERT_EQ(r->timestamp, 1700000000123LL);
  ASSERT_EQ(r->body_len, strlen("{\"reason\":\"Unregistered\",\"timestamp\":1700000000123}"));
  ASSERT_TRUE(r->body_ok);
  ASSERT_EQ(r->num_headers, 2); /* apns-id, content-type */
  r = rec_of(reqs[1]);
  ASSERT_EQ(r->status, 400);
  ASSERT_EQ(r->reason, APNS_REASON_BadDeviceToken);
  ASSERT_STREQ(r->reason_text, "BadDeviceToken");
  ASSERT_EQ(r->timestamp, 0);
  r = rec_of(reqs[2]);
  ASSERT_EQ(r->status, 400);
  ASSERT_EQ(r->reason, APNS_REASON_UNKNOWN);
  ASSERT_STREQ(r->reason_text, "SomethingNew"); /* unknown reasons keep their text */
  r = rec_of(reqs[3]);
  ASSERT_EQ(r->status, 200);
  ASSERT_STREQ(r->unique_id, "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee");
  ASSERT_EQ(r->num_headers, 2);
  r = rec_of(reqs[4]);
  ASSERT_EQ(r->status, 500); /* a body that is not JSON: no reason, raw body kept */
  ASSERT_EQ(r->reason, APNS_REASON_NONE);
  ASSERT_STREQ(r->reason_text, "(null)");
  ASSERT_EQ(r->body_len, 4);
  r = rec_of(reqs[5]);
  ASSERT_EQ(r->status, 404);
  ASSERT_EQ(r->reason, APNS_REASON_BadPath);
  apns__h2_free(T.h2);
  for (int i = 0; i < 6; i++) {
    ASSERT_EQ(rec_of(reqs[i])->calls, 1);
    apns__req_free(reqs[i]);
  }
  srv_free(&srv);
}

TEST(h2_response_body_limit) {
  server srv;
  char path[32];
  connect_pair(&srv, 100);
  snprintf(path, sizeof path, "/big/%d", APNS__H2_MAX_BODY);
  apns__req *exact = mkreq(path);
  snprintf(path, sizeof path, "/big/%d", APNS__H2_MAX_BODY + 1);
  apns__req *over = mkreq(path);
  snprintf(path, sizeof path, "/big/%d", 3 * APNS__H2_MAX_BODY);
  apns__req *huge = mkreq(path);
  ASSERT_EQ(apns__h2_submit(T.h2, exact, NULL, 0), 1);
  ASSERT_EQ(apns__h2_submit(T.h2, over, NULL, 0), 3);
  ASSERT_EQ(apns__h2_submit(T.h2, huge, NULL, 0), 5);
  pump(T.h2, &srv);
  ASSERT_EQ(rec_of(exact)->calls, 1);
  ASSERT_EQ(rec_of(exact)->status, 200);
  ASSERT_EQ(rec_of(exact)->body_len, APNS__H2_MAX_BODY);
  ASSERT_TRUE(rec_of(exact)->body_ok);
  ASSERT_EQ(rec_of(over)->calls, 1);
  ASSERT_ERR(rec_of(over)->err, APNS_ERESPONSETOOLARGE);
  ASSERT_EQ(rec_of(over)->delivery, APNS_DELIVERY_UNKNOWN);
  ASSERT_EQ(rec_of(huge)->calls, 1);
  ASSERT_ERR(rec_of(huge)->err, APNS_ERESPONSETOOLARGE);
  /* We reset them (CANCEL) and the session lives on. */
  ASSERT_EQ(srv.rst_recv, 2);
  ASSERT_UEQ(srv.last_rst_code, NGHTTP2_CANCEL);
  ASSERT_EQ(apns__h2_in_flight(T.h2), 0);
  apns__req *after = mkreq("/ok");
  ASSERT_GT(apns__h2_submit(T.h2, after, NULL, 0), 0);
  pump(T.h2, &srv);
  ASSERT_EQ(rec_of(after)->status, 200);
  apns__h2_free(T.h2);
  ASSERT_EQ(T.responses + T.errors, 4);
  apns__req_free(exact);
  apns__req_free(over);
  apns__req_free(huge);
  apns__req_free(after);
  srv_free(&srv);
}

TEST(h2_large_request_body) {
  /* Bigger than the server's 64 KiB window and several frames: read straight from the request, in order. */
  server srv;
  size_t len = 200000;
  char *body = apns__malloc(len);
  for (size_t i = 0; i < len; i++) body[i] = (char)(i * 7 + i / 251);
  connect_pair(&srv, 100);
  apns__req *req = mkreq_full("PUT", "/ok", body, len, NULL);
  ASSERT_GT(apns__h2_submit(T.h2, req, NULL, 0), 0);
  pump(T.h2, &srv);
  srv_stream *st = srv_find(&srv, 1);
  ASSERT_EQ(st->body_len, len);
  ASSERT_MEMEQ(st->body, body, len);
  ASSERT_EQ(rec_of(req)->status, 200);
  apns__h2_free(T.h2);
  apns__req_free(req);
  apns__free(body);
  srv_free(&srv);
}

TEST(h2_early_response_stops_upload) {
  /* The server answers 413 before reading the body: we report it and reset our upload (never reading the request
   * after its callback). */
  server srv;
  size_t len = 300000;
  char *body = apns__calloc(1, len);
  connect_pair(&srv, 100);
  apns__req *req = mkreq_full(NULL, "/early", body, len, NULL);
  ASSERT_GT(apns__h2_submit(T.h2, req, NULL, 0), 0);
  pump(T.h2, &srv);
  ASSERT_EQ(rec_of(req)->calls, 1);
  ASSERT_EQ(rec_of(req)->status, 413);
  ASSERT_EQ(rec_of(req)->reason, APNS_REASON_PayloadTooLarge);
  ASSERT_LT(srv_find(&srv, 1)->body_len, len);
  ASSERT_EQ(srv.rst_recv, 1);
  ASSERT_UEQ(srv.last_rst_code, NGHTTP2_CANCEL);
  ASSERT_EQ(apns__h2_in_flight(T.h2), 0);
  apns__req_free(req); /* the owner may free it at once */
  pump(T.h2, &srv);
  apns__h2_free(T.h2);
  ASSERT_EQ(T.responses + T.errors, 1);
  apns__free(body);
  srv_free(&srv);
}

TEST(h2_limit_one_until_settings_then_1000) {
  server srv;
  enum { N = 1000 };
  static apns__req *reqs[N + 1];
  client_new();
  srv_init(&srv, 0); /* its SETTINGS come when the test says */
  ASSERT_UEQ(apns__h2_max_streams(T.h2), 1);
  apns__req *first = mkreq("/hold");
  apns__req *second = mkreq("/ok");
  ASSERT_EQ(apns__h2_submit(T.h2, first, NULL, 0), 1);
  ASSERT_ERR(apns__h2_submit(T.h2, second, NULL, 0), APNS_EBLOCKED);
  ASSERT_EQ(apns__h2_in_flight(T.h2), 1);
  /* As APNs does with token auth: one stream until a request is authorized, then 1000. */
  srv_settings(&srv, 1);
  pump(T.h2, &srv);
  ASSERT_EQ(T.max_calls, 1);
  ASSERT_UEQ(T.last_max, 1);
  ASSERT_EQ(srv.requests, 1);
  ASSERT_ERR(apns__h2_submit(T.h2, second, NULL, 0), APNS_EBLOCKED);
  srv_settings(&srv, N);
  pump(T.h2, &srv);
  ASSERT_EQ(T.max_calls, 2);
  ASSERT_UEQ(T.last_max, N);
  ASSERT_UEQ(apns__h2_max_streams(T.h2), N);
  srv_answer_all(&srv);
  pump(T.h2, &srv);
  ASSERT_EQ(rec_of(first)->calls, 1);
  ASSERT_EQ(apns__h2_in_flight(T.h2), 0);
  /* N streams at once, all open together on the server. */
  for (int i = 0; i < N; i++) {
    reqs[i] = mkreq("/hold");
    ASSERT_GT(apns__h2_submit(T.h2, reqs[i], NULL, 0), 0);
  }
  reqs[N] = mkreq("/ok");
  ASSERT_ERR(apns__h2_submit(T.h2, reqs[N], NULL, 0), APNS_EBLOCKED);
  ASSERT_EQ(apns__h2_in_flight(T.h2), N);
  pump(T.h2, &srv);
  ASSERT_EQ(srv.requests, N + 1);
  ASSERT_EQ(T.responses, 1);
  srv_answer_all(&srv);
  pump(T.h2, &srv);
  ASSERT_EQ(T.responses, N + 1);
  ASSERT_EQ(T.errors, 0);
  ASSERT_EQ(apns__h2_in_flight(T.h2), 0);
  for (int i = 0; i < N; i++) {
    ASSERT_EQ(rec_of(reqs[i])->calls, 1);
    ASSERT_EQ(rec_of(reqs[i])->status, 200);
  }
  ASSERT_EQ(T.max_calls, 2);
  apns__h2_free(T.h2);
  for (int i = 0; i <= N; i++) apns__req_free(reqs[i]);
  apns__req_free(first);
  apns__req_free(second);
  srv_free(&srv);
}

TEST(h2_settings_without_limit) {
  /* A first SETTINGS without MAX_CONCURRENT_STREAMS means no limit (RFC 9113; nghttp2 reports 2^32-1). */
  server srv;
  client_new();
  srv_init(&srv, 0);
  ASSERT_OK(nghttp2_submit_settings(srv.s, NGHTTP2_FLAG_NONE, NULL, 0));
  pump(T.h2, &srv);
  ASSERT_EQ(T.max_calls, 1);
  ASSERT_UEQ(T.last_max, 0xffffffffu);
  ASSERT_UEQ(apns__h2_max_streams(T.h2), 0xffffffffu);
  apns__h2_free(T.h2);
  srv_free(&srv);
}

TEST(h2_settings_lowered_and_raised) {
  server srv;
  apns__req *reqs[10], *extra[4];
  connect_pair(&srv, 1000);
  for (int i = 0; i < 10; i++) {
    reqs[i] = mkreq("/hold");
    ASSERT_GT(apns__h2_submit(T.h2, reqs[i], NULL, 0), 0);
  }
  pump(T.h2, &srv);
  srv_settings(&srv, 2);
  pump(T.h2, &srv);
  ASSERT_EQ(T.max_calls, 2);
  ASSERT_UEQ(T.last_max, 2);
  ASSERT_UEQ(apns__h2_max_streams(T.h2), 2);
  for (int i = 0; i < 4; i++) extra[i] = mkreq("/ok");
  ASSERT_ERR(apns__h2_submit(T.h2, extra[0], NULL, 0), APNS_EBLOCKED);
  /* The same value again is no change. */
  srv_settings(&srv, 2);
  pump(T.h2, &srv);
  ASSERT_EQ(T.max_calls, 2);
  srv_answer_all(&srv);
  pump(T.h2, &srv);
  ASSERT_EQ(T.responses, 10);
  ASSERT_EQ(apns__h2_in_flight(T.h2), 0);
  srv.respond_on_receive = 0;
  ASSERT_GT(apns__h2_submit(T.h2, extra[0], NULL, 0), 0);
  ASSERT_GT(apns__h2_submit(T.h2, extra[1], NULL, 0), 0);
  ASSERT_ERR(apns__h2_submit(T.h2, extra[2], NULL, 0), APNS_EBLOCKED);
  pump(T.h2, &srv);
  srv_settings(&srv, 3);
  pump(T.h2, &srv);
  ASSERT_EQ(T.max_calls, 3);
  ASSERT_UEQ(T.last_max, 3);
  ASSERT_GT(apns__h2_submit(T.h2, extra[2], NULL, 0), 0);
  ASSERT_ERR(apns__h2_submit(T.h2, extra[3], NULL, 0), APNS_EBLOCKED);
  pump(T.h2, &srv);
  srv_answer_all(&srv);
  pump(T.h2, &srv);
  ASSERT_EQ(T.responses, 13);
  ASSERT_EQ(T.errors, 0);
  apns__h2_free(T.h2);
  for (int i = 0; i < 10; i++) apns__req_free(reqs[i]);
  for (int i = 0; i < 4; i++) apns__req_free(extra[i]);
  srv_free(&srv);
}

TEST(h2_resets_mapped) {
  server srv;
  char path[32];
  struct {
    uint32_t code;
    int err;
    apns_delivery delivery;
  } cases[] = {
      {NGHTTP2_REFUSED_STREAM, APNS_ECLOSED, APNS_DELIVERY_NOT_PROCESSED},
      {NGHTTP2_CANCEL, APNS_ECLOSED, APNS_DELIVERY_UNKNOWN},
      {NGHTTP2_INTERNAL_ERROR, APNS_ECLOSED, APNS_DELIVERY_UNKNOWN},
      {NGHTTP2_ENHANCE_YOUR_CALM, APNS_ECLOSED, APNS_DELIVERY_UNKNOWN},
      {NGHTTP2_NO_ERROR, APNS_ECLOSED, APNS_DELIVERY_UNKNOWN},
      {NGHTTP2_PROTOCOL_ERROR, APNS_EHTTP2, APNS_DELIVERY_UNKNOWN},
      {NGHTTP2_FLOW_CONTROL_ERROR, APNS_EHTTP2, APNS_DELIVERY_UNKNOWN},
  };
  enum { NC = sizeof cases / sizeof cases[0] };
  apns__req *reqs[NC];
  connect_pair(&srv, 100);
  for (size_t i = 0; i < NC; i++) {
    snprintf(path, sizeof path, "/rst/%u", cases[i].code);
    reqs[i] = mkreq(path);
    ASSERT_GT(apns__h2_submit(T.h2, reqs[i], NULL, 0), 0);
  }
  pump(T.h2, &srv);
  ASSERT_EQ(T.errors, NC);
  for (size_t i = 0; i < NC; i++) {
    ASSERT_EQ(rec_of(reqs[i])->calls, 1);
    ASSERT_ERR(rec_of(reqs[i])->err, cases[i].err);
    ASSERT_EQ(rec_of(reqs[i])->delivery, cases[i].delivery);
  }
  ASSERT_EQ(apns__h2_in_flight(T.h2), 0);
  apns__h2_free(T.h2);
  ASSERT_EQ(T.errors + T.responses, NC);
  for (size_t i = 0; i < NC; i++) apns__req_free(reqs[i]);
  srv_free(&srv);
}

TEST(h2_goaway_last_stream_id) {
  server srv;
  apns__req *reqs[5];
  static const char debug[] = "{\"reason\":\"Shutdown\"}";
  connect_pair(&srv, 100);
  for (int i = 0; i < 5; i++) {
    reqs[i] = mkreq("/hold");
    ASSERT_EQ(apns__h2_submit(T.h2, reqs[i], NULL, 0), 2 * i + 1);
  }
  pump(T.h2, &srv);
  ASSERT_EQ(srv.requests, 5);
  ASSERT_OK(
      nghttp2_submit_goaway(srv.s, NGHTTP2_FLAG_NONE, 3, NGHTTP2_NO_ERROR, (const uint8_t *)debug, sizeof debug - 1));
  pump(T.h2, &srv);
  ASSERT_EQ(T.goaways, 1);
  ASSERT_EQ(T.goaway_last, 3);
  ASSERT_UEQ(T.goaway_code, NGHTTP2_NO_ERROR);
  ASSERT_STREQ(T.goaway_reason, "Shutdown");
  ASSERT_TRUE(apns__h2_goaway_received(T.h2));
  /* Above last-stream-id: not processed, ended right after on_goaway. */
  for (int i = 2; i < 5; i++) {
    ASSERT_EQ(rec_of(reqs[i])->calls, 1);
    ASSERT_ERR(rec_of(reqs[i])->err, APNS_ECLOSED);
    ASSERT_EQ(rec_of(reqs[i])->delivery, APNS_DELIVERY_NOT_PROCESSED);
    ASSERT_GT(rec_of(reqs[i])->seq, T.goaway_seq);
  }
  ASSERT_EQ(rec_of(reqs[0])->calls, 0);
  ASSERT_EQ(rec_of(reqs[1])->calls, 0);
  ASSERT_EQ(apns__h2_in_flight(T.h2), 2);
  apns__req *late = mkreq("/ok");
  ASSERT_ERR(apns__h2_submit(T.h2, late, NULL, 0), APNS_ECLOSED);
  /* At or below it: may still complete. */
  srv_answer_all(&srv);
  pump(T.h2, &srv);
  ASSERT_EQ(rec_of(reqs[0])->status, 200);
  ASSERT_EQ(rec_of(reqs[1])->status, 200);
  ASSERT_EQ(T.responses, 2);
  ASSERT_EQ(T.errors, 3);
  ASSERT_EQ(apns__h2_in_flight(T.h2), 0);
  /* Nothing left: the session is finished with. */
  ASSERT_EQ(apns__h2_want_io(T.h2), 0);
  apns__h2_free(T.h2);
  for (int i = 0; i < 5; i++) {
    ASSERT_EQ(rec_of(reqs[i])->calls, 1);
    apns__req_free(reqs[i]);
  }
  ASSERT_EQ(rec_of(late)->calls, 0);
  apns__req_free(late);
  srv_free(&srv);
}

TEST(h2_goaway_pending_and_no_json) {
  /* Streams not yet written when GOAWAY arrives end NOT_PROCESSED and are never written; debug data that is not
   * JSON gives a NULL reason. */
  server srv;
  static const char debug[] = "going away";
  connect_pair(&srv, 100);
  apns__req *sent = mkreq("/hold"), *queued = mkreq("/ok");
  ASSERT_EQ(apns__h2_submit(T.h2, sent, NULL, 0), 1);
  pump(T.h2, &srv);
  ASSERT_EQ(apns__h2_submit(T.h2, queued, NULL, 0), 3);
  ASSERT_OK(nghttp2_submit_goaway(srv.s, NGHTTP2_FLAG_NONE, 1, NGHTTP2_ENHANCE_YOUR_CALM, (const uint8_t *)debug,
                                  sizeof debug - 1));
  const uint8_t *out;
  ssize_t n;
  while ((n = nghttp2_session_mem_send(srv.s, &out)) > 0) ASSERT_OK(apns__h2_feed(T.h2, out, (size_t)n));
  ASSERT_EQ(T.goaways, 1);
  ASSERT_TRUE(T.goaway_reason_null);
  ASSERT_UEQ(T.goaway_code, NGHTTP2_ENHANCE_YOUR_CALM);
  ASSERT_EQ(rec_of(queued)->calls, 1);
  ASSERT_EQ(rec_of(queued)->delivery, APNS_DELIVERY_NOT_PROCESSED);
  apns__req_free(queued); /* freed at once: its queued HEADERS must not be read */
  pump(T.h2, &srv);
  ASSERT_EQ(srv.headers_seen, 1);
  ASSERT_EQ(rec_of(sent)->calls, 0);
  apns__h2_free(T.h2);
  ASSERT_EQ(rec_of(sent)->calls, 1);
  ASSERT_ERR(rec_of(sent)->err, APNS_ECLOSED);
  ASSERT_EQ(rec_of(sent)->delivery, APNS_DELIVERY_UNKNOWN);
  apns__req_free(sent);
  srv_free(&srv);
}

TEST(h2_cancel) {
  server srv;
  connect_pair(&srv, 1);
  /* Canceled before it was written: one callback at once, the slot free at once, never written. */
  apns__req *a = mkreq("/ok"), *b = mkreq("/hold"), *c = mkreq("/ok");
  int32_t ida = apns__h2_submit(T.h2, a, NULL, 0);
  ASSERT_EQ(ida, 1);
  ASSERT_ERR(apns__h2_submit(T.h2, b, NULL, 0), APNS_EBLOCKED);
  ASSERT_OK(apns__h2_cancel(T.h2, ida, APNS_ETIMEDOUT, APNS_DELIVERY_NOT_PROCESSED));
  ASSERT_EQ(rec_of(a)->calls, 1);
  ASSERT_ERR(rec_of(a)->err, APNS_ETIMEDOUT);
  ASSERT_EQ(rec_of(a)->delivery, APNS_DELIVERY_NOT_PROCESSED);
  ASSERT_EQ(apns__h2_in_flight(T.h2), 0);
  ASSERT_ERR(apns__h2_cancel(T.h2, ida, APNS_ETIMEDOUT, APNS_DELIVERY_UNKNOWN), APNS_EINVAL);
  apns__req_free(a); /* the owner frees it at once: its queued HEADERS must never be read */
  int32_t idb = apns__h2_submit(T.h2, b, NULL, 0);
  ASSERT_EQ(idb, 3);
  pump(T.h2, &srv);
  ASSERT_NULL(srv_find(&srv, 1)); /* nghttp2 dropped the canceled HEADERS unsent */
  ASSERT_NOT_NULL(srv_find(&srv, 3));
  ASSERT_EQ(T.responses + T.errors, 1); /* still a's one callback */
  /* Canceled on the wire: RST_STREAM(CANCEL); a late answer does not call back again. */
  ASSERT_OK(apns__h2_cancel(T.h2, idb, APNS_ETIMEDOUT, APNS_DELIVERY_UNKNOWN));
  ASSERT_EQ(rec_of(b)->calls, 1);
  ASSERT_EQ(apns__h2_in_flight(T.h2), 0);
  srv_answer(&srv, srv_find(&srv, 3)); /* queued before the RST arrives */
  ASSERT_GT(apns__h2_submit(T.h2, c, NULL, 0), 0);
  pump(T.h2, &srv);
  ASSERT_EQ(srv.rst_recv, 1);
  ASSERT_UEQ(srv.last_rst_code, NGHTTP2_CANCEL);
  ASSERT_EQ(rec_of(b)->calls, 1);
  ASSERT_EQ(rec_of(c)->calls, 1);
  ASSERT_EQ(rec_of(c)->status, 200);
  ASSERT_ERR(apns__h2_cancel(T.h2, 99, APNS_ETIMEDOUT, APNS_DELIVERY_UNKNOWN), APNS_EINVAL);
  ASSERT_ERR(apns__h2_cancel(T.h2, 0, APNS_ETIMEDOUT, APNS_DELIVERY_UNKNOWN), APNS_EINVAL);
  ASSERT_ERR(apns__h2_cancel(T.h2, -1, APNS_ETIMEDOUT, APNS_DELIVERY_UNKNOWN), APNS_EINVAL);
  apns__h2_free(T.h2);
  ASSERT_EQ(T.responses + T.errors, 3);
  apns__req_free(b);
  apns__req_free(c);
  srv_free(&srv);
}

TEST(h2_cancel_many_in_any_order) {
  /* Exercises the id table: 1000 streams canceled in a scrambled order, each found once. */
  server srv;
  enum { N = 1000 };
  static apns__req *reqs[N];
  static int32_t ids[N];
  connect_pair(&srv, N);
  srv.respond_on_receive = 0;
  for (int i = 0; i < N; i++) {
    reqs[i] = mkreq("/ok");
    ids[i] = apns__h2_submit(T.h2, reqs[i], NULL, 0);
    ASSERT_EQ(ids[i], 2 * i + 1);
    if (i == N / 2) pump(T.h2, &srv); /* half written, half queued */
  }
  for (int k = 0; k < N; k++) {
    int i = (k * 617) % N; /* 617 is coprime with 1000: a permutation */
    ASSERT_OK(apns__h2_cancel(T.h2, ids[i], APNS_ECANCELED, APNS_DELIVERY_UNKNOWN));
    ASSERT_ERR(apns__h2_cancel(T.h2, ids[i], APNS_ECANCELED, APNS_DELIVERY_UNKNOWN), APNS_EINVAL);
    ASSERT_EQ(apns__h2_in_flight(T.h2), N - k - 1);
  }
  pump(T.h2, &srv);
  ASSERT_EQ(T.errors, N);
  for (int i = 0; i < N; i++) ASSERT_EQ(rec_of(reqs[i])->calls, 1);
  apns__req *after = mkreq("/ok");
  srv.respond_on_receive = 1;
  ASSERT_GT(apns__h2_submit(T.h2, after, NULL, 0), 0);
  pump(T.h2, &srv);
  ASSERT_EQ(rec_of(after)->status, 200);
  apns__h2_free(T.h2);
  for (int i = 0; i < N; i++) apns__req_free(reqs[i]);
  apns__req_free(after);
  srv_free(&srv);
}

TEST(h2_fail_all) {
  server srv;
  apns__req *reqs[4];
  connect_pair(&srv, 100);
  for (int i = 0; i < 4; i++) {
    reqs[i] = mkreq("/hold");
    ASSERT_GT(apns__h2_submit(T.h2, reqs[i], NULL, 0), 0);
    if (i == 2) pump(T.h2, &srv); /* the last one stays queued */
  }
  apns__h2_fail_all(T.h2, APNS_ECLOSED, APNS_DELIVERY_UNKNOWN);
  ASSERT_EQ(T.errors, 4);
  for (int i = 0; i < 4; i++) {
    ASSERT_EQ(rec_of(reqs[i])->calls, 1);
    ASSERT_ERR(rec_of(reqs[i])->err, APNS_ECLOSED);
    /* Written ones may have reached the server; the one still queued in nghttp2 certainly did not. */
    ASSERT_EQ(rec_of(reqs[i])->delivery, i < 3 ? APNS_DELIVERY_UNKNOWN : APNS_DELIVERY_NOT_PROCESSED);
    apns__req_free(reqs[i]); /* the owner's again at once */
  }
  ASSERT_EQ(apns__h2_in_flight(T.h2), 0);
  apns__req *late = mkreq("/ok");
  ASSERT_ERR(apns__h2_submit(T.h2, late, NULL, 0), APNS_ECLOSED);
  srv_answer_all(&srv);
  pump(T.h2, &srv);
  ASSERT_EQ(srv.headers_seen, 3); /* the queued one was never written */
  ASSERT_EQ(T.errors + T.responses, 4);
  apns__h2_fail_all(T.h2, APNS_ECLOSED, APNS_DELIVERY_UNKNOWN); /* nothing left: no callback */
  apns__h2_free(T.h2);
  ASSERT_EQ(T.errors + T.responses, 4);
  apns__req_free(late);
  srv_free(&srv);
}

TEST(h2_ping) {
  server srv;
  connect_pair(&srv, 100);
  ASSERT_OK(apns__h2_ping(T.h2));
  pump(T.h2, &srv);
  ASSERT_EQ(T.ping_acks, 1);
  /* The server's PING is acknowledged by nghttp2 without a callback of ours. */
  ASSERT_OK(nghttp2_submit_ping(srv.s, NGHTTP2_FLAG_NONE, NULL));
  pump(T.h2, &srv);
  ASSERT_EQ(T.ping_acks, 1);
  ASSERT_OK(apns__h2_ping(T.h2));
  ASSERT_OK(apns__h2_ping(T.h2));
  pump(T.h2, &srv);
  ASSERT_EQ(T.ping_acks, 3);
  apns__h2_free(T.h2);
  srv_free(&srv);
}

TEST(h2_shutdown) {
  server srv;
  connect_pair(&srv, 100);
  apns__req *held = mkreq("/hold"), *late = mkreq("/ok");
  ASSERT_GT(apns__h2_submit(T.h2, held, NULL, 0), 0);
  pump(T.h2, &srv);
  ASSERT_OK(apns__h2_shutdown(T.h2));
  ASSERT_OK(apns__h2_shutdown(T.h2));
  ASSERT_ERR(apns__h2_submit(T.h2, late, NULL, 0), APNS_ECLOSED);
  pump(T.h2, &srv);
  ASSERT_EQ(srv.goaway_recv, 1);
  ASSERT_TRUE(apns__h2_want_io(T.h2)); /* a stream is still open */
  srv_answer_all(&srv);
  pump(T.h2, &srv);
  ASSERT_EQ(rec_of(held)->status, 200);
  ASSERT_EQ(apns__h2_want_io(T.h2), 0);
  apns__h2_free(T.h2);
  ASSERT_EQ(T.responses + T.errors, 1);
  apns__req_free(held);
  apns__req_free(late);
  srv_free(&srv);
}

TEST(h2_garbage_before_settings) {
  apns__h2 *h2 = client_new();
  apns__req *req = mkreq("/ok");
  static const char junk[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
  uint8_t *buf;
  size_t len;
  ASSERT_EQ(apns__h2_submit(h2, req, NULL, 0), 1);
  ASSERT_OK(apns__h2_take_output(h2, &buf, &len));
  ASSERT_GT(len, 24);
  ASSERT_MEMEQ(buf, NGHTTP2_CLIENT_MAGIC, 24);
  apns__free(buf);
  ASSERT_ERR(apns__h2_feed(h2, (const uint8_t *)junk, sizeof junk - 1), APNS_EHTTP2);
  ASSERT_ERR(apns__h2_feed(h2, (const uint8_t *)junk, 4), APNS_EHTTP2);
  ASSERT_EQ(T.responses + T.errors, 0); /* streams wait for fail_all */
  apns__req *late = mkreq("/ok");
  ASSERT_ERR(apns__h2_submit(h2, late, NULL, 0), APNS_ECLOSED);
  /* The GOAWAY nghttp2 queued goes out, then the session is finished with. */
  ASSERT_OK(apns__h2_take_output(h2, &buf, &len));
  ASSERT_GT(len, 0);
  apns__free(buf);
  ASSERT_EQ(apns__h2_want_io(h2), 0);
  apns__h2_fail_all(h2, APNS_EHTTP2, APNS_DELIVERY_UNKNOWN);
  ASSERT_EQ(rec_of(req)->calls, 1);
  ASSERT_ERR(rec_of(req)->err, APNS_EHTTP2);
  apns__h2_free(h2);
  ASSERT_EQ(T.responses + T.errors, 1);
  apns__req_free(req);
  apns__req_free(late);
}

TEST(h2_protocol_error_after_settings) {
  /* DATA on stream 0 is a connection error. */
  server srv;
  connect_pair(&srv, 100);
  apns__req *req = mkreq("/hold");
  ASSERT_GT(apns__h2_submit(T.h2, req, NULL, 0), 0);
  pump(T.h2, &srv);
  static const uint8_t bad[] = {0, 0, 1, NGHTTP2_DATA, 0, 0, 0, 0, 0, 'x'};
  ASSERT_ERR(apns__h2_feed(T.h2, bad, sizeof bad), APNS_EHTTP2);
  ASSERT_EQ(rec_of(req)->calls, 0);
  apns__h2_free(T.h2); /* free ends the open stream */
  ASSERT_EQ(rec_of(req)->calls, 1);
  ASSERT_ERR(rec_of(req)->err, APNS_ECLOSED);
  apns__req_free(req);
  srv_free(&srv);
}

TEST(h2_fuzz_no_crash) {
  uint32_t seed = 12345;
  for (int iter = 0; iter < 300; iter++) {
    server srv;
    long live = test_alloc_live();
    connect_pair(&srv, 100);
    apns__req *reqs[3];
    for (int i = 0; i < 3; i++) {
      reqs[i] = mkreq(i == 0 ? "/ok" : "/hold");
      ASSERT_GT(apns__h2_submit(T.h2, reqs[i], NULL, 0), 0);
    }
    pump(T.h2, &srv);
    /* Random bytes, sometimes shaped like a frame header for one of our streams. */
    uint8_t junk[64];
    size_t len = 1 + iter % 64;
    for (size_t i = 0; i < len; i++) {
      seed = seed * 1103515245u + 12345u;
      junk[i] = (uint8_t)(seed >> 16);
    }
    if (iter % 3 == 0 && len >= 9) {
      junk[0] = 0;
      junk[1] = 0;
      junk[2] = (uint8_t)(len - 9);
      junk[3] = (uint8_t)(iter % 10);
      junk[5] = junk[6] = junk[7] = 0;
      junk[8] = (uint8_t)(iter % 2 ? 3 : 0);
    }
    int rv = apns__h2_feed(T.h2, junk, len);
    ASSERT_TRUE(rv == 0 || rv == APNS_EHTTP2);
    (void)pump_rv(T.h2, &srv);
    apns__h2_free(T.h2);
    for (int i = 0; i < 3; i++) {
      ASSERT_EQ(rec_of(reqs[i])->calls, 1);
      apns__req_free(reqs[i]);
    }
    srv_free(&srv);
    ASSERT_EQ(test_alloc_live(), live);
  }
}

TEST(h2_free_with_open_streams) {
  server srv;
  apns__req *reqs[3];
  long live = test_alloc_live();
  connect_pair(&srv, 100);
  srv.respond_on_receive = 0;
  reqs[0] = mkreq("/ok");
  ASSERT_GT(apns__h2_submit(T.h2, reqs[0], NULL, 0), 0);
  pump(T.h2, &srv);
  reqs[1] = mkreq("/ok");
  reqs[2] = mkreq("/ok");
  ASSERT_GT(apns__h2_submit(T.h2, reqs[1], NULL, 0), 0);
  ASSERT_GT(apns__h2_submit(T.h2, reqs[2], NULL, 0), 0);
  ASSERT_OK(apns__h2_cancel(T.h2, 5, APNS_ECANCELED, APNS_DELIVERY_NOT_PROCESSED)); /* a zombie at free */
  apns__h2_free(T.h2);
  ASSERT_EQ(T.errors, 3);
  ASSERT_ERR(rec_of(reqs[0])->err, APNS_ECLOSED);
  ASSERT_ERR(rec_of(reqs[1])->err, APNS_ECLOSED);
  ASSERT_ERR(rec_of(reqs[2])->err, APNS_ECANCELED);
  for (int i = 0; i < 3; i++) {
    ASSERT_EQ(rec_of(reqs[i])->calls, 1);
    apns__req_free(reqs[i]);
  }
  apns__h2_free(NULL);
  srv_free(&srv);
  ASSERT_EQ(test_alloc_live(), live);
}

TEST(h2_response_shapes) {
  /* Many headers (beyond the inline slots), a real-valued timestamp, an informational response before the final
   * one (its headers dropped), trailers (ignored), and headers too large. */
  server srv;
  const char *paths[] = {"/many", "/gone-real", "/info", "/trailers", "/bighdr"};
  apns__req *reqs[5];
  connect_pair(&srv, 100);
  for (int i = 0; i < 5; i++) {
    reqs[i] = mkreq(paths[i]);
    ASSERT_GT(apns__h2_submit(T.h2, reqs[i], NULL, 0), 0);
  }
  pump(T.h2, &srv);
  rec *r = rec_of(reqs[0]);
  ASSERT_EQ(r->status, 200);
  ASSERT_EQ(r->num_headers, 13);
  ASSERT_STREQ(r->headers, "apns-id=00000000-0000-0000-0000-000000000001;x-h0=value-0;x-h1=value-11;x-h2=value-22;"
                           "x-h3=value-33;x-h4=value-44;x-h5=value-55;x-h6=value-66;x-h7=value-77;x-h8=value-88;"
                           "x-h9=value-99;x-h10=value-110;x-h11=value-121;");
  ASSERT_STREQ(r->apns_id, "00000000-0000-0000-0000-000000000001");
  r = rec_of(reqs[1]);
  ASSERT_EQ(r->reason, APNS_REASON_ExpiredToken);
  ASSERT_EQ(r->timestamp, 1700000000456LL);
  r = rec_of(reqs[2]);
  ASSERT_EQ(r->status, 400);
  ASSERT_EQ(r->reason, APNS_REASON_BadTopic);
  ASSERT_STREQ(r->headers, "apns-id=00000000-0000-0000-0000-000000000005;content-type=application/json;");
  r = rec_of(reqs[3]);
  ASSERT_EQ(r->status, 400);
  ASSERT_EQ(r->reason, APNS_REASON_MissingTopic);
  ASSERT_EQ(r->body_len, 25);
  ASSERT_STREQ(r->headers, "apns-id=00000000-0000-0000-0000-000000000007;content-type=application/json;");
  r = rec_of(reqs[4]);
  ASSERT_ERR(r->err, APNS_ERESPONSETOOLARGE);
  ASSERT_EQ(r->delivery, APNS_DELIVERY_UNKNOWN);
  ASSERT_EQ(T.responses, 4);
  ASSERT_EQ(T.errors, 1);
  apns__h2_free(T.h2);
  for (int i = 0; i < 5; i++) {
    ASSERT_EQ(rec_of(reqs[i])->calls, 1);
    apns__req_free(reqs[i]);
  }
  srv_free(&srv);
}

TEST(h2_many_request_headers) {
  /* More headers than the submit's stack array holds. */
  server srv;
  static char names[30][16], values[30][16];
  apns_header h[30];
  for (int i = 0; i < 30; i++) {
    snprintf(names[i], sizeof names[i], "x-r%d", i);
    snprintf(values[i], sizeof values[i], "v%d", i);
    h[i].name = names[i];
    h[i].value = values[i];
  }
  apns_request desc = {sizeof(apns_request), NULL, "/ok", h, 30, "{}", 2, 0};
  apns__req *req;
  ASSERT_OK(apns__req_new(&req, &desc, sizeof(rec)));
  connect_pair(&srv, 100);
  nghttp2_nv auth = {(uint8_t *)"authorization", (uint8_t *)"bearer t", 13, 8, NGHTTP2_NV_FLAG_NO_COPY_VALUE};
  ASSERT_GT(apns__h2_submit(T.h2, req, &auth, 1), 0);
  pump(T.h2, &srv);
  srv_stream *st = srv_find(&srv, 1);
  ASSERT_EQ(st->nhdrs, MAX_SRV_HEADERS);
  ASSERT_STREQ(st->names[0], "x-r0");
  ASSERT_STREQ(st->values[15], "v15");
  ASSERT_EQ(rec_of(req)->status, 200);
  apns__h2_free(T.h2);
  apns__req_free(req);
  srv_free(&srv);
}

TEST(h2_id_table_wraps) {
  /* Long-lived streams while hundreds of others come and go: ids collide in the table and deletions must keep
   * every chain findable. */
  server srv;
  enum { HELD = 5, N = 300 };
  apns__req *held[HELD];
  static apns__req *reqs[N];
  int32_t held_ids[HELD];
  connect_pair(&srv, 100);
  for (int i = 0; i < HELD; i++) {
    held[i] = mkreq("/hold");
    held_ids[i] = apns__h2_submit(T.h2, held[i], NULL, 0);
    ASSERT_GT(held_ids[i], 0);
  }
  int shifted = 0;
  for (int i = 0; i < N; i++) {
    reqs[i] = mkreq("/ok");
    int32_t id = apns__h2_submit(T.h2, reqs[i], NULL, 0);
    ASSERT_GT(id, 0);
    if (!shifted && id > held_ids[HELD - 1] && ((id >> 1) & 15) == 0) {
      /* id shares its home slot with held stream 1 (table of 16) and sits displaced behind the held ones:
       * removing stream 1 must pull it back, or it could no longer be found. */
      shifted = 1;
      ASSERT_OK(apns__h2_cancel(T.h2, held_ids[0], APNS_ECANCELED, APNS_DELIVERY_UNKNOWN));
      ASSERT_OK(apns__h2_cancel(T.h2, id, APNS_ECANCELED, APNS_DELIVERY_UNKNOWN));
    }
    pump(T.h2, &srv);
    ASSERT_EQ(rec_of(reqs[i])->calls, 1);
    if (i == N / 2) {
      ASSERT_OK(apns__h2_cancel(T.h2, held_ids[1], APNS_ECANCELED, APNS_DELIVERY_UNKNOWN));
      ASSERT_OK(apns__h2_cancel(T.h2, held_ids[3], APNS_ECANCELED, APNS_DELIVERY_UNKNOWN));
    }
  }
  ASSERT_TRUE(shifted);
  ASSERT_EQ(apns__h2_in_flight(T.h2), HELD - 3);
  for (int i = 0; i < HELD; i++) {
    int rv = apns__h2_cancel(T.h2, held_ids[i], APNS_ECANCELED, APNS_DELIVERY_UNKNOWN);
    ASSERT_ERR(rv, i == 0 || i == 1 || i == 3 ? APNS_EINVAL : 0);
  }
  ASSERT_EQ(apns__h2_in_flight(T.h2), 0);
  apns__h2_free(T.h2);
  for (int i = 0; i < HELD; i++) {
    ASSERT_EQ(rec_of(held[i])->calls, 1);
    ASSERT_ERR(rec_of(held[i])->err, APNS_ECANCELED);
    apns__req_free(held[i]);
  }
  for (int i = 0; i < N; i++) apns__req_free(reqs[i]);
  srv_free(&srv);
}

TEST(h2_garbage_after_goaway) {
  /* After GOAWAY a protocol error is only seen when nghttp2 sends its own GOAWAY(error): from then on the
   * session reports APNS_EHTTP2. */
  server srv;
  connect_pair(&srv, 100);
  apns__req *req = mkreq("/hold");
  ASSERT_EQ(apns__h2_submit(T.h2, req, NULL, 0), 1);
  pump(T.h2, &srv);
  ASSERT_OK(nghttp2_submit_goaway(srv.s, NGHTTP2_FLAG_NONE, 1, NGHTTP2_NO_ERROR, NULL, 0));
  pump(T.h2, &srv);
  ASSERT_EQ(T.goaways, 1);
  ASSERT_TRUE(T.goaway_reason_null);
  static const uint8_t bad[] = {0, 0, 1, NGHTTP2_DATA, 0, 0, 0, 0, 0, 'x'};
  ASSERT_OK(apns__h2_feed(T.h2, bad, sizeof bad));
  uint8_t *buf;
  size_t len;
  ASSERT_OK(apns__h2_take_output(T.h2, &buf, &len));
  ASSERT_GT(len, 0);
  apns__free(buf);
  ASSERT_ERR(apns__h2_feed(T.h2, bad, sizeof bad), APNS_EHTTP2);
  ASSERT_EQ(apns__h2_want_io(T.h2), 0);
  ASSERT_EQ(rec_of(req)->calls, 0);
  apns__h2_fail_all(T.h2, APNS_EHTTP2, APNS_DELIVERY_UNKNOWN);
  ASSERT_EQ(rec_of(req)->calls, 1);
  apns__h2_free(T.h2);
  apns__req_free(req);
  srv_free(&srv);
}

TEST(h2_take_output_enomem_loses_nothing) {
  /* When the output buffer cannot grow, what was gathered goes out and the chunk nghttp2 handed us is kept for
   * the next call: the byte stream stays whole (the server would choke on a gap). */
  enum { N = 60 };
  int alive_runs = 0, partial_runs = 0;
  long i;
  for (i = 0; i < 400; i++) {
    server srv;
    static apns__req *reqs[N];
    uint8_t *b1, *b2;
    size_t l1, l2;
    long live = test_alloc_live();
    connect_pair(&srv, 100);
    for (int k = 0; k < N; k++) {
      reqs[k] = mkreq_full(NULL, "/ok", "{\"aps\":{\"alert\":\"a fairly long alert text\"}}", 44, NULL);
      ASSERT_GT(apns__h2_submit(T.h2, reqs[k], NULL, 0), 0);
    }
    test_alloc_fail_after(i);
    int rv = apns__h2_take_output(T.h2, &b1, &l1);
    long attempted = test_alloc_count();
    test_alloc_reset();
    if (attempted <= i) { /* nothing failed: done */
      ASSERT_OK(rv);
      apns__free(b1);
      apns__h2_free(T.h2);
      for (int k = 0; k < N; k++) apns__req_free(reqs[k]);
      srv_free(&srv);
      break;
    }
    if (apns__h2_want_io(T.h2)) {
      /* Our buffer failed, not nghttp2: nothing lost. */
      alive_runs++;
      if (rv == 0) {
        ASSERT_GT(l1, 0);
        partial_runs++;
        ASSERT_EQ(nghttp2_session_mem_recv(srv.s, b1, l1), (ssize_t)l1);
        apns__free(b1);
      } else {
        ASSERT_ERR(rv, APNS_ENOMEM);
        ASSERT_NULL(b1);
      }
      ASSERT_OK(apns__h2_take_output(T.h2, &b2, &l2));
      ASSERT_EQ(nghttp2_session_mem_recv(srv.s, b2, l2), (ssize_t)l2);
      apns__free(b2);
      pump(T.h2, &srv);
      ASSERT_EQ(srv.requests, N);
      ASSERT_EQ(T.responses, N);
    } else {
      ASSERT_ERR(rv, APNS_ENOMEM); /* nghttp2 itself failed: the session is dead */
      ASSERT_ERR(apns__h2_feed(T.h2, (const uint8_t *)"x", 1), APNS_ENOMEM);
    }
    apns__h2_free(T.h2);
    for (int k = 0; k < N; k++) {
      ASSERT_EQ(rec_of(reqs[k])->calls, 1);
      apns__req_free(reqs[k]);
    }
    srv_free(&srv);
    ASSERT_EQ(test_alloc_live(), live);
  }
  ASSERT_LT(i, 400);
  ASSERT_GT(alive_runs, 0);
  ASSERT_GT(partial_runs, 0);
}

/* ---- re-entrancy ---- */

static apns__req *re_next[8];
static int re_next_count, re_used;
static int32_t re_cancel_id;

static void hook_submit_and_cancel(tctx *t, apns__req *req) {
  (void)req;
  uint8_t *buf;
  size_t len;
  ASSERT_ERR(apns__h2_feed(t->h2, (const uint8_t *)"x", 1), APNS_EBUSY);
  ASSERT_ERR(apns__h2_take_output(t->h2, &buf, &len), APNS_EBUSY);
  if (re_cancel_id > 0) {
    int32_t id = re_cancel_id;
    re_cancel_id = 0;
    ASSERT_OK(apns__h2_cancel(t->h2, id, APNS_ECANCELED, APNS_DELIVERY_UNKNOWN));
  }
  if (re_used < re_next_count) ASSERT_GT(apns__h2_submit(t->h2, re_next[re_used++], NULL, 0), 0);
}

TEST(h2_reentrant_submit_and_cancel) {
  server srv;
  connect_pair(&srv, 100);
  apns__req *first = mkreq("/ok"), *held = mkreq("/hold");
  re_next_count = 8;
  for (int i = 0; i < 8; i++) re_next[i] = mkreq("/ok");
  ASSERT_EQ(apns__h2_submit(T.h2, held, NULL, 0), 1);
  ASSERT_EQ(apns__h2_submit(T.h2, first, NULL, 0), 3);
  re_cancel_id = 1;
  T.on_end = hook_submit_and_cancel;
  pump(T.h2, &srv);
  /* Each response submitted the next request from inside its callback; the first also canceled the held one. */
  ASSERT_EQ(re_used, 8);
  ASSERT_EQ(rec_of(held)->calls, 1);
  ASSERT_ERR(rec_of(held)->err, APNS_ECANCELED);
  ASSERT_EQ(rec_of(first)->calls, 1);
  for (int i = 0; i < 8; i++) ASSERT_EQ(rec_of(re_next[i])->calls, 1);
  ASSERT_EQ(T.responses, 9);
  T.on_end = NULL;
  apns__h2_free(T.h2);
  ASSERT_EQ(T.responses + T.errors, 10);
  apns__req_free(first);
  apns__req_free(held);
  for (int i = 0; i < 8; i++) apns__req_free(re_next[i]);
  srv_free(&srv);
}

static int free_hook_calls;
static void hook_free(tctx *t, apns__req *req) {
  (void)req;
  if (free_hook_calls++ == 0) {
    apns__h2_free(t->h2); /* deferred to the end of the feed */
    apns__h2_free(t->h2); /* twice is harmless */
    ASSERT_ERR(apns__h2_submit(t->h2, re_next[0], NULL, 0), APNS_ECLOSED);
  }
}

TEST(h2_free_from_callback) {
  server srv;
  long live = test_alloc_live();
  connect_pair(&srv, 100);
  apns__req *a = mkreq("/ok"), *b = mkreq("/hold"), *c = mkreq("/hold");
  re_next[0] = mkreq("/ok");
  ASSERT_GT(apns__h2_submit(T.h2, a, NULL, 0), 0);
  ASSERT_GT(apns__h2_submit(T.h2, b, NULL, 0), 0);
  ASSERT_GT(apns__h2_submit(T.h2, c, NULL, 0), 0);
  T.on_end = hook_free;
  /* Drive by hand: the session is gone once the feed that answered `a` returns. */
  uint8_t *buf;
  size_t len;
  const uint8_t *out;
  ssize_t n;
  ASSERT_OK(apns__h2_take_output(T.h2, &buf, &len));
  ASSERT_EQ(nghttp2_session_mem_recv(srv.s, buf, len), (ssize_t)len);
  apns__free(buf);
  while (rec_of(a)->calls == 0) {
    n = nghttp2_session_mem_send(srv.s, &out);
    ASSERT_GT(n, 0);
    ASSERT_OK(apns__h2_feed(T.h2, out, (size_t)n));
  }
  ASSERT_EQ(rec_of(a)->calls, 1);
  ASSERT_EQ(rec_of(a)->status, 200);
  ASSERT_EQ(rec_of(b)->calls, 1);
  ASSERT_ERR(rec_of(b)->err, APNS_ECLOSED);
  ASSERT_EQ(rec_of(c)->calls, 1);
  ASSERT_EQ(T.responses + T.errors, 3);
  apns__req_free(a);
  apns__req_free(b);
  apns__req_free(c);
  apns__req_free(re_next[0]);
  srv_free(&srv);
  ASSERT_EQ(test_alloc_live(), live);
}

static void hook_fail_all(tctx *t, apns__req *req) {
  (void)req;
  apns__h2_fail_all(t->h2, APNS_ECANCELED, APNS_DELIVERY_UNKNOWN);
}

TEST(h2_fail_all_from_callback) {
  server srv;
  connect_pair(&srv, 100);
  apns__req *reqs[4];
  for (int i = 0; i < 4; i++) {
    reqs[i] = mkreq(i == 0 ? "/ok" : "/hold");
    ASSERT_GT(apns__h2_submit(T.h2, reqs[i], NULL, 0), 0);
  }
  T.on_end = hook_fail_all;
  pump(T.h2, &srv);
  ASSERT_EQ(T.responses, 1);
  ASSERT_EQ(T.errors, 3);
  for (int i = 0; i < 4; i++) ASSERT_EQ(rec_of(reqs[i])->calls, 1);
  T.on_end = NULL;
  apns__h2_free(T.h2);
  ASSERT_EQ(T.responses + T.errors, 4);
  for (int i = 0; i < 4; i++) apns__req_free(reqs[i]);
  srv_free(&srv);
}

/* ---- arguments ---- */

TEST(h2_bad_arguments) {
  apns__h2 *h2 = NULL;
  ASSERT_ERR(apns__h2_new(&h2, NULL, &CBS, NULL), APNS_EINVAL);
  ASSERT_ERR(apns__h2_new(&h2, "", &CBS, NULL), APNS_EINVAL);
  ASSERT_ERR(apns__h2_new(&h2, "a\r\nb", &CBS, NULL), APNS_EINVAL);
  ASSERT_ERR(apns__h2_new(&h2, AUTHORITY, NULL, NULL), APNS_EINVAL);
  ASSERT_ERR(apns__h2_new(NULL, AUTHORITY, &CBS, NULL), APNS_EINVAL);
  ASSERT_NULL(h2);
  h2 = client_new();
  ASSERT_ERR(apns__h2_submit(h2, NULL, NULL, 0), APNS_EINVAL);
  apns__req *req = mkreq("/ok");
  ASSERT_ERR(apns__h2_submit(h2, req, NULL, 2), APNS_EINVAL);
  ASSERT_ERR(apns__h2_feed(h2, NULL, 3), APNS_EINVAL);
  ASSERT_OK(apns__h2_feed(h2, NULL, 0));
  ASSERT_ERR(apns__h2_take_output(h2, NULL, NULL), APNS_EINVAL);
  ASSERT_UEQ(apns__h2_in_flight(h2), 0);
  ASSERT_TRUE(apns__h2_want_io(h2));
  ASSERT_TRUE(!apns__h2_goaway_received(h2));
  apns__h2_free(h2);
  apns__req_free(req);
}

/* ---- allocation failure ---- */

TEST(h2_alloc_failure_new) {
  long live = test_alloc_live();
  int ok = 0;
  for (long i = 0; i < 200 && !ok; i++) {
    apns__h2 *h2 = NULL;
    test_alloc_fail_after(i);
    int rv = apns__h2_new(&h2, AUTHORITY, &CBS, &T);
    test_alloc_reset();
    if (rv == 0) {
      ok = 1;
      ASSERT_GT(i, 1); /* nghttp2's own allocations come through us too */
      apns__h2_free(h2);
    } else {
      ASSERT_ERR(rv, APNS_ENOMEM);
      ASSERT_NULL(h2);
    }
    ASSERT_EQ(test_alloc_live(), live);
  }
  ASSERT_TRUE(ok);
}

TEST(h2_alloc_failure_submit) {
  long live = test_alloc_live();
  int ok = 0;
  for (long i = 0; i < 200 && !ok; i++) {
    server srv;
    connect_pair(&srv, 100);
    apns__req *req = mkreq("/ok");
    nghttp2_nv auth = {(uint8_t *)"authorization", (uint8_t *)"bearer t", 13, 8, NGHTTP2_NV_FLAG_NONE};
    test_alloc_fail_after(i);
    int32_t id = apns__h2_submit(T.h2, req, &auth, 1);
    test_alloc_reset();
    if (id > 0) {
      ok = 1;
      ASSERT_EQ(apns__h2_in_flight(T.h2), 1);
      pump(T.h2, &srv);
      ASSERT_EQ(rec_of(req)->status, 200);
    } else {
      ASSERT_ERR(id, APNS_ENOMEM);
      ASSERT_EQ(apns__h2_in_flight(T.h2), 0);
      pump(T.h2, &srv);
      ASSERT_EQ(srv.headers_seen, 0);
    }
    apns__h2_free(T.h2);
    ASSERT_EQ(rec_of(req)->calls, ok ? 1 : 0);
    apns__req_free(req);
    srv_free(&srv);
    ASSERT_EQ(test_alloc_live(), live);
  }
  ASSERT_TRUE(ok);
}

/* A whole exchange with the i-th allocation failing from the first submit on: whatever breaks, every accepted
 * request ends exactly once and nothing leaks. */
static int exchange_under_failure(long fail_after) {
  server srv;
  const char *paths[] = {"/ok", "/gone", "/many", "/big/70000", "/weird"};
  apns__req *reqs[5];
  int accepted[5] = {0};
  long attempted;
  connect_pair(&srv, 100);
  for (int i = 0; i < 5; i++) reqs[i] = mkreq(paths[i]);
  test_alloc_fail_after(fail_after);
  for (int i = 0; i < 5; i++) {
    int32_t id = apns__h2_submit(T.h2, reqs[i], NULL, 0);
    ASSERT_TRUE(id > 0 || id == APNS_ENOMEM);
    accepted[i] = id > 0;
  }
  int rv = pump_rv(T.h2, &srv);
  ASSERT_TRUE(rv == 0 || rv == APNS_ENOMEM);
  attempted = test_alloc_count();
  test_alloc_reset();
  apns__h2_free(T.h2);
  for (int i = 0; i < 5; i++) {
    ASSERT_EQ(rec_of(reqs[i])->calls, accepted[i]);
    if (accepted[i] && rec_of(reqs[i])->err == 0) ASSERT_GT(rec_of(reqs[i])->status, 0);
    apns__req_free(reqs[i]);
  }
  srv_free(&srv);
  return attempted > fail_after; /* 1 when some allocation failed */
}

TEST(h2_alloc_failure_exchange) {
  long live = test_alloc_live();
  long i;
  for (i = 0; i < 2000; i++) {
    int failed = exchange_under_failure(i);
    ASSERT_EQ(test_alloc_live(), live);
    if (!failed) break;
  }
  ASSERT_LT(i, 2000);
  ASSERT_GT(i, 5);
}

/* A steady window of requests, as the pool keeps one: each response's callback submits the next request. */
static struct {
  apns__req **reqs;
  int next, total, warm;
} steady;

static void steady_refill(tctx *t, apns__req *req) {
  (void)req;
  if (steady.next == steady.warm) test_alloc_fail_after(100000000); /* counting starts: the cache is warm */
  if (steady.next < steady.total) ASSERT_GT(apns__h2_submit(t->h2, steady.reqs[steady.next++], NULL, 0), 0);
}

/* nghttp2's blocks come from the session's cache (lib/blocks.c): with a thousand streams in flight, refilled as
 * answers come, a request reaches the allocator far less than once (nghttp2 alone made about six allocations a
 * request), the cache never holds more than its bound, the bound never more than the peak in use, and everything
 * goes back to the allocator with the session. */
TEST(h2_blocks_hold_the_working_set) {
  server srv;
  enum { W = 1000, TOTAL = 6000 };
  static apns__req *reqs[TOTAL];
  apns__blocks_stats st;
  long live = test_alloc_live();
  size_t bytes = test_alloc_live_bytes();
  connect_pair(&srv, W);
  for (int i = 0; i < TOTAL; i++) reqs[i] = mkreq(i % 2 ? "/nginx" : "/ok");
  steady.reqs = reqs;
  steady.total = TOTAL;
  steady.warm = 2 * W;
  steady.next = W;
  T.on_end = steady_refill;
  for (int i = 0; i < W; i++) ASSERT_GT(apns__h2_submit(T.h2, reqs[i], NULL, 0), 0);
  pump(T.h2, &srv);
  long count = test_alloc_count();
  test_alloc_reset();
  T.on_end = NULL;
  ASSERT_EQ(T.responses, TOTAL);
  apns__h2_blocks_stats(T.h2, &st);
  printf("%ld allocations for the last %d requests; cache %zu bytes (peak %zu, bound %zu), peak in use %zu, %llu "
         "hits, %llu misses\n",
         count, TOTAL - 2 * W, st.cached, st.cached_peak, st.bound, st.in_use_peak, (unsigned long long)st.hits,
         (unsigned long long)st.misses);
  ASSERT_LT(count, (TOTAL - 2 * W) / 4);
  ASSERT_GT(st.hits, (uint64_t)(TOTAL - 2 * W) * 5);
  ASSERT_LE(st.cached, st.bound);
  ASSERT_LE(st.bound, st.in_use_peak);
  ASSERT_LE(st.cached_peak, st.in_use_peak);
  ASSERT_GT(st.cached_peak, 0);
  for (int i = 0; i < TOTAL; i++) ASSERT_EQ(rec_of(reqs[i])->calls, 1);
  apns__h2_free(T.h2);
  srv_free(&srv);
  for (int i = 0; i < TOTAL; i++) apns__req_free(reqs[i]);
  ASSERT_EQ(test_alloc_live(), live);
  ASSERT_UEQ(test_alloc_live_bytes(), bytes);
}

/* nghttp2's HPACK encoder answers an allocation failure with GOAWAY(COMPRESSION_ERROR), not an error code: a
 * session that dies so while its allocations fail reports APNS_ENOMEM (what happened), never APNS_EHTTP2. Each
 * run fails one allocation of the first take_output, in turn. */
TEST(h2_hpack_alloc_failure_is_enomem) {
  int dead_runs = 0;
  long k;
  for (k = 1; k < 500; k++) {
    server srv;
    apns__req *req;
    uint8_t *buf;
    size_t len;
    long live = test_alloc_live();
    req = mkreq_full(NULL, "/ok", "{}", 2, "9a0e2bcd-0000-4000-8000-0123456789ab");
    connect_pair(&srv, 100);
    ASSERT_GT(apns__h2_submit(T.h2, req, NULL, 0), 0);
    test_alloc_fail_nth(k);
    int rv = apns__h2_take_output(T.h2, &buf, &len);
    long attempted = test_alloc_count();
    test_alloc_reset();
    ASSERT_TRUE(rv == 0 || rv == APNS_ENOMEM);
    apns__free(buf);
    rv = apns__h2_feed(T.h2, NULL, 0); /* what the session died of, if it did */
    ASSERT_TRUE(rv == 0 || rv == APNS_ENOMEM);
    dead_runs += rv != 0;
    apns__h2_free(T.h2);
    ASSERT_EQ(rec_of(req)->calls, 1);
    apns__req_free(req);
    srv_free(&srv);
    ASSERT_EQ(test_alloc_live(), live);
    if (attempted < k) break; /* the k-th allocation never came: every one has failed once */
  }
  ASSERT_LT(k, 500);
  ASSERT_GT(dead_runs, 0);
}

TEST(h2_few_allocations_per_request) {
  /* Steady state: our stream records are recycled and nghttp2's blocks come from the session's cache; what
   * remains per request is the output buffer of each take_output (one per request here). Pinned so a regression
   * shows. */
  server srv;
  enum { N = 200 };
  static apns__req *reqs[N];
  connect_pair(&srv, 1000);
  for (int i = 0; i < N; i++) reqs[i] = mkreq("/ok");
  for (int i = 0; i < 10; i++) {
    ASSERT_GT(apns__h2_submit(T.h2, reqs[i], NULL, 0), 0);
    pump(T.h2, &srv);
  }
  test_alloc_fail_after(1000000);
  for (int i = 10; i < N; i++) {
    ASSERT_GT(apns__h2_submit(T.h2, reqs[i], NULL, 0), 0);
    pump(T.h2, &srv);
  }
  long per_request = test_alloc_count() / (N - 10);
  test_alloc_reset();
  printf("allocations per request (client side, incl. nghttp2 and output buffers): %ld\n", per_request);
  ASSERT_LE(per_request, 2);
  ASSERT_EQ(T.responses, N);
  apns__h2_free(T.h2);
  for (int i = 0; i < N; i++) apns__req_free(reqs[i]);
  srv_free(&srv);
}

/* nginx's response headers (server, date, content-type, content-length and the apns-id) fit the stream record's
 * inline room: a response costs us no allocation more than APNs's one header does (what is left of the difference
 * is nghttp2's, which decodes four more header strings). */
TEST(h2_nginx_headers_inline) {
  server srv;
  enum { N = 100 };
  static apns__req *reqs[2][N];
  long per[2];
  const char *paths[2] = {"/ok", "/nginx"};
  for (int k = 0; k < 2; k++) {
    connect_pair(&srv, 1000);
    for (int i = 0; i < N; i++) reqs[k][i] = mkreq(paths[k]);
    for (int i = 0; i < 10; i++) {
      ASSERT_GT(apns__h2_submit(T.h2, reqs[k][i], NULL, 0), 0);
      pump(T.h2, &srv);
    }
    test_alloc_fail_after(1000000);
    for (int i = 10; i < N; i++) {
      ASSERT_GT(apns__h2_submit(T.h2, reqs[k][i], NULL, 0), 0);
      pump(T.h2, &srv);
    }
    per[k] = test_alloc_count();
    test_alloc_reset();
    ASSERT_EQ(T.responses, N);
    rec *r = rec_of(reqs[k][N - 1]);
    ASSERT_EQ(r->num_headers, k == 0 ? 1 : 5);
    if (k == 1)
      ASSERT_STREQ(r->headers, "apns-id=00000000-0000-0000-0000-000000000199;server=nginx/1.22.1;"
                               "date=Tue, 01 Dec 2026 11:17:21 GMT;content-type=text/plain;content-length=0;");
    apns__h2_free(T.h2);
    for (int i = 0; i < N; i++) apns__req_free(reqs[k][i]);
    srv_free(&srv);
  }
  printf("allocations per %d requests: %ld with one response header, %ld with nginx's five\n", N - 10, per[0],
         per[1]);
  /* Before the inline room held eight headers: two more a request (our header array, and nghttp2's); now one. */
  ASSERT_LE((per[1] - per[0]) / (N - 10), 1);
}

/* A "timestamp" that no int64_t holds (1e300 and friends) is not converted (that would be undefined behaviour,
 * which the float-cast-overflow sanitizer of scripts/test --sanitize reports): it is dropped, as if absent. Real
 * values in range are truncated to whole milliseconds. */
TEST(h2_timestamp_out_of_range_dropped) {
  server srv;
  static const struct {
    const char *text;
    int64_t want;
  } cases[] = {
      {"1e300", 0},
      {"-1e300", 0},
      {"9.3e18", 0},
      {"-9.3e18", 0},
      {"9223372036854775807.0", 0}, /* rounds to 2^63, one past the largest int64_t */
      {"1700000000999.75", 1700000000999LL},
      {"-1.5", -1},
      {"9000000000000000000.0", 9000000000000000000LL},
  };
  enum { N = sizeof cases / sizeof cases[0] };
  apns__req *reqs[N];
  char path[64];
  connect_pair(&srv, 100);
  for (size_t i = 0; i < N; i++) {
    snprintf(path, sizeof path, "/ts/%s", cases[i].text);
    reqs[i] = mkreq(path);
    ASSERT_GT(apns__h2_submit(T.h2, reqs[i], NULL, 0), 0);
  }
  pump(T.h2, &srv);
  for (size_t i = 0; i < N; i++) {
    rec *r = rec_of(reqs[i]);
    ASSERT_EQ(r->calls, 1);
    ASSERT_EQ(r->status, 410);
    ASSERT_EQ(r->reason, APNS_REASON_Unregistered);
    if (r->timestamp != cases[i].want)
      test__fail(__FILE__, __LINE__, "timestamp %s gave %" PRId64, cases[i].text, r->timestamp);
  }
  apns__h2_free(T.h2);
  for (size_t i = 0; i < N; i++) apns__req_free(reqs[i]);
  srv_free(&srv);
}

/* apns__h2_cancel_unsent ends exactly the streams whose HEADERS were never serialized, NOT_PROCESSED, newest
 * first, and their HEADERS never reach the server; the written ones stay open and are answered. */
TEST(h2_cancel_unsent_only_unwritten) {
  server srv;
  apns__req *reqs[5];
  connect_pair(&srv, 100);
  for (int i = 0; i < 5; i++) reqs[i] = mkreq(i < 2 ? "/hold" : "/ok");
  ASSERT_GT(apns__h2_submit(T.h2, reqs[0], NULL, 0), 0);
  ASSERT_GT(apns__h2_submit(T.h2, reqs[1], NULL, 0), 0);
  pump(T.h2, &srv); /* the two /hold requests are on the server now */
  for (int i = 2; i < 5; i++) ASSERT_GT(apns__h2_submit(T.h2, reqs[i], NULL, 0), 0);
  apns__h2_cancel_unsent(T.h2, APNS_ECANCELED, APNS_DELIVERY_NOT_PROCESSED, UINT64_MAX);
  ASSERT_EQ(T.errors, 3);
  ASSERT_EQ(apns__h2_in_flight(T.h2), 2);
  for (int i = 2; i < 5; i++) {
    ASSERT_EQ(rec_of(reqs[i])->calls, 1);
    ASSERT_ERR(rec_of(reqs[i])->err, APNS_ECANCELED);
    ASSERT_EQ(rec_of(reqs[i])->delivery, APNS_DELIVERY_NOT_PROCESSED);
  }
  ASSERT_GT(rec_of(reqs[2])->seq, rec_of(reqs[3])->seq); /* newest first */
  pump(T.h2, &srv);
  ASSERT_EQ(srv.headers_seen, 2); /* the three never left */
  ASSERT_EQ(rec_of(reqs[0])->calls, 0);
  srv_answer(&srv, srv_find(&srv, 1));
  srv_answer(&srv, srv_find(&srv, 3));
  pump(T.h2, &srv);
  ASSERT_EQ(rec_of(reqs[0])->status, 200);
  ASSERT_EQ(rec_of(reqs[1])->status, 200);
  apns__h2_free(T.h2);
  for (int i = 0; i < 5; i++) {
    ASSERT_EQ(rec_of(reqs[i])->calls, 1);
    apns__req_free(reqs[i]);
  }
  srv_free(&srv);
}

/* The session stops taking streams APNS__H2_ID_MARGIN ids before 2^31: the last id below the margin is used,
 * then submits fail APNS_ECLOSED (nothing queued), and the open stream is still answered. */
TEST(h2_stream_ids_margin) {
  server srv;
  apns__req *a = mkreq("/ok"), *b = mkreq("/ok");
  connect_pair(&srv, 100);
  ASSERT_ERR(apns__h2_test_set_next_stream_id(T.h2, 2), APNS_EINVAL); /* client ids are odd */
  ASSERT_OK(apns__h2_test_set_next_stream_id(T.h2, INT32_MAX - APNS__H2_ID_MARGIN));
  ASSERT_EQ(apns__h2_ids_low(T.h2), 0);
  ASSERT_EQ(apns__h2_submit(T.h2, a, NULL, 0), INT32_MAX - APNS__H2_ID_MARGIN);
  ASSERT_EQ(apns__h2_ids_low(T.h2), 1);
  ASSERT_ERR(apns__h2_submit(T.h2, b, NULL, 0), APNS_ECLOSED);
  ASSERT_EQ(apns__h2_in_flight(T.h2), 1);
  pump(T.h2, &srv);
  ASSERT_EQ(rec_of(a)->status, 200);
  ASSERT_EQ(rec_of(b)->calls, 0);
  apns__h2_free(T.h2);
  apns__req_free(a);
  apns__req_free(b);
  srv_free(&srv);
}

/* With output marks: streams serialized into bytes the owner says never reached the socket are taken out too,
 * while those behind the mark the socket passed stay open. */
TEST(h2_cancel_unsent_by_output_mark) {
  server srv;
  apns__req *reqs[5];
  uint8_t *buf;
  size_t len;
  connect_pair(&srv, 100);
  for (int i = 0; i < 5; i++) reqs[i] = mkreq("/hold");
  ASSERT_GT(apns__h2_submit(T.h2, reqs[0], NULL, 0), 0);
  ASSERT_GT(apns__h2_submit(T.h2, reqs[1], NULL, 0), 0);
  apns__h2_set_out_mark(T.h2, 500);
  pump(T.h2, &srv); /* serialized at mark 500, and delivered */
  ASSERT_GT(apns__h2_submit(T.h2, reqs[2], NULL, 0), 0);
  ASSERT_GT(apns__h2_submit(T.h2, reqs[3], NULL, 0), 0);
  apns__h2_set_out_mark(T.h2, 1000);
  ASSERT_OK(apns__h2_take_output(T.h2, &buf, &len)); /* serialized at mark 1000: the owner's socket never takes it */
  ASSERT_GT(len, 0);
  apns__free(buf);
  ASSERT_GT(apns__h2_submit(T.h2, reqs[4], NULL, 0), 0); /* not serialized at all */
  apns__h2_cancel_unsent(T.h2, APNS_ECLOSED, APNS_DELIVERY_NOT_PROCESSED, 1000);
  ASSERT_EQ(T.errors, 3);
  ASSERT_EQ(apns__h2_in_flight(T.h2), 2);
  for (int i = 0; i < 5; i++) {
    ASSERT_EQ(rec_of(reqs[i])->calls, i >= 2);
    if (i >= 2) ASSERT_EQ(rec_of(reqs[i])->delivery, APNS_DELIVERY_NOT_PROCESSED);
  }
  apns__h2_free(T.h2); /* the two on the server end UNKNOWN: they were written */
  for (int i = 0; i < 5; i++) {
    ASSERT_EQ(rec_of(reqs[i])->calls, 1);
    if (i < 2) ASSERT_EQ(rec_of(reqs[i])->delivery, APNS_DELIVERY_UNKNOWN);
    apns__req_free(reqs[i]);
  }
  srv_free(&srv);
}

TEST_SUITE(h2){
    TEST_ENTRY(h2_request_arrives_intact),
    TEST_ENTRY(h2_error_responses),
    TEST_ENTRY(h2_response_body_limit),
    TEST_ENTRY(h2_large_request_body),
    TEST_ENTRY(h2_early_response_stops_upload),
    TEST_ENTRY(h2_limit_one_until_settings_then_1000),
    TEST_ENTRY(h2_settings_without_limit),
    TEST_ENTRY(h2_settings_lowered_and_raised),
    TEST_ENTRY(h2_resets_mapped),
    TEST_ENTRY(h2_goaway_last_stream_id),
    TEST_ENTRY(h2_goaway_pending_and_no_json),
    TEST_ENTRY(h2_cancel),
    TEST_ENTRY(h2_cancel_many_in_any_order),
    TEST_ENTRY(h2_fail_all),
    TEST_ENTRY(h2_ping),
    TEST_ENTRY(h2_shutdown),
    TEST_ENTRY(h2_garbage_before_settings),
    TEST_ENTRY(h2_protocol_error_after_settings),
    TEST_ENTRY(h2_fuzz_no_crash),
    TEST_ENTRY(h2_free_with_open_streams),
    TEST_ENTRY(h2_response_shapes),
    TEST_ENTRY(h2_many_request_headers),
    TEST_ENTRY(h2_id_table_wraps),
    TEST_ENTRY(h2_garbage_after_goaway),
    TEST_ENTRY(h2_take_output_enomem_loses_nothing),
    TEST_ENTRY(h2_reentrant_submit_and_cancel),
    TEST_ENTRY(h2_free_from_callback),
    TEST_ENTRY(h2_fail_all_from_callback),
    TEST_ENTRY(h2_bad_arguments),
    TEST_ENTRY(h2_alloc_failure_new),
    TEST_ENTRY(h2_alloc_failure_submit),
    TEST_ENTRY(h2_alloc_failure_exchange),
    TEST_ENTRY(h2_few_allocations_per_request),
    TEST_ENTRY(h2_blocks_hold_the_working_set),
    TEST_ENTRY(h2_hpack_alloc_failure_is_enomem),
    TEST_ENTRY(h2_nginx_headers_inline),
    TEST_ENTRY(h2_timestamp_out_of_range_dropped),
    TEST_ENTRY(h2_cancel_unsent_only_unwritten),
    TEST_ENTRY(h2_cancel_unsent_by_output_mark),
    TEST_ENTRY(h2_stream_ids_margin),
    TEST_SUITE_END,
};
