/* Fuzz target h2_response: the client's response and reason parsing (lib/h2.c: headers, JSON bodies, timestamps),
 * reached with well-formed HTTP/2 frames that carry arbitrary header fields and bodies.
 *
 * Input (text, so the dictionary and line-based mutations work):
 *   byte 0   control: bit 0 a 1xx response first, bit 1 trailers after the body, bit 2 the body repeated 40 times
 *            (past the 64 KiB cap when it is 1.7 KB or more), bit 3 the server resets the stream after its
 *            response HEADERS instead of ending it, bits 4-5 the DATA frame size (16 KiB, 1, 7, 100 bytes)
 *   line 1   the :status value, sent as given
 *   lines    "name: value" response headers (split at the first ": "; a line without one is a name with an empty
 *            value) up to an empty line
 *   the rest the body
 * A real nghttp2 server session in memory sends exactly that to our session, which has one request in flight.
 *
 * Invariants: the request ends exactly once; with a response, :status was three digits and res->status is its
 * value, the body is the one sent byte for byte (only when within APNS__H2_MAX_BODY; over it the end is
 * APNS_ERESPONSETOOLARGE), headers with apns-id carry it; for a non-2xx status whose body jansson reads as an
 * object, reason_text is its "reason" string, reason is apns_reason_from_string of it, and timestamp_ms is its
 * "timestamp" when that is an integer. */
#include "fuzz.h"

#include "alloc.h"
#include "h2.h"
#include "request.h"

#include <jansson.h>
#include <string.h>

#define MAX_HDRS 24

typedef struct fz_resp {
  /* what the server sends */
  uint8_t ctl;
  const uint8_t *status;
  size_t status_len;
  nghttp2_nv hdrs[MAX_HDRS + 2];
  size_t nhdrs;
  uint8_t *body;
  size_t body_len, body_off;
  size_t frame_size;
  nghttp2_session *srv;
  int32_t srv_stream;
  int answered;
  /* what the client saw */
  int ends, responded, err;
  apns_response res;
  char *res_body, *reason_text, *apns_id;
  size_t reason_len;
} fz_resp;

