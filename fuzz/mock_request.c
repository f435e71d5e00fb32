/* Fuzz target mock_request: apns-mock's request checks (tools/apns-mock/mock_server.c, the order documented in
 * mock.h), through its sans-I/O connection (apns__mock_conn, h2c) with a real nghttp2 client in memory.
 *
 * Input (text):
 *   byte 0   control: bit 0 token auth (a verifier holding keys.h's key; the mock's clock stands at FUZZ_NOW),
 *            bit 1 no pseudo-headers of the harness's own (the input gives :method, :path, ... itself), bit 2 the
 *            request sent twice on the connection, bit 3 the on_request hook installed (the mock then copies each
 *            request), bit 4 bad_prefix "dead" and unregistered_prefix "0bad", bit 5 a GOAWAY after the first
 *            request, bit 6 an "authorization: bearer <token>" header of the harness's own, signed at run time
 *            with the fuzz key at FUZZ_NOW (inputs cannot forge one)
 *   lines    "name: value" request headers (split at the first ": " after the name) up to an empty line
 *   the rest the body
 *
 * Invariants: the mock never fails its connection on a well-formed HTTP/2 exchange; each request gets one answer
 * (a response, or a reset from nghttp2 for a malformed header block); the status is one of Apple's, an error
 * answer's body is {"reason": R} with R a reason libapns knows and apns_reason_status(R) its status, a 410 has an
 * integer timestamp; every response carries an apns-id that is a UUID. A 200 only follows a POST to
 * /3/device/<hex token> with a non-empty body within the push type's limit and valid apns-topic, apns-collapse-id,
 * apns-priority and apns-expiration when given; with the hook installed, the hook saw the very headers sent. */
#include "fuzz.h"
#include "keys.h"

#include "alloc.h"
#include "jwt_verify.h"
#include "mock_server.h"

#include <jansson.h>
#include <nghttp2/nghttp2.h>
#include <string.h>
#include <strings.h>

#define MAX_HDRS 24
#define MAX_REQS 2

typedef struct fz_req {
  int32_t id;
  int status, ends, reset;
  char apns_id[64];
  char *body;
  size_t body_len;
} fz_req;

typedef struct fz_mock {
  nghttp2_nv hdrs[MAX_HDRS + 4];
  size_t nhdrs;
  const uint8_t *body;
  size_t body_len, body_off[MAX_REQS];
  fz_req reqs[MAX_REQS];
  int nreqs;
  int hook_calls, hook_mismatch;
  size_t given; /* headers from the input (after the harness's own) */
} fz_mock;

static fz_req *req_of(fz_mock *m, int32_t id) {
  for (int i = 0; i < m->nreqs; i++)
    if (m->reqs[i].id == id) return &m->reqs[i];
  return NULL;
}

static ssize_t cli_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                        nghttp2_data_source *src, void *ud) {
  fz_mock *m = ud;
  size_t *off = src->ptr, n = m->body_len - *off;
  (void)s, (void)id;
  if (n > len) n = len;
  memcpy(buf, m->body + *off, n);
  *off += n;
  if (*off == m->body_len) *flags |= NGHTTP2_DATA_FLAG_EOF;
  return (ssize_t)n;
}

static int cli_on_header(nghttp2_session *s, const nghttp2_frame *frame, const uint8_t *name, size_t namelen,
                         const uint8_t *value, size_t valuelen, uint8_t flags, void *ud) {
  fz_req *r = req_of(ud, frame->hd.stream_id);
  (void)s, (void)flags;
  if (r == NULL) return 0;
  if (namelen == 7 && memcmp(name, ":status", 7) == 0 && valuelen == 3)
    r->status = (value[0] - '0') * 100 + (value[1] - '0') * 10 + (value[2] - '0');
  if (namelen == 7 && memcmp(name, "apns-id", 7) == 0 && valuelen < sizeof r->apns_id) {
    memcpy(r->apns_id, value, valuelen);
    r->apns_id[valuelen] = '\0';
  }
  return 0;
}

