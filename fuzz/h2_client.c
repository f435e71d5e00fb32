/* Fuzz target h2_client: the client's HTTP/2 session (lib/h2.c) fed arbitrary server bytes, with requests in flight.
 *
 * Input: one control byte, then the server's byte stream. Control bits: 0 submit a new request from inside each end
 * callback, 1 cancel another open stream from inside it, 2 free the session from inside the second one (deferred),
 * 3 "raw preface", 4-6 how the input is cut into feeds, 7 GOAWAY (apns__h2_shutdown) half-way and fail_all at the
 * end. Without raw preface the harness first feeds a server SETTINGS of its own (MAX_CONCURRENT_STREAMS 100) and
 * submits MAX_REQS requests (stream ids 1, 3, ..., 15), so the input is what the server sends next (the seeds
 * answer those streams); with it, the input is the server's whole stream, SETTINGS first, and requests are
 * submitted between feeds as the server's limit allows. Bodies are 20, 0 and 70 000 bytes (over the default
 * window, so flow control is in play). A PING is queued at the start.
 *
 * Invariants: every submitted request ends exactly once (on_response or on_stream_error), a request whose submit
 * failed never; no callback inside apns__h2_submit; the request is freed in its callback, so a read after it is a
 * use after free (ASan); a response's fields are consistent (status 200-999, body NUL-terminated, body and header
 * sizes within the documented bounds, reason NONE without reason text); errors are negative with a delivery that
 * is not RESPONDED; apns__h2_in_flight() equals the requests open; apns__h2_feed returns only the documented
 * codes. */
#include "fuzz.h"

#include "alloc.h"
#include "h2.h"
#include "request.h"

#include <string.h>

#define MAX_REQS 8
/* Requests submitted from callbacks (control bit 0) come on top, up to this many slots in all. */
#define MAX_SLOTS 16

typedef struct fz_slot {
  apns__req *req;
  int32_t stream;
  int submitted, ends;
} fz_slot;

typedef struct fz_state {
  apns__h2 *h2;
  fz_slot slots[MAX_SLOTS];
  int nslots;
  int in_submit, freed, completions;
  int dead; /* the error apns__h2_feed returned, once it did */
  uint8_t ctl;
} fz_state;

static uint8_t big_body[70000];

static int open_count(const fz_state *s) {
  int n = 0;
  for (int i = 0; i < s->nslots; i++) n += s->slots[i].submitted && s->slots[i].ends == 0;
  return n;
}

static void submit_one(fz_state *s);

static fz_slot *slot_of(fz_state *s, apns__req *req) {
  int idx;
  FUZZ_CHECK(req != NULL);
  memcpy(&idx, apns__req_extra(req), sizeof idx);
  FUZZ_CHECK(idx >= 0 && idx < s->nslots);
  FUZZ_CHECK(s->slots[idx].req == req);
  return &s->slots[idx];
}

/* Bookkeeping shared by both end callbacks, then what the control byte asks for. */
static void ended(fz_state *s, apns__req *req) {
  fz_slot *sl = slot_of(s, req);
  FUZZ_CHECK(!s->in_submit);
  FUZZ_CHECK(sl->submitted);
  FUZZ_CHECK(sl->ends == 0);
  sl->ends++;
  sl->req = NULL;
  apns__req_free(req);
  s->completions++;
  if (s->freed) return;
  if (s->ctl & 0x01) submit_one(s);
  if (s->ctl & 0x02) {
    for (int i = 0; i < s->nslots; i++) {
      if (s->slots[i].submitted && s->slots[i].ends == 0) {
        FUZZ_CHECK(apns__h2_cancel(s->h2, s->slots[i].stream, APNS_ECANCELED, APNS_DELIVERY_UNKNOWN) == 0);
        FUZZ_CHECK(s->slots[i].ends == 1);
        break;
      }
    }
  }
  if ((s->ctl & 0x04) && s->completions == 2) {
    s->freed = 1;
    apns__h2_free(s->h2); /* deferred until the outermost apns__h2 call returns */
  }
}

static void on_response(void *ctx, apns__req *req, const apns_response *res) {
  FUZZ_CHECK(res != NULL);
  FUZZ_CHECK(res->status >= 200 && res->status <= 999);
  FUZZ_CHECK(res->attempts == 1);
  FUZZ_CHECK(res->delivery == APNS_DELIVERY_RESPONDED);
  FUZZ_CHECK((res->body == NULL) == (res->body_len == 0));
  FUZZ_CHECK(res->body_len <= APNS__H2_MAX_BODY);
  if (res->body) FUZZ_CHECK(res->body[res->body_len] == '\0');
  FUZZ_CHECK((res->headers == NULL) == (res->num_headers == 0));
  size_t hbytes = 0;
  for (size_t i = 0; i < res->num_headers; i++) {
    FUZZ_CHECK(res->headers[i].name != NULL && res->headers[i].value != NULL);
    hbytes += strlen(res->headers[i].name) + strlen(res->headers[i].value) + 2;
  }
  FUZZ_CHECK(hbytes <= 32 * 1024);
  if (res->apns_id) FUZZ_CHECK(strlen(res->apns_id) <= 32 * 1024);
  if (res->reason_text == NULL) FUZZ_CHECK(res->reason == APNS_REASON_NONE);
  FUZZ_CHECK(apns_reason_string(res->reason) != NULL);
  ended(ctx, req);
}

