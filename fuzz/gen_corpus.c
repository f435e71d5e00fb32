/* gen-corpus: writes the fuzz targets' seed corpus (scripts/fuzz --seeds runs it into fuzz/corpus/).
 *
 * The HTTP/2 seeds are what a real nghttp2 server session sends to our client session for a few scripted
 * behaviours (answers of every kind, GOAWAY, resets, informational responses, trailers, an oversized body); the TLS
 * seeds are a real apns__tls server's first flight; the text seeds are written out here. No seed holds a private
 * key: the targets that need one make it at run time (fuzz/keys.h). Deterministic but for the TLS flight (its
 * randoms) and anything derived from run-time keys. */
#include "alloc.h"
#include "certgen.h"
#include "h2.h"
#include "request.h"
#include "tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *root;

static void put(const char *target, const char *name, const void *a, size_t alen, const void *b, size_t blen) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", root, target);
  if (mkdir(path, 0755) != 0 && errno != EEXIST) {
    perror(path);
    exit(1);
  }
  snprintf(path, sizeof path, "%s/%s/%s", root, target, name);
  FILE *f = fopen(path, "wb");
  if (f == NULL || fwrite(a, 1, alen, f) != alen || (blen && fwrite(b, 1, blen, f) != blen) || fclose(f) != 0) {
    perror(path);
    exit(1);
  }
}

static void put_text(const char *target, const char *name, uint8_t ctl, const char *text) {
  put(target, name, &ctl, 1, text, strlen(text));
}

/* ---- HTTP/2: a scripted nghttp2 server against our client session ---- */

typedef struct script {
  int kind;
  nghttp2_session *srv;
  uint8_t *rec; /* everything the server sent */
  size_t rec_len;
  int answered;
} script;

static char big[70000];

static ssize_t body_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                         nghttp2_data_source *src, void *ud) {
  const char *body = src->ptr;
  size_t *off = nghttp2_session_get_stream_user_data(s, id);
  size_t total = strcmp(body, "BIG") == 0 ? 3000 : strlen(body);
  const char *from = strcmp(body, "BIG") == 0 ? big : body;
  size_t n = total - *off;
  script *sc = ud;
  if (n > len) n = len;
  memcpy(buf, from + *off, n);
  *off += n;
  if (*off == total) {
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    if (sc->kind == 4) {
      static const nghttp2_nv tr = {(uint8_t *)"x-trailer", (uint8_t *)"1", 9, 1, NGHTTP2_NV_FLAG_NONE};
      *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
      nghttp2_submit_trailer(s, id, &tr, 1);
    }
  }
  return (ssize_t)n;
}

static void respond(script *sc, int32_t id, const char *status, const char *body, const char *extra) {
  static size_t offs[64];
  nghttp2_nv nva[4];
  size_t n = 0;
  char idbuf[40];
  snprintf(idbuf, sizeof idbuf, "00000000-0000-0000-0000-%012d", (int)id);
#define NV(a, b) nva[n++] = (nghttp2_nv){(uint8_t *)(a), (uint8_t *)(b), strlen(a), strlen(b), NGHTTP2_NV_FLAG_NONE}
  NV(":status", status);
  NV("apns-id", idbuf);
  if (extra) NV("apns-unique-id", extra);
  if (body) NV("content-type", "application/json");
#undef NV
  nghttp2_data_provider prd = {{.ptr = (void *)body}, body_read};
  offs[id % 64] = 0;
  nghttp2_session_set_stream_user_data(sc->srv, id, &offs[id % 64]);
  nghttp2_submit_response(sc->srv, id, nva, n, body ? &prd : NULL);
}