static int cli_on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len, void *ud) {
  fz_req *r = req_of(ud, id);
  (void)s, (void)flags;
  if (r == NULL) return 0;
  r->body = realloc(r->body, r->body_len + len + 1);
  FUZZ_CHECK(r->body != NULL);
  memcpy(r->body + r->body_len, data, len);
  r->body_len += len;
  r->body[r->body_len] = '\0';
  return 0;
}

static int cli_on_close(nghttp2_session *s, int32_t id, uint32_t code, void *ud) {
  fz_req *r = req_of(ud, id);
  (void)s;
  if (r == NULL) return 0;
  FUZZ_CHECK(r->ends == 0);
  r->ends++;
  r->reset = code != NGHTTP2_NO_ERROR;
  return 0;
}

static void on_request(void *data, apns_mock_request *req) {
  fz_mock *m = data;
  size_t j = 0;
  m->hook_calls++;
  /* The regular headers the hook sees are the ones sent, in order (pseudo-headers left out); names compare
   * without case, as nghttp2 lowercases them when it copies a request. */
  for (size_t i = 0; i < m->nhdrs; i++) {
    const nghttp2_nv *nv = &m->hdrs[i];
    if (nv->namelen > 0 && nv->name[0] == ':') continue;
    if (j >= req->num_headers || strlen(req->headers[j].name) != nv->namelen ||
        strncasecmp(req->headers[j].name, (const char *)nv->name, nv->namelen) != 0 ||
        strlen(req->headers[j].value) != nv->valuelen || memcmp(req->headers[j].value, nv->value, nv->valuelen) != 0)
      m->hook_mismatch = 1;
    j++;
  }
  if (j != req->num_headers) m->hook_mismatch = 1;
  if (req->body_len != m->body_len || (m->body_len && memcmp(req->body, m->body, m->body_len) != 0))
    m->hook_mismatch = 1;
}

static int64_t fixed_clock(void *data) {
  (void)data;
  return FUZZ_NOW;
}

static const nghttp2_nv *find(const fz_mock *m, const char *name) {
  const nghttp2_nv *hit = NULL;
  for (size_t i = 0; i < m->nhdrs; i++)
    if (m->hdrs[i].namelen == strlen(name) &&
        strncasecmp((const char *)m->hdrs[i].name, name, m->hdrs[i].namelen) == 0) {
      if (hit != NULL) return NULL; /* given twice: the mock must refuse (DuplicateHeaders) */
      hit = &m->hdrs[i];
    }
  return hit;
}

static int nv_is(const nghttp2_nv *nv, const char *s) {
  return nv != NULL && nv->valuelen == strlen(s) && memcmp(nv->value, s, nv->valuelen) == 0;
}