static ssize_t srv_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                        nghttp2_data_source *src, void *ud) {
  fz_resp *r = ud;
  size_t n = r->body_len - r->body_off;
  (void)s, (void)id, (void)src;
  if (n > len) n = len;
  if (n > r->frame_size) n = r->frame_size;
  memcpy(buf, r->body + r->body_off, n);
  r->body_off += n;
  if (r->body_off == r->body_len) {
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    if (r->ctl & 0x02) {
      static const nghttp2_nv tr = {(uint8_t *)"x-trailer", (uint8_t *)"1", 9, 1, NGHTTP2_NV_FLAG_NONE};
      *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
      if (nghttp2_submit_trailer(s, id, &tr, 1) != 0) return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
  }
  return (ssize_t)n;
}

static void srv_answer(fz_resp *r) {
  nghttp2_data_provider prd;
  nghttp2_nv nva[MAX_HDRS + 1];
  if (r->answered) return;
  r->answered = 1;
  if (r->ctl & 0x01) {
    nghttp2_nv info = {(uint8_t *)":status", (uint8_t *)"100", 7, 3, NGHTTP2_NV_FLAG_NONE};
    (void)nghttp2_submit_headers(r->srv, NGHTTP2_FLAG_NONE, r->srv_stream, NULL, &info, 1, NULL);
  }
  nva[0] = (nghttp2_nv){(uint8_t *)":status", (uint8_t *)r->status, 7, r->status_len, NGHTTP2_NV_FLAG_NONE};
  memcpy(nva + 1, r->hdrs, r->nhdrs * sizeof nva[0]);
  if (r->ctl & 0x08) {
    (void)nghttp2_submit_headers(r->srv, NGHTTP2_FLAG_NONE, r->srv_stream, NULL, nva, r->nhdrs + 1, NULL);
    (void)nghttp2_submit_rst_stream(r->srv, NGHTTP2_FLAG_NONE, r->srv_stream, NGHTTP2_INTERNAL_ERROR);
    return;
  }
  prd.source.ptr = r;
  prd.read_callback = srv_read;
  (void)nghttp2_submit_response(r->srv, r->srv_stream, nva, r->nhdrs + 1, r->body_len ? &prd : NULL);
}

static int srv_on_frame_recv(nghttp2_session *s, const nghttp2_frame *frame, void *ud) {
  fz_resp *r = ud;
  (void)s;
  if ((frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
      (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
    r->srv_stream = frame->hd.stream_id;
    srv_answer(r);
  }
  return 0;
}

static char *dup_bytes(const char *p, size_t n) {
  char *d = malloc(n + 1);
  FUZZ_CHECK(d != NULL);
  memcpy(d, p, n);
  d[n] = '\0';
  return d;
}

static void ended(fz_resp *r, apns__req *req) {
  FUZZ_CHECK(r->ends == 0);
  r->ends++;
  apns__req_free(req);
}

static void on_response(void *ctx, apns__req *req, const apns_response *res) {
  fz_resp *r = ctx;
  r->responded = 1;
  r->res = *res;
  if (res->body) r->res_body = dup_bytes(res->body, res->body_len);
  if (res->reason_text) {
    r->reason_len = strlen(res->reason_text);
    r->reason_text = dup_bytes(res->reason_text, r->reason_len);
  }
  if (res->apns_id) r->apns_id = dup_bytes(res->apns_id, strlen(res->apns_id));
  ended(r, req);
}

static void on_stream_error(void *ctx, apns__req *req, int err, apns_delivery delivery) {
  fz_resp *r = ctx;
  FUZZ_CHECK(err < 0 && delivery != APNS_DELIVERY_RESPONDED);
  r->err = err;
  ended(r, req);
}

/* Parses the input into the response the server will send. */
static void parse_input(fz_resp *r, fuzz_in *in, uint8_t *storage) {
  static const size_t frames[] = {16384, 1, 7, 100};
  size_t len;
  const uint8_t *p;
  r->ctl = fuzz_u8(in);
  r->frame_size = frames[(r->ctl >> 4) & 3];
  r->status = fuzz_line(in, &r->status_len);
  while (in->n > 0 && r->nhdrs < MAX_HDRS) {
    p = fuzz_line(in, &len);
    if (len == 0) break;
    size_t sep = 0;
    while (sep + 1 < len && !(p[sep] == ':' && p[sep + 1] == ' ' && sep > 0)) sep++;
    nghttp2_nv *nv = &r->hdrs[r->nhdrs++];
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
  size_t reps = (r->ctl & 0x04) ? 40 : 1;
  r->body = storage;
  r->body_len = 0;
  for (size_t i = 0; i < reps; i++) {
    memcpy(storage + r->body_len, in->p, in->n);
    r->body_len += in->n;
  }
}

static void check_response(const fz_resp *r) {
  FUZZ_CHECK(r->status_len == 3);
  int status = (r->status[0] - '0') * 100 + (r->status[1] - '0') * 10 + (r->status[2] - '0');
  FUZZ_CHECK(r->res.status == status);
  FUZZ_CHECK(r->body_len <= APNS__H2_MAX_BODY);
  FUZZ_CHECK(r->res.body_len == r->body_len);
  if (r->body_len) FUZZ_CHECK(memcmp(r->res_body, r->body, r->body_len) == 0);
  if (r->res.status >= 200 && r->res.status <= 299) {
    FUZZ_CHECK(r->reason_text == NULL && r->res.reason == APNS_REASON_NONE && r->res.timestamp_ms == 0);
    return;
  }
  json_t *j = r->body_len ? json_loadb((const char *)r->body, r->body_len, 0, NULL) : NULL;
  json_t *reason = json_object_get(j, "reason"), *ts = json_object_get(j, "timestamp");
  if (json_is_string(reason)) {
    const char *want = json_string_value(reason);
    FUZZ_CHECK(r->reason_text != NULL && strcmp(r->reason_text, want) == 0);
    FUZZ_CHECK(r->res.reason == apns_reason_from_string(want, json_string_length(reason)));
  } else if (j != NULL) {
    FUZZ_CHECK(r->reason_text == NULL && r->res.reason == APNS_REASON_NONE);
  }
  if (json_is_integer(ts)) FUZZ_CHECK(r->res.timestamp_ms == (int64_t)json_integer_value(ts));
  if (j != NULL && ts == NULL) FUZZ_CHECK(r->res.timestamp_ms == 0);
  json_decref(j);
}

int apns_fuzz_h2_response(const uint8_t *data, size_t size) {
  static const apns__h2_callbacks cbs = {on_response, on_stream_error, NULL, NULL, NULL};
  static const uint8_t body[] = "{\"aps\":{\"alert\":\"hi\"}}";
  fz_resp r;
  fuzz_in in = {data, size};
  nghttp2_session_callbacks *scb;
  apns__h2 *h2 = NULL;
  apns__req *req = NULL;
  apns_request desc;
  uint8_t *storage;

  if (size > 64 * 1024) return 0;
  memset(&r, 0, sizeof r);
  storage = malloc(size * 40 + 1);
  FUZZ_CHECK(storage != NULL);
  parse_input(&r, &in, storage);

  FUZZ_CHECK(nghttp2_session_callbacks_new(&scb) == 0);
  nghttp2_session_callbacks_set_on_frame_recv_callback(scb, srv_on_frame_recv);
  FUZZ_CHECK(nghttp2_session_server_new(&r.srv, scb, &r) == 0);
  nghttp2_session_callbacks_del(scb);
  FUZZ_CHECK(nghttp2_submit_settings(r.srv, NGHTTP2_FLAG_NONE, NULL, 0) == 0);

  apns_request_init(&desc);
  desc.path = "/3/device/00fc13adff785122b4ad28809a3420982341241421348097878e577c991de8f0";
  desc.body = body;
  desc.body_len = sizeof body - 1;
  if (apns__h2_new(&h2, "api.push.apple.com", &cbs, &r) != 0) goto out;
  if (apns__req_new(&req, &desc, 0) != 0) goto out;
  if (apns__h2_submit(h2, req, NULL, 0) <= 0) {
    apns__req_free(req);
    goto out;
  }
  for (int turn = 0; turn < 64 && r.ends == 0; turn++) {
    uint8_t *buf = NULL;
    size_t len = 0;
    const uint8_t *sbuf;
    ssize_t sn;
    int moved = 0;
    if (apns__h2_take_output(h2, &buf, &len) != 0) break;
    if (len > 0) {
      moved = 1;
      if (nghttp2_session_mem_recv(r.srv, buf, len) < 0) {
        apns__free(buf);
        break;
      }
    }
    apns__free(buf);
    while ((sn = nghttp2_session_mem_send(r.srv, &sbuf)) > 0) {
      moved = 1;
      int rv = apns__h2_feed(h2, sbuf, (size_t)sn);
      FUZZ_CHECK(rv == 0 || rv == APNS_EHTTP2 || rv == APNS_ENOMEM);
      if (rv != 0) break;
    }
    if (!moved) break;
  }
  if (r.ends == 0) {
    /* The exchange stalled or broke: the owner ends what is left. */
    apns__h2_fail_all(h2, APNS_ECLOSED, APNS_DELIVERY_UNKNOWN);
  }
  FUZZ_CHECK(r.ends == 1);
  if (r.responded) {
    check_response(&r);
  } else if (r.err == APNS_ERESPONSETOOLARGE) {
    size_t hbytes = 0;
    for (size_t i = 0; i < r.nhdrs; i++) hbytes += r.hdrs[i].namelen + r.hdrs[i].valuelen + 2;
    FUZZ_CHECK(r.body_len > APNS__H2_MAX_BODY || hbytes > 32 * 1024 - 64);
  }
out:
  apns__h2_free(h2);
  nghttp2_session_del(r.srv);
  free(r.res_body);
  free(r.reason_text);
  free(r.apns_id);
  free(storage);
  return 0;
}

APNS_FUZZ_MAIN(h2_response)