static void on_stream_error(void *ctx, apns__req *req, int err, apns_delivery delivery) {
  FUZZ_CHECK(err < 0);
  FUZZ_CHECK(delivery == APNS_DELIVERY_NOT_PROCESSED || delivery == APNS_DELIVERY_UNKNOWN);
  ended(ctx, req);
}

static void on_goaway(void *ctx, uint32_t code, int32_t last, const char *reason) {
  (void)ctx, (void)code, (void)last, (void)reason;
}
static void on_max_streams(void *ctx, uint32_t max) {
  (void)ctx, (void)max;
}
static void on_ping_ack(void *ctx) {
  (void)ctx;
}

static void submit_one(fz_state *s) {
  static const size_t sizes[] = {20, 0, sizeof big_body};
  apns_header hdrs[] = {{"apns-topic", "com.example.app"}, {"apns-push-type", "alert"}};
  apns_request desc;
  fz_slot *sl;
  int idx = s->nslots;
  int32_t id;
  if (s->freed || s->nslots == MAX_SLOTS) return;
  apns_request_init(&desc);
  desc.path = "/3/device/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
  desc.headers = hdrs;
  desc.num_headers = 2;
  desc.body = big_body;
  desc.body_len = sizes[idx % 3];
  sl = &s->slots[idx];
  memset(sl, 0, sizeof *sl);
  if (apns__req_new(&sl->req, &desc, sizeof idx) != 0) return;
  memcpy(apns__req_extra(sl->req), &idx, sizeof idx);
  s->nslots++;
  s->in_submit = 1;
  id = apns__h2_submit(s->h2, sl->req, NULL, 0);
  s->in_submit = 0;
  if (id > 0) {
    sl->stream = id;
    sl->submitted = 1;
  } else {
    FUZZ_CHECK(id == APNS_EBLOCKED || id == APNS_ECLOSED || id == APNS_ENOMEM);
    apns__req_free(sl->req);
    sl->req = NULL;
    s->nslots--; /* the slot was never visible to the session: reuse it */
  }
}

static void drain_output(fz_state *s) {
  uint8_t *buf = NULL;
  size_t len = 0;
  int rv = apns__h2_take_output(s->h2, &buf, &len);
  /* h2.h names 0, APNS_ENOMEM and APNS_EBUSY; a session that died of a fatal nghttp2 error (a flood of control
   * frames, say) also returns its error here, as apns__h2_feed did. */
  FUZZ_CHECK(rv == 0 || rv == APNS_ENOMEM || (s->dead && rv == s->dead));
  apns__free(buf);
}

int apns_fuzz_h2_client(const uint8_t *data, size_t size) {
  static const size_t chunks[] = {1 << 20, 1, 9, 64, 500, 4096, 13, 1 << 20};
  fz_state s;
  fuzz_in in = {data, size};
  size_t chunk;
  static const apns__h2_callbacks cbs = {on_response, on_stream_error, on_goaway, on_max_streams, on_ping_ack};

  memset(&s, 0, sizeof s);
  s.ctl = fuzz_u8(&in);
  chunk = chunks[(s.ctl >> 4) & 7];
  if (apns__h2_new(&s.h2, "api.push.apple.com", &cbs, &s) != 0) return 0;
  submit_one(&s);
  drain_output(&s);
  FUZZ_CHECK(apns__h2_ping(s.h2) == 0);
  if (!(s.ctl & 0x08)) {
    static const uint8_t settings[] = {0, 0, 6, 4, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 100};
    FUZZ_CHECK(apns__h2_feed(s.h2, settings, sizeof settings) == 0);
    FUZZ_CHECK(apns__h2_max_streams(s.h2) == 100);
    while (s.nslots < MAX_REQS) {
      int before = s.nslots;
      submit_one(&s);
      if (s.nslots == before) break;
    }
    drain_output(&s);
  }
  while (in.n > 0 && !s.freed) {
    size_t len;
    const uint8_t *p = fuzz_take(&in, chunk, &len);
    int rv = apns__h2_feed(s.h2, p, len);
    if (s.freed) break;
    FUZZ_CHECK(rv == 0 || rv == APNS_EHTTP2 || rv == APNS_ENOMEM);
    s.dead = rv;
    FUZZ_CHECK((int)apns__h2_in_flight(s.h2) == open_count(&s));
    drain_output(&s);
    if (rv != 0) break;
    while (!s.freed && s.nslots < MAX_REQS && apns__h2_in_flight(s.h2) < apns__h2_max_streams(s.h2)) {
      int before = s.nslots;
      submit_one(&s);
      if (s.nslots == before) break;
    }
    if (!s.freed && (s.ctl & 0x80) && in.n < size / 2) (void)apns__h2_shutdown(s.h2);
    if (!s.freed) drain_output(&s);
  }
  if (!s.freed && (s.ctl & 0x80)) {
    apns__h2_fail_all(s.h2, APNS_ECLOSED, APNS_DELIVERY_UNKNOWN);
    FUZZ_CHECK(open_count(&s) == 0);
  }
  /* A free asked for from a callback inside fail_all has happened when it returned. */
  if (!s.freed) apns__h2_free(s.h2);
  for (int i = 0; i < s.nslots; i++) {
    FUZZ_CHECK(s.slots[i].submitted);
    FUZZ_CHECK(s.slots[i].ends == 1);
    FUZZ_CHECK(s.slots[i].req == NULL);
  }
  return 0;
}

APNS_FUZZ_MAIN(h2_client)