/* A 200 must follow a request that passes every check. */
static void check_accepted(const fz_mock *m) {
  const nghttp2_nv *method = find(m, ":method"), *path = find(m, ":path"), *nv;
  char buf[300];
  FUZZ_CHECK(nv_is(method, "POST"));
  FUZZ_CHECK(path != NULL && path->valuelen > 10 && memcmp(path->value, "/3/device/", 10) == 0);
  for (size_t i = 10; i < path->valuelen; i++) {
    uint8_t c = path->value[i];
    FUZZ_CHECK((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'));
  }
  FUZZ_CHECK(m->body_len > 0 && m->body_len <= APNS_PAYLOAD_MAX_VOIP);
  if ((nv = find(m, "apns-topic")) != NULL) {
    FUZZ_CHECK(nv->valuelen < sizeof buf);
    memcpy(buf, nv->value, nv->valuelen);
    buf[nv->valuelen] = '\0';
    FUZZ_CHECK(apns_validate_topic(buf) == 0);
  }
  if ((nv = find(m, "apns-collapse-id")) != NULL) FUZZ_CHECK(nv->valuelen >= 1 && nv->valuelen <= 64);
  if ((nv = find(m, "apns-priority")) != NULL) FUZZ_CHECK(nv_is(nv, "1") || nv_is(nv, "5") || nv_is(nv, "10"));
  if ((nv = find(m, "apns-expiration")) != NULL) {
    FUZZ_CHECK(nv->valuelen >= 1 && nv->valuelen <= 19);
    for (size_t i = 0; i < nv->valuelen; i++) FUZZ_CHECK(nv->value[i] >= '0' && nv->value[i] <= '9');
  }
}

static void check_answer(const fz_mock *m, const fz_req *r) {
  static const int statuses[] = {200, 400, 403, 404, 405, 410, 413, 429};
  int known = 0;
  for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++) known |= r->status == statuses[i];
  FUZZ_CHECK(known);
  FUZZ_CHECK(apns__mock_uuid_valid(r->apns_id, strlen(r->apns_id)));
  if (r->status == 200) {
    FUZZ_CHECK(r->body_len == 0);
    check_accepted(m);
    return;
  }
  json_t *j = json_loadb(r->body, r->body_len, 0, NULL);
  json_t *reason = json_object_get(j, "reason"), *ts = json_object_get(j, "timestamp");
  FUZZ_CHECK(json_is_string(reason));
  apns_reason code = apns_reason_from_string(json_string_value(reason), json_string_length(reason));
  FUZZ_CHECK(code != APNS_REASON_UNKNOWN && code != APNS_REASON_NONE);
  FUZZ_CHECK(apns_reason_status(code) == r->status);
  if (r->status == 410) FUZZ_CHECK(json_is_integer(ts));
  json_decref(j);
}

/* "bearer <token>" signed with the fuzz key at FUZZ_NOW, made once per process; "" when it could not be. */
static const char *bearer(void) {
  static char value[1024];
  if (value[0] == '\0' && fuzz_key() != NULL) {
    apns__jwt_signer *s = NULL;
    char *tok = NULL;
    if (apns__jwt_signer_new(&s, NULL, fuzz_key(), strlen(fuzz_key()), FUZZ_KID, FUZZ_TEAM, NULL, 0) == 0 &&
        apns__jwt_sign(s, FUZZ_NOW, &tok, NULL) == 0)
      snprintf(value, sizeof value, "bearer %s", tok);
    apns__free(tok);
    apns__jwt_signer_free(s);
  }
  return value;
}

static void parse_input(fz_mock *m, fuzz_in *in, uint8_t ctl, const char *path) {
#define NV(n, v)                                                                                                     \
  m->hdrs[m->nhdrs++] = (nghttp2_nv) {                                                                               \
    (uint8_t *)(n), (uint8_t *)(v), strlen(n), strlen(v), NGHTTP2_NV_FLAG_NONE                                       \
  }
  if (!(ctl & 0x02)) {
    NV(":method", "POST");
    NV(":scheme", "https");
    NV(":path", path);
    NV(":authority", "api.push.apple.com");
  }
  if (ctl & 0x40) NV("authorization", bearer());
#undef NV
  while (in->n > 0 && m->given < MAX_HDRS) {
    size_t len, sep = 1;
    const uint8_t *p = fuzz_line(in, &len);
    if (len == 0) break;
    while (sep + 1 < len && !(p[sep] == ':' && p[sep + 1] == ' ')) sep++;
    nghttp2_nv *nv = &m->hdrs[m->nhdrs++];
    m->given++;
    nv->name = (uint8_t *)p;
    nv->flags = NGHTTP2_NV_FLAG_NONE;
    if (sep + 1 < len) {
      nv->namelen = sep;
      nv->value = (uint8_t *)p + sep + 2;
      nv->valuelen = len - sep - 2;
    } else {
      nv->namelen = len;
      nv->value = (uint8_t *)"";
      nv->valuelen = 0;
    }
  }
  m->body = in->p;
  m->body_len = in->n;
}

int apns_fuzz_mock_request(const uint8_t *data, size_t size) {
  fz_mock m;
  fuzz_in in = {data, size};
  uint8_t ctl = fuzz_u8(&in);
  apns_mock_options opts;
  static apns_mock_stats stats;
  apns__jwt_verifier *jwt = NULL;
  apns__mock_conn *conn = NULL;
  nghttp2_session *cli = NULL;
  nghttp2_session_callbacks *cbs;
  int fatal = 0;

  memset(&m, 0, sizeof m);
  parse_input(&m, &in, ctl, "/3/device/00fc13adff785122b4ad28809a3420982341241421348097878e577c991de8f0");
  apns_mock_options_init(&opts);
  opts.clock = fixed_clock;
  opts.data = &m;
  if (ctl & 0x08) opts.on_request = on_request;
  if (ctl & 0x10) {
    opts.bad_prefix = "dead";
    opts.unregistered_prefix = "0bad";
  }
  if (ctl & 0x20) opts.goaway_after = 1;
  if (ctl & 0x01) {
    if (apns__jwt_verifier_new(&jwt) != 0) return 0;
    if (fuzz_key() == NULL) goto out;
    if (apns__jwt_verifier_add(jwt, FUZZ_KID, NULL, fuzz_key(), strlen(fuzz_key()), NULL, 0) != 0) goto out;
  }
  if (apns__mock_conn_new(&conn, &opts, NULL, jwt, &stats, 42) != 0) goto out;

  FUZZ_CHECK(nghttp2_session_callbacks_new(&cbs) == 0);
  nghttp2_session_callbacks_set_on_header_callback(cbs, cli_on_header);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, cli_on_data);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, cli_on_close);
  FUZZ_CHECK(nghttp2_session_client_new(&cli, cbs, &m) == 0);
  nghttp2_session_callbacks_del(cbs);
  FUZZ_CHECK(nghttp2_submit_settings(cli, NGHTTP2_FLAG_NONE, NULL, 0) == 0);

  int want = (ctl & 0x04) ? 2 : 1;
  for (int turn = 0; turn < 64; turn++) {
    const uint8_t *out;
    uint8_t *buf = NULL;
    size_t len = 0;
    ssize_t n;
    int moved = 0;
    /* One stream at a time: token connections allow one until a 200. */
    if (m.nreqs < want && (m.nreqs == 0 || m.reqs[m.nreqs - 1].ends)) {
      nghttp2_data_provider prd = {{.ptr = &m.body_off[m.nreqs]}, cli_read};
      int32_t id = nghttp2_submit_request(cli, NULL, m.hdrs, m.nhdrs, m.body_len ? &prd : NULL, NULL);
      if (id > 0)
        m.reqs[m.nreqs++].id = id;
      else
        want = m.nreqs;
    }
    while ((n = nghttp2_session_mem_send(cli, &out)) > 0) {
      moved = 1;
      int rv = apns__mock_conn_feed(conn, out, (size_t)n, 1000);
      if (rv != 0) {
        fatal = rv;
        break;
      }
    }
    if (fatal) break;
    if (apns__mock_conn_flush(conn, 1000, &buf, &len) != 0) {
      fatal = 1;
      apns__free(buf);
      break;
    }
    if (len > 0) {
      moved = 1;
      ssize_t rv = nghttp2_session_mem_recv(cli, buf, len);
      apns__free(buf);
      if (rv < 0) break;
    }
    if (!moved && (m.nreqs == want || m.reqs[m.nreqs - 1].ends == 0)) break;
  }
  /* nghttp2 on the mock's side resets what it finds malformed; a fatal error there is the mock's own. */
  FUZZ_CHECK(fatal == 0 || fatal == APNS_EHTTP2 || fatal == APNS_ENOMEM);
  if (fatal == 0) {
    for (int i = 0; i < m.nreqs; i++) {
      fz_req *r = &m.reqs[i];
      FUZZ_CHECK(r->ends == 1 || (ctl & 0x20)); /* after GOAWAY the second may be refused */
      if (r->ends == 1 && !r->reset && r->status) check_answer(&m, r);
    }
    if (ctl & 0x08) FUZZ_CHECK(!m.hook_mismatch);
  }
out:
  for (int i = 0; i < m.nreqs; i++) free(m.reqs[i].body);
  nghttp2_session_del(cli);
  apns__mock_conn_free(conn);
  apns__jwt_verifier_free(jwt);
  return 0;
}

APNS_FUZZ_MAIN(mock_request)