/* What the server does once request id is complete, per scenario. */
static void answer(script *sc, int32_t id) {
  int k = (int)(id / 2); /* 0 for stream 1, 1 for 3, ... */
  sc->answered++;
  switch (sc->kind) {
  case 0: /* all accepted */
    respond(sc, id, "200", NULL, NULL);
    break;
  case 1: { /* every kind of answer */
    static const char *const st[] = {"410", "400", "200", "500", "413", "429", "403", "503"};
    static const char *const bodies[] = {"{\"reason\":\"Unregistered\",\"timestamp\":1700000000123}",
                                         "{\"reason\":\"BadDeviceToken\"}",
                                         NULL,
                                         "oops",
                                         "{\"reason\":\"PayloadTooLarge\"}",
                                         "{\"reason\":\"TooManyRequests\"}",
                                         "{\"reason\":\"ExpiredProviderToken\"}",
                                         "{\"reason\":\"ServiceUnavailable\"}"};
    respond(sc, id, st[k % 8], bodies[k % 8], k == 2 ? "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee" : NULL);
    break;
  }
  case 2: /* GOAWAY below the highest stream */
    if (id <= 5) respond(sc, id, "200", NULL, NULL);
    if (id == 5) {
      static const char dbg[] = "{\"reason\":\"Shutdown\"}";
      nghttp2_submit_goaway(sc->srv, NGHTTP2_FLAG_NONE, 5, NGHTTP2_NO_ERROR, (const uint8_t *)dbg, sizeof dbg - 1);
    }
    break;
  case 3: { /* resets of every kind */
    static const uint32_t codes[] = {NGHTTP2_REFUSED_STREAM,    NGHTTP2_CANCEL,
                                     NGHTTP2_PROTOCOL_ERROR,    NGHTTP2_INTERNAL_ERROR,
                                     NGHTTP2_ENHANCE_YOUR_CALM, NGHTTP2_NO_ERROR};
    if (k < 6)
      nghttp2_submit_rst_stream(sc->srv, NGHTTP2_FLAG_NONE, id, codes[k]);
    else
      respond(sc, id, "200", NULL, NULL);
    break;
  }
  case 4: { /* informational responses, trailers, PING, a new stream limit */
    nghttp2_nv info = {(uint8_t *)":status", (uint8_t *)"100", 7, 3, NGHTTP2_NV_FLAG_NONE};
    nghttp2_submit_headers(sc->srv, NGHTTP2_FLAG_NONE, id, NULL, &info, 1, NULL);
    respond(sc, id, "400", "{\"reason\":\"BadTopic\"}", NULL);
    if (k == 0) {
      nghttp2_settings_entry e = {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 1};
      nghttp2_submit_ping(sc->srv, NGHTTP2_FLAG_NONE, NULL);
      nghttp2_submit_settings(sc->srv, NGHTTP2_FLAG_NONE, &e, 1);
    }
    break;
  }
  default: /* a 3000-byte body on the first stream (h2_response's repeat bit goes past the cap), a real
            * timestamp on the next */
    if (k == 0)
      respond(sc, id, "200", "BIG", NULL);
    else
      respond(sc, id, "410", "{\"reason\":\"ExpiredToken\",\"timestamp\":1700000000456.0}", NULL);
    break;
  }
}

static int srv_frame_recv(nghttp2_session *s, const nghttp2_frame *frame, void *ud) {
  (void)s;
  if ((frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
      (frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
    answer(ud, frame->hd.stream_id);
  return 0;
}

static void noop_response(void *ctx, apns__req *req, const apns_response *res) {
  (void)ctx, (void)res;
  apns__req_free(req);
}
static void noop_error(void *ctx, apns__req *req, int err, apns_delivery d) {
  (void)ctx, (void)err, (void)d;
  apns__req_free(req);
}

/* Runs scenario kind with nreqs requests (bodies as fuzz/h2_client.c makes them); sc->rec gets the server's bytes. */
static void run_script(script *sc, int kind, int nreqs) {
  static const apns__h2_callbacks cbs = {noop_response, noop_error, NULL, NULL, NULL};
  static const size_t sizes[] = {20, 0, sizeof big};
  nghttp2_session_callbacks *scb;
  apns__h2 *h2;
  memset(sc, 0, sizeof *sc);
  sc->kind = kind;
  nghttp2_session_callbacks_new(&scb);
  nghttp2_session_callbacks_set_on_frame_recv_callback(scb, srv_frame_recv);
  nghttp2_session_server_new(&sc->srv, scb, sc);
  nghttp2_session_callbacks_del(scb);
  nghttp2_settings_entry e = {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 100};
  nghttp2_submit_settings(sc->srv, NGHTTP2_FLAG_NONE, &e, 1);
  if (apns__h2_new(&h2, "api.push.apple.com", &cbs, sc) != 0) exit(1);
  int submitted = 0;
  for (int turn = 0; turn < 200; turn++) {
    const uint8_t *out;
    ssize_t n;
    uint8_t *buf;
    size_t len;
    while ((n = nghttp2_session_mem_send(sc->srv, &out)) > 0) {
      sc->rec = realloc(sc->rec, sc->rec_len + (size_t)n);
      memcpy(sc->rec + sc->rec_len, out, (size_t)n);
      sc->rec_len += (size_t)n;
      if (apns__h2_feed(h2, out, (size_t)n) != 0) break;
    }
    while (submitted < nreqs && apns__h2_in_flight(h2) < apns__h2_max_streams(h2) && apns__h2_max_streams(h2) > 1) {
      apns_header hdrs[] = {{"apns-topic", "com.example.app"}, {"apns-push-type", "alert"}};
      apns_request desc = APNS_REQUEST_INIT;
      desc.path = "/3/device/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
      desc.headers = hdrs;
      desc.num_headers = 2;
      desc.body = big;
      desc.body_len = sizes[submitted % 3];
      apns__req *req;
      if (apns__req_new(&req, &desc, sizeof(int)) != 0 || apns__h2_submit(h2, req, NULL, 0) <= 0) exit(1);
      submitted++;
    }
    if (apns__h2_take_output(h2, &buf, &len) != 0) exit(1);
    if (len) nghttp2_session_mem_recv(sc->srv, buf, len);
    apns__free(buf);
    if (len == 0 && !nghttp2_session_want_write(sc->srv)) break;
  }
  apns__h2_free(h2);
  nghttp2_session_del(sc->srv);
}

static void h2_seeds(void) {
  static const char *const names[] = {"ok", "answers", "goaway", "resets", "info-trailers", "big-body"};
  static const uint8_t prefix[] = {0, 0, 6, 4, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 100};
  memset(big, 'x', sizeof big);
  for (int k = 0; k < 6; k++) {
    script sc;
    char name[64];
    uint8_t ctl;
    run_script(&sc, k, 8);
    if (sc.rec_len < sizeof prefix || memcmp(sc.rec, prefix, sizeof prefix) != 0) {
      fprintf(stderr, "gen-corpus: the server did not start with the expected SETTINGS\n");
      exit(1);
    }
    /* After the harness's own SETTINGS and 8 requests; and with callbacks busy (control bits 0-2, 7). */
    ctl = 0;
    snprintf(name, sizeof name, "%s", names[k]);
    put("h2_client", name, &ctl, 1, sc.rec + sizeof prefix, sc.rec_len - sizeof prefix);
    ctl = k % 2 ? 0x83 : 0x15;
    snprintf(name, sizeof name, "%s-busy", names[k]);
    put("h2_client", name, &ctl, 1, sc.rec + sizeof prefix, sc.rec_len - sizeof prefix);
    free(sc.rec);
    /* The server's whole stream, preface included, for one request: the raw-preface mode and the TLS session. */
    run_script(&sc, k, 1);
    ctl = 0x08;
    snprintf(name, sizeof name, "%s-raw", names[k]);
    put("h2_client", name, &ctl, 1, sc.rec, sc.rec_len);
    ctl = (uint8_t)(0x01 | (k << 1) | (k % 2 ? 0x20 : 0x40));
    snprintf(name, sizeof name, "session-%s", names[k]);
    put("tls_client", name, &ctl, 1, sc.rec, sc.rec_len);
    free(sc.rec);
  }
}

/* ---- TLS: a real server's first flight ---- */

static void tls_seeds(void) {
  apns__certgen_result certs;
  apns__tls_config *ccfg = NULL, *scfg = NULL;
  apns__tls *c = NULL, *s = NULL;
  char err[256];
  uint8_t *buf;
  size_t len;
  if (apns__certgen(NULL, &certs, err, sizeof err) != 0) {
    fprintf(stderr, "gen-corpus: %s\n", err);
    exit(1);
  }
  apns__tls_options co = {.insecure_skip_verify = 1};
  apns__tls_options so = {.server = 1, .cert_pem = certs.server_cert, .key_pem = certs.server_key};
  if (apns__tls_config_new(&ccfg, &co, err, sizeof err) != 0 || apns__tls_config_new(&scfg, &so, err, sizeof err) ||
      apns__tls_new(&c, ccfg, "api.push.apple.com") != 0 || apns__tls_new(&s, scfg, NULL) != 0) {
    fprintf(stderr, "gen-corpus: %s\n", err);
    exit(1);
  }
  apns__tls_handshake(c);
  apns__tls_take_output(c, &buf, &len);
  apns__tls_feed(s, buf, len);
  apns__free(buf);
  apns__tls_handshake(s);
  apns__tls_take_output(s, &buf, &len);
  put("tls_client", "flight-insecure", &(uint8_t){0x10}, 1, buf, len);
  put("tls_client", "flight-verify", &(uint8_t){0x00}, 1, buf, len);
  put("tls_client", "flight-pieces", &(uint8_t){0x12}, 1, buf, len);
  apns__free(buf);
  apns__tls_free(c);
  apns__tls_free(s);
  apns__tls_config_unref(ccfg);
  apns__tls_config_unref(scfg);
  apns__certgen_free(&certs);
}

/* ---- text seeds ---- */

static void response_seeds(void) {
  put_text("h2_response", "ok", 0, "200\napns-id: 5e6d3b8a-1c2d-4e5f-8a9b-0c1d2e3f4a5b\n\n");
  put_text("h2_response", "unregistered", 0,
           "410\napns-id: 5e6d3b8a-1c2d-4e5f-8a9b-0c1d2e3f4a5b\ncontent-type: application/json\n\n"
           "{\"reason\":\"Unregistered\",\"timestamp\":1700000000123}");
  put_text("h2_response", "real-timestamp", 0x10, "410\n\n{\"reason\":\"ExpiredToken\",\"timestamp\":1.7e12}");
  put_text("h2_response", "bad-token", 0x21, "400\n\n{\"reason\":\"BadDeviceToken\"}");
  put_text("h2_response", "unknown-reason", 0x02, "403\n\n{\"reason\":\"SomethingNew\",\"extra\":[1,2,{}]}");
  put_text("h2_response", "not-json", 0x30, "500\n\noops");
  put_text("h2_response", "escaped", 0, "400\n\n{\"reason\":\"Bad\\u00e9\\n\\\"x\\\"\",\"timestamp\":-1}");
  put_text("h2_response", "unique-id", 0,
           "200\napns-unique-id: aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee\n\n{\"ok\":true}");
  put_text("h2_response", "reset", 0x08, "200\napns-id: x\n\n");
  put_text("h2_response", "bad-status", 0, "2x0\n\n");
  put_text("h2_response", "many-headers", 0,
           "429\nx-a: 1\nx-b: 2\nx-c: 3\nx-d: 4\nx-e: 5\nretry-after: 10\n\n{\"reason\":\"TooManyRequests\"}");
  char body[2100];
  memset(body, 'b', sizeof body - 1);
  body[sizeof body - 1] = '\0';
  char text[2200];
  snprintf(text, sizeof text, "200\n\n%s", body);
  put_text("h2_response", "too-large", 0x04, text);
}

static void payload_seeds(void) {
  put_text("payload", "raw-alert", 0, "{\"aps\":{\"alert\":{\"title\":\"Hi\",\"body\":\"there\"},\"badge\":0}}");
  put_text("payload", "raw-background", 0, "{\"aps\":{\"content-available\":1},\"id\":7}");
  put_text("payload", "raw-live", 0,
           "{\"aps\":{\"timestamp\":1700000000,\"event\":\"update\",\"content-state\":{\"eta\":5,\"x\":0.8}}}");
  put_text("payload", "raw-utf8", 0, "{\"aps\":{\"alert\":\"caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80\"}}");
  put_text("payload", "raw-empty", 0, "{}");
  put_text("payload", "raw-dup", 0, "{\"aps\":{},\"a\":1,\"a\":2}");
  put_text("payload", "raw-deep", 0,
           "[[[[[[[[[[[[[[[[[[[[{\"a\":[1e400,-0.0,\"\\ud83d\\ude00\"]}]]]]]]]]]]]]]]]]]]]]");
  put_text("payload", "raw-bad-utf8", 0, "{\"aps\":{\"alert\":\"\xc0\xaf\xed\xa0\x80\"}}");
  /* Builder programs: "<op><arg>\n" (see fuzz/payload.c for the op numbers). */
  put_text("payload", "build-alert", 1,
           "\x01Title\n\x02"
           "Body text\n\x05\x00\x07\x06"
           "default\n\x08thread\n");
  put_text("payload", "build-custom", 1,
           "\x15key\n{\"id\":7,\"list\":[1,2]}\n\x16name\nvalue\n\x17num\n\x01\x02\x14"
           "badge\n");
  put_text("payload", "build-live", 1,
           "\x0e\x01\x02\x0f"
           "update\n\x10{\"eta\":5}\n\x11stop\n\"Main St\"\n\x12"
           "Attrs\n\x13{\"a\":1}\n");
  put_text("payload", "build-sound", 0x41,
           "\x07"
           "alarm.caf\n\x80\x0c\x02\x0d\x64\x04"
           "a1\na2\n\x84x\ny\n");
  put_text("payload", "build-background", 1, "\x0a\x8a\x16k\n\xc3\xa9\n");
}

static void jwt_seeds(void) {
  /* Mode 0 (key text): skeletons only, no key. Mode 1: tokens. Mode 2: an iat and splices. */
  put_text(
      "jwt", "key-pkcs8-skeleton", 0,
      "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n");
  put_text("jwt", "key-sec1-skeleton", 0,
           "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEI\n-----END EC PRIVATE KEY-----\n");
  put_text("jwt", "key-public-skeleton", 0,
           "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n");
  put_text("jwt", "key-encrypted", 0,
           "-----BEGIN EC PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: "
           "AES-128-CBC,00112233445566778899AABBCCDDEEFF\n\nAAAA\n-----END EC PRIVATE KEY-----\n");
  put_text("jwt", "key-der", 0, "\x30\x81\x87\x02\x01\x00\x30\x13\x06\x07\x2a\x86\x48\xce\x3d\x02\x01");
  put_text("jwt", "key-run-time-pem", 0, "@");
  put_text("jwt", "key-run-time-pem-splice", 0, "@\x30\x41\x50\x2d");
  put_text("jwt", "key-run-time-der", 0, "#");
  put_text("jwt", "key-run-time-der-splice", 0, "#\x05\x01\x22\x00");
  put_text("jwt", "token-shape", 1,
           "eyJhbGciOiJFUzI1NiIsImtpZCI6IkZVWlpLRVkwMDEifQ.eyJpc3MiOiJGVVpaVEVBTTAxIiwiaWF0IjoxNzAwMDAwMDAwfQ."
           "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
  put_text("jwt", "token-alg-none", 1, "eyJhbGciOiJub25lIn0.eyJpc3MiOiJYIiwiaWF0IjotMX0.");
  put_text("jwt", "token-junk", 1, "a.b.c");
  put("jwt", "sign-unchanged", "\x02\x65\x53\xf1\x00", 5, NULL, 0);
  put("jwt", "sign-splice", "\x02\x65\x53\xf1\x00\x05\x41\x30\x2e", 9, NULL, 0);
}

static void mock_seeds(void) {
  put_text("mock_request", "ok", 0, "apns-topic: com.example.app\napns-push-type: alert\n\n{\"aps\":{}}");
  put_text("mock_request", "token-ok", 0x45,
           "apns-topic: com.example.app\napns-id: 5e6d3b8a-1c2d-4e5f-8a9b-0c1d2e3f4a5b\n\n{\"aps\":{}}");
  put_text("mock_request", "token-missing", 0x01, "apns-topic: com.example.app\n\n{}");
  put_text("mock_request", "token-bad", 0x01, "authorization: bearer a.b.c\napns-topic: com.example.app\n\n{}");
  put_text("mock_request", "hook-headers", 0x08,
           "apns-priority: 10\napns-expiration: 0\napns-collapse-id: c1\napns-push-type: voip\napns-topic: "
           "com.example.app.voip\n\n{\"aps\":{}}");
  put_text("mock_request", "own-pseudo", 0x02,
           ":method: POST\n:scheme: https\n:path: /3/device/0bad00\n:authority: x\napns-topic: a.b\n\n{}");
  put_text("mock_request", "prefixes", 0x12,
           ":method: POST\n:scheme: https\n:path: /3/device/deadbeef\n:authority: x\n\n{}");
  put_text("mock_request", "bad-path", 0x02, ":method: GET\n:scheme: https\n:path: /3/devices\n:authority: x\n\n");
  put_text("mock_request", "duplicates", 0x20, "apns-topic: a\napns-topic: b\n\n{}");
  put_text("mock_request", "bad-values", 0x04,
           "apns-id: nope\napns-priority: 7\napns-push-type: shout\napns-expiration: 12x\napns-collapse-id: \n\n");
}

/* mock_conn: what an nghttp2 client sends after its magic, for a few requests and control frames. */
static ssize_t client_body(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                           nghttp2_data_source *src, void *ud) {
  (void)s, (void)id, (void)src, (void)ud;
  static const char body[] = "{\"aps\":{\"alert\":\"hi\"}}";
  size_t n = sizeof body - 1 < len ? sizeof body - 1 : len;
  memcpy(buf, body, n);
  *flags |= NGHTTP2_DATA_FLAG_EOF;
  return (ssize_t)n;
}

static void client_stream(const char *name, uint8_t ctl, int kind) {
  nghttp2_session_callbacks *cbs;
  nghttp2_session *cli;
  nghttp2_nv nva[] = {
      {(uint8_t *)":method", (uint8_t *)"POST", 7, 4, 0},
      {(uint8_t *)":scheme", (uint8_t *)"https", 7, 5, 0},
      {(uint8_t *)":path", (uint8_t *)"/3/device/00fc13adff785122b4ad28809a3420982341241421348097878e577c991de8f0", 5,
       74, 0},
      {(uint8_t *)":authority", (uint8_t *)"api.push.apple.com", 10, 18, 0},
      {(uint8_t *)"apns-topic", (uint8_t *)"com.example.app", 10, 15, 0},
      {(uint8_t *)"apns-push-type", (uint8_t *)"alert", 14, 5, 0},
  };
  nghttp2_data_provider prd = {{.ptr = NULL}, client_body};
  uint8_t *rec = NULL;
  size_t rec_len = 0;
  const uint8_t *out;
  ssize_t n;
  nghttp2_session_callbacks_new(&cbs);
  nghttp2_session_client_new(&cli, cbs, NULL);
  nghttp2_session_callbacks_del(cbs);
  nghttp2_submit_settings(cli, NGHTTP2_FLAG_NONE, NULL, 0);
  int requests = kind == 0 ? 1 : 3;
  for (int i = 0; i < requests; i++) {
    int32_t id = nghttp2_submit_request(cli, NULL, nva, sizeof nva / sizeof nva[0], &prd, NULL);
    if (kind == 1 && i == 1) nghttp2_submit_rst_stream(cli, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
  }
  if (kind == 2) {
    nghttp2_submit_ping(cli, NGHTTP2_FLAG_NONE, NULL);
    nghttp2_submit_window_update(cli, NGHTTP2_FLAG_NONE, 0, 1000);
    nghttp2_submit_goaway(cli, NGHTTP2_FLAG_NONE, 0, NGHTTP2_NO_ERROR, NULL, 0);
  }
  while ((n = nghttp2_session_mem_send(cli, &out)) > 0) {
    rec = realloc(rec, rec_len + (size_t)n);
    memcpy(rec + rec_len, out, (size_t)n);
    rec_len += (size_t)n;
  }
  nghttp2_session_del(cli);
  if (rec_len < 24 || memcmp(rec, "PRI * HTTP/2.0", 14) != 0) {
    fprintf(stderr, "gen-corpus: no client magic\n");
    exit(1);
  }
  put("mock_conn", name, &ctl, 1, rec + 24, rec_len - 24);
  free(rec);
}

static void mock_conn_seeds(void) {
  client_stream("one", 0x00, 0);
  client_stream("three-reset", 0x0a, 1);
  client_stream("control-frames", 0x20, 2);
  client_stream("token-paused", 0x11, 0);
  client_stream("goaway-drop", 0xc4, 1);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: gen-corpus DIR   (writes DIR/<target>/<seed>)\n");
    return 2;
  }
  root = argv[1];
  h2_seeds();
  tls_seeds();
  response_seeds();
  payload_seeds();
  jwt_seeds();
  mock_seeds();
  mock_conn_seeds();
  return 0;
}
