/* apns-mock: one server connection without I/O, see mock_server.h.
 *
 * Per request the work is O(1) and allocation-free in the steady state: stream records come from slabs recycled
 * through a free list, response header values point into the record (NO_COPY), held responses wait in due order
 * (a FIFO for the holds of delay_ms, which are due in arrival order, and a min-heap for a chaos hold due before the
 * FIFO's last), which a reset stream leaves from anywhere in O(1) or O(log n). Output is
 * gathered from nghttp2 into one plaintext block and encrypted with one apns__tls_write call, which cuts it into
 * as few full-size records as fit.
 *
 * Token auth costs one ECDSA verification per different token, not per request: a request whose authorization
 * equals the connection's current token (compared byte for byte when its header arrives) skips verification, as
 * APNs does. Only a different token is copied (with its claims) until its request completes.
 *
 * Broadcast and channel management paths are recognised when :path arrives and handed to mock_channels.c, which
 * keeps a record per such request (they are rare next to pushes, and their answers may be large). */
#include "mock_server.h"

#include "alloc.h"
#include "h2.h"
#include "heap.h"
#include "jwt_verify.h"
#include "list.h"
#include "mock_channels.h"
#include "mock_chaos.h"
#include "tls.h"

#include <nghttp2/nghttp2.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* Chaos trickle: one DATA frame of one byte per tick. */
#define APNS__MOCK_TRICKLE_MS 5

#define MOCK_SLAB 64
#define MOCK_BODY_CAP 160
#define MOCK_REASON_MAX 100
#define MOCK_CONN_WINDOW (1 << 20)
#define MOCK_TOKEN_MAX_AGE 3600    /* seconds: an older iat is ExpiredProviderToken */
#define MOCK_TOKEN_MIN_UPDATE 1200 /* seconds: a different token sooner is TooManyProviderTokenUpdates */
#define MOCK_PRIORITY_BAD 255

enum { TOKEN_OK = 0, TOKEN_MISSING, TOKEN_BAD, TOKEN_UNREGISTERED };
/* Where a stream's response waits. */
enum { HELD_NO = 0, HELD_FIFO, HELD_EARLY };
/* The authorization of a request on a token connection. */
enum { AUTH_NONE = 0, AUTH_SAME, AUTH_NEW, AUTH_BAD };
/* Headers a request may carry once. */
enum {
  HDR_ID = 1 << 0,
  HDR_TOPIC = 1 << 1,
  HDR_PRIORITY = 1 << 2,
  HDR_PUSH_TYPE = 1 << 3,
  HDR_EXPIRATION = 1 << 4,
  HDR_COLLAPSE = 1 << 5,
  HDR_AUTH = 1 << 6,
};

/* A verified token that differs from the connection's current one: kept until its request is decided, then it
 * becomes the current token or is dropped. */
typedef struct mock_token {
  apns__jwt_claims claims;
  size_t len;
  char text[]; /* NUL-terminated */
} mock_token;

/* What the on_request hook needs kept: only gathered when the hook is set. */
typedef struct mock_capture {
  char *text; /* "name\0value\0" for each header, pseudo-headers included */
  size_t text_len, text_cap;
  size_t num_headers;
  uint8_t *body;
  size_t body_len, body_cap;
} mock_capture;

typedef struct mock_stream mock_stream;
struct mock_stream {
  apns__list node;         /* on the free list, or the held FIFO while held there */
  apns__heap_node held_at; /* in the heap of early holds, while held there */
  uint64_t held_seq;       /* arrival order among equal dues */
  int32_t id;
  uint8_t post, path_ok, token, id_bad, held /* HELD_* */, answered;
  uint8_t seen, dup; /* HDR_* bits; dup: one of them came twice */
  uint8_t push_type, push_type_bad;
  uint8_t priority; /* 0: absent; 1, 5, 10; MOCK_PRIORITY_BAD */
  uint8_t topic_given, topic_bad, collapse_bad, expiration_bad;
  uint8_t auth, auth_ok; /* AUTH_*; auth_ok: the token passed every check */
  uint8_t trickle;       /* chaos: the body goes out a byte per DATA frame, one frame per trickle tick */
  uint8_t trickle_sent;  /* a byte went out this tick: the next read defers the data until the tick */
  int status;
  uint64_t body_len;
  uint64_t due;
  uint64_t token_gen; /* AUTH_SAME: the connection's token generation at the header */
  mock_capture *cap;
  mock_token *tok;           /* AUTH_NEW */
  uint8_t method;            /* APNS__MOCK_METHOD_* */
  apns__mock_chan_req *chan; /* a management or broadcast path (mock_channels.c) */
  const uint8_t *chan_body;  /* its success body, sent instead of resp */
  char status_text[4];
  char apns_id[37];
  size_t resp_len, resp_off;
  char resp[MOCK_BODY_CAP];
  /* Not cleared by stream_get: only valid when topic_given. */
  char topic[APNS_TOPIC_MAX + 1];
};

typedef struct mock_slab {
  apns__list node; /* on the connection's slabs */
  mock_stream streams[MOCK_SLAB];
} mock_slab;

struct apns__mock_conn {
  const apns_mock_options *opts;
  uint64_t id; /* which connection: the count of connections when it was made (1, 2, ...) */
  const apns__jwt_verifier *jwt;
  apns_mock_stats *stats;
  apns__mock_channels *channels; /* the server's; NULL: channel paths are BadPath */
  int serve;                     /* APNS__MOCK_SERVE_*: which paths this listener serves */
  apns__tls *tls;
  nghttp2_session *h2;
  uint64_t rng;
  uint64_t now;
  apns__list slabs;
  apns__list free_streams;
  apns__list held_fifo;  /* held responses due in arrival order (see the file comment) */
  apns__heap held_early; /* held responses due before the FIFO's last, by due time (then arrival) */
  uint64_t held_count;
  /* Chaos trickle: the streams whose data waits for the next tick (at trickle_due), by id (a stream reset
   * meanwhile is simply not found). More than fit go on without waiting. */
  int32_t trickle_ids[64];
  int trickle_n;
  uint64_t trickle_due;
  uint64_t requests;  /* complete requests seen */
  uint64_t answering; /* responses submitted whose stream is not closed yet */
  int32_t goaway_sid; /* > 0 once GOAWAY is submitted: streams above are not answered */
  int paused, dropping, failed, peer_closed, raised;
  int started;            /* the first SETTINGS are submitted (after the TLS handshake) */
  int token_conn;         /* token auth applies: token keys, and no client certificate with a UID */
  const char *cert_uid;   /* the client certificate's UID (owned by tls), or NULL */
  mock_token *cur;        /* the current (last accepted) provider token */
  int64_t cur_since;      /* when it was accepted, on the wall clock */
  uint64_t token_gen;     /* bumped each time a token is accepted */
  char kid[64], team[64]; /* bound by the first accepted token */
  uint64_t open_streams;  /* request streams open now */
  size_t prefix_bad_len, prefix_unreg_len;
  uint8_t *out; /* plaintext gathered from nghttp2 */
  size_t out_len, out_cap;
  /* Chaos (opts->chaos): the generator, and the faults under way. */
  uint64_t chaos_rng;
  int silent, chaos_garbage, chaos_cut, chaos_close;
  uint32_t limit_left, window_left; /* requests until the stream limit / window go back */
  char goaway_data[MOCK_REASON_MAX * 6 + 16];
  size_t goaway_len;
  char err[160];
};

/* ---- small helpers ---- */

static uint64_t splitmix64(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

void apns__mock_uuid(uint64_t *state, char out[37]) {
  static const char hex[] = "0123456789abcdef";
  uint8_t b[16];
  uint64_t hi = splitmix64(state), lo = splitmix64(state);
  for (int i = 0; i < 8; i++) {
    b[i] = (uint8_t)(hi >> (i * 8));
    b[8 + i] = (uint8_t)(lo >> (i * 8));
  }
  b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* version 4 */
  b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* variant 10xx */
  char *p = out;
  for (int i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10) *p++ = '-';
    *p++ = hex[b[i] >> 4];
    *p++ = hex[b[i] & 15];
  }
  *p = '\0';
}

static int is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

int apns__mock_uuid_valid(const char *s, size_t len) {
  if (len != 36) return 0;
  for (size_t i = 0; i < 36; i++) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-') return 0;
    } else if (!is_hex(s[i])) {
      return 0;
    }
  }
  return 1;
}

/* JSON string content for text (no quotes): escapes ", \ and control characters. */
static size_t json_escape(char *dst, size_t cap, const char *text, size_t max_in) {
  size_t n = 0;
  for (size_t i = 0; i < max_in && text[i] != '\0'; i++) {
    unsigned char c = (unsigned char)text[i];
    char tmp[8];
    size_t k;
    if (c == '"' || c == '\\') {
      tmp[0] = '\\';
      tmp[1] = (char)c;
      k = 2;
    } else if (c < 0x20) {
      k = (size_t)snprintf(tmp, sizeof tmp, "\\u%04x", c);
    } else {
      tmp[0] = (char)c;
      k = 1;
    }
    if (n + k >= cap) break;
    memcpy(dst + n, tmp, k);
    n += k;
  }
  dst[n] = '\0';
  return n;
}

static int64_t wall_ms(const apns__mock_conn *c) {
  if (c->opts->clock != NULL) return c->opts->clock(c->opts->data) * 1000;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t wall_s(const apns__mock_conn *c) {
  return c->opts->clock != NULL ? c->opts->clock(c->opts->data) : (int64_t)time(NULL);
}

static void set_error(apns__mock_conn *c, const char *what, const char *detail) {
  snprintf(c->err, sizeof c->err, "%s%s%s", what, detail && *detail ? ": " : "", detail ? detail : "");
}

/* ---- stream records ---- */

static void capture_free(mock_capture *cap) {
  if (cap == NULL) return;
  apns__free(cap->text);
  apns__free(cap->body);
  apns__free(cap);
}

static mock_stream *stream_get(apns__mock_conn *c) {
  if (apns__list_empty(&c->free_streams)) {
    mock_slab *slab = apns__malloc(sizeof *slab);
    if (slab == NULL) return NULL;
    apns__list_push_head(&c->slabs, &slab->node);
    for (int i = 0; i < MOCK_SLAB; i++) {
      slab->streams[i].cap = NULL; /* apns__mock_conn_free looks at every record's capture and token */
      slab->streams[i].tok = NULL;
      slab->streams[i].chan = NULL;
      apns__list_push_tail(&c->free_streams, &slab->streams[i].node);
    }
  }
  mock_stream *s = APNS__CONTAINER_OF(apns__list_pop_head(&c->free_streams), mock_stream, node);
  memset(s, 0, offsetof(mock_stream, resp));
  return s;
}

static void stream_put(apns__mock_conn *c, mock_stream *s) {
  capture_free(s->cap);
  s->cap = NULL;
  apns__free(s->tok);
  s->tok = NULL;
  apns__mock_chan_req_free(s->chan);
  s->chan = NULL;
  apns__list_push_head(&c->free_streams, &s->node);
}

static mock_stream *stream_of_held(const apns__heap_node *n) {
  return n ? APNS__CONTAINER_OF(n, mock_stream, held_at) : NULL;
}

/* Due order; among equal dues (every hold is delay_ms without chaos) arrival order, so answers keep the order of
 * the requests as a FIFO would. A chaos hold of its own length goes to its place in O(log n), as every other. */
static int held_less(const apns__heap_node *a, const apns__heap_node *b) {
  const mock_stream *x = stream_of_held(a), *y = stream_of_held(b);
  return x->due < y->due || (x->due == y->due && x->held_seq < y->held_seq);
}

static mock_stream *stream_of_fifo(apns__list *n) {
  return n ? APNS__CONTAINER_OF(n, mock_stream, node) : NULL;
}

/* The held response due first: the earlier of the FIFO's head and the heap's minimum. */
static mock_stream *held_first(const apns__mock_conn *c) {
  mock_stream *f = stream_of_fifo(apns__list_head(&c->held_fifo)),
              *e = stream_of_held(apns__heap_min(&c->held_early));
  return e && (f == NULL || held_less(&e->held_at, &f->held_at)) ? e : f;
}

static void held_unlink(apns__mock_conn *c, mock_stream *s) {
  if (s->held == HELD_EARLY)
    apns__heap_remove(&c->held_early, &s->held_at);
  else
    apns__list_remove(&s->node);
  s->held = HELD_NO;
}

/* Due in arrival order (every hold of delay_ms) at the FIFO's tail in O(1); due before its last (a chaos hold of
 * its own length) into the heap in O(log n). */
static void held_push(apns__mock_conn *c, mock_stream *s) {
  mock_stream *last = stream_of_fifo(apns__list_tail(&c->held_fifo));
  s->held_seq = c->held_count++;
  if (last != NULL && s->due < last->due) {
    s->held = HELD_EARLY;
    apns__heap_insert(&c->held_early, &s->held_at);
  } else {
    s->held = HELD_FIFO;
    apns__list_push_tail(&c->held_fifo, &s->node);
  }
}

static int capture_append(mock_capture *cap, const uint8_t *a, size_t alen, const uint8_t *b, size_t blen) {
  size_t need = cap->text_len + alen + blen + 2;
  if (need > cap->text_cap) {
    size_t ncap = cap->text_cap ? cap->text_cap * 2 : 512;
    while (ncap < need) ncap *= 2;
    char *t = apns__realloc(cap->text, ncap);
    if (t == NULL) return NGHTTP2_ERR_CALLBACK_FAILURE;
    cap->text = t;
    cap->text_cap = ncap;
  }
  memcpy(cap->text + cap->text_len, a, alen);
  cap->text_len += alen;
  cap->text[cap->text_len++] = '\0';
  memcpy(cap->text + cap->text_len, b, blen);
  cap->text_len += blen;
  cap->text[cap->text_len++] = '\0';
  cap->num_headers++;
  return 0;
}

/* ---- responses ---- */

static ssize_t resp_read(nghttp2_session *h2, int32_t stream_id, uint8_t *buf, size_t length, uint32_t *flags,
                         nghttp2_data_source *source, void *ud) {
  (void)h2;
  apns__mock_conn *c = ud;
  mock_stream *s = source->ptr;
  size_t n = s->resp_len - s->resp_off;
  if (s->trickle && s->trickle_sent && c->trickle_n < (int)(sizeof c->trickle_ids / sizeof c->trickle_ids[0])) {
    if (c->trickle_n == 0) c->trickle_due = c->now + APNS__MOCK_TRICKLE_MS;
    c->trickle_ids[c->trickle_n++] = stream_id;
    return NGHTTP2_ERR_DEFERRED;
  }
  if (n > length) n = length;
  if (s->trickle && n > 1) n = 1;
  s->trickle_sent = s->trickle;
  memcpy(buf, (s->chan_body ? (const char *)s->chan_body : s->resp) + s->resp_off, n);
  s->resp_off += n;
  if (s->resp_off == s->resp_len) *flags |= NGHTTP2_DATA_FLAG_EOF;
  return (ssize_t)n;
}

static int submit_response(apns__mock_conn *c, mock_stream *s) {
  nghttp2_nv nva[] = {
      {(uint8_t *)":status", (uint8_t *)s->status_text, 7, 3,
       NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE},
      {(uint8_t *)"apns-id", (uint8_t *)s->apns_id, 7, 36,
       NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE},
      {(uint8_t *)"content-type", (uint8_t *)"application/json", 12, 16,
       NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE},
  };
  nghttp2_data_provider prd;
  prd.source.ptr = s;
  prd.read_callback = resp_read;
  size_t nnv = s->resp_len ? 3 : 2;
  nghttp2_nv cnva[6];
  if (s->chan != NULL) { /* management and broadcast answers carry apns-request-id, not apns-id */
    cnva[0] = nva[0];
    nnv = 1 + apns__mock_chan_nv(s->chan, cnva + 1);
    if (s->resp_len) cnva[nnv++] = nva[2];
  }
  int rv = nghttp2_submit_response(c->h2, s->id, s->chan ? cnva : nva, nnv, s->resp_len ? &prd : NULL);
  if (rv != 0) return rv;
  s->answered = 1;
  c->answering++;
  c->stats->responses++;
  c->stats->status[s->status]++;
  /* The first answer lifts the stream limit, as APNs does once a connection has proven itself; a token
   * connection proves itself with a 200 to a request whose token was accepted. */
  if (!c->raised && !c->token_conn) {
    c->raised = 1;
    uint32_t after = c->opts->streams_after;
    if (after != 0 && after != c->opts->max_streams) {
      nghttp2_settings_entry e = {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, after};
      rv = nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, &e, 1);
      if (rv != 0) return rv;
    }
  } else if (!c->raised && s->auth_ok && s->status / 100 == 2) {
    c->raised = 1;
    c->stats->streams_raised++;
    uint32_t max = c->opts->max_streams ? c->opts->max_streams : 1000;
    if (max != 1) {
      nghttp2_settings_entry e = {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, max};
      rv = nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, &e, 1);
      if (rv != 0) return rv;
    }
  }
  return 0;
}

static void set_answer(mock_stream *s, int status, const char *reason, int64_t timestamp) {
  if (status < 100 || status > 599) status = 500;
  s->status = status;
  snprintf(s->status_text, sizeof s->status_text, "%03d", status);
  s->resp_len = s->resp_off = 0;
  if (reason != NULL && *reason != '\0') {
    char esc[MOCK_BODY_CAP];
    json_escape(esc, MOCK_BODY_CAP - 48, reason, MOCK_REASON_MAX);
    int n = timestamp ? snprintf(s->resp, sizeof s->resp, "{\"reason\":\"%s\",\"timestamp\":%lld}", esc,
                                 (long long)timestamp)
                      : snprintf(s->resp, sizeof s->resp, "{\"reason\":\"%s\"}", esc);
    s->resp_len = n > 0 && (size_t)n < sizeof s->resp ? (size_t)n : 0;
  }
}

/* ---- Apple's checks (the order is documented in mock.h) ---- */

/* Token connections: the authorization of s against the connection's state. 0 when it passes (and a different
 * token is then the connection's current one), else the status, with *reason. */
static int check_auth(apns__mock_conn *c, mock_stream *s, const char **reason) {
  int64_t now = wall_s(c);
  if (s->auth == AUTH_NONE) {
    *reason = "MissingProviderToken";
    return 403;
  }
  if (s->auth == AUTH_BAD) {
    *reason = "InvalidProviderToken";
    return 403;
  }
  if (s->auth == AUTH_SAME) {
    /* The current token at its header, replaced since: an older token is a different one. */
    if (s->token_gen != c->token_gen) {
      *reason = "TooManyProviderTokenUpdates";
      return 429;
    }
    if (now - c->cur->claims.iat > MOCK_TOKEN_MAX_AGE) {
      *reason = "ExpiredProviderToken";
      return 403;
    }
    s->auth_ok = 1;
    return 0;
  }
  mock_token *t = s->tok;
  if (now - t->claims.iat > MOCK_TOKEN_MAX_AGE) {
    *reason = "ExpiredProviderToken";
    return 403;
  }
  /* Became the current token while this request was on its way. */
  if (c->cur != NULL && c->cur->len == t->len && memcmp(c->cur->text, t->text, t->len) == 0) {
    s->auth_ok = 1;
    return 0;
  }
  if (c->kid[0] != '\0' && strcmp(t->claims.kid, c->kid) != 0) {
    *reason = "UnrelatedKeyIdInToken";
    return 403;
  }
  if (c->team[0] != '\0' && strcmp(t->claims.iss, c->team) != 0) {
    *reason = "InvalidProviderToken";
    return 403;
  }
  if (c->cur != NULL && now - c->cur_since < MOCK_TOKEN_MIN_UPDATE) {
    *reason = "TooManyProviderTokenUpdates";
    return 429;
  }
  if (c->kid[0] == '\0') {
    memcpy(c->kid, t->claims.kid, sizeof c->kid);
    memcpy(c->team, t->claims.iss, sizeof c->team);
  }
  apns__free(c->cur);
  c->cur = t;
  s->tok = NULL;
  c->cur_since = now;
  c->token_gen++;
  c->stats->tokens_accepted++;
  s->auth_ok = 1;
  return 0;
}

static int ends_with(const char *s, size_t len, const char *suffix) {
  size_t n = strlen(suffix);
  return len >= n && memcmp(s + len - n, suffix, n) == 0;
}

/* A certificate covers its UID and the UID plus any of Apple's push-type suffixes (multi-topic certificates). */
static int topic_in_cert(const char *uid, const char *topic, size_t len) {
  size_t ulen = strlen(uid);
  if (len < ulen || memcmp(topic, uid, ulen) != 0) return 0;
  if (len == ulen) return 1;
  for (int t = APNS_PUSH_TYPE_ALERT; t < APNS__PUSH_TYPE_COUNT; t++) {
    const char *sfx = apns_push_type_topic_suffix((apns_push_type)t);
    if (*sfx != '\0' && strlen(sfx) == len - ulen && memcmp(topic + ulen, sfx, len - ulen) == 0) return 1;
  }
  return 0;
}

/* The answer to a complete request: its status, and *reason (NULL for 200). */
static int decide(apns__mock_conn *c, mock_stream *s, const char **reason) {
  int st;
  *reason = NULL;
  if (!s->path_ok) return *reason = "BadPath", 404;
  if (!s->post && s->chan == NULL) return *reason = "MethodNotAllowed", 405;
  if (s->dup) return *reason = "DuplicateHeaders", 400;
  if (c->token_conn && (st = check_auth(c, s, reason)) != 0) return st;
  if (s->chan != NULL) return apns__mock_chan_decide(c->channels, s->chan, s->method, c->cert_uid, reason);
  if (s->token == TOKEN_MISSING) return *reason = "MissingDeviceToken", 400;
  if (s->token == TOKEN_BAD) return *reason = "BadDeviceToken", 400;
  if (s->id_bad) return *reason = "BadMessageId", 400;
  if (s->push_type_bad) return *reason = "InvalidPushType", 400;
  apns_push_type type = s->push_type ? (apns_push_type)s->push_type : APNS_PUSH_TYPE_ALERT;
  if (s->priority == MOCK_PRIORITY_BAD || (s->priority != 0 && apns_validate_priority(s->priority, type) != 0))
    return *reason = "BadPriority", 400;
  const char *topic = NULL;
  size_t topic_len = 0;
  if (s->topic_given) {
    if (s->topic_bad) return *reason = "BadTopic", 400;
    topic = s->topic;
    topic_len = strlen(topic);
    if (c->cert_uid != NULL && !topic_in_cert(c->cert_uid, topic, topic_len)) return *reason = "BadTopic", 400;
  } else if (c->token_conn) {
    return *reason = "MissingTopic", 400;
  } else if (c->cert_uid != NULL) {
    topic = c->cert_uid;
    topic_len = strlen(topic);
  }
  if (topic != NULL && !ends_with(topic, topic_len, apns_push_type_topic_suffix(type)))
    return *reason = "DeviceTokenNotForTopic", 400;
  if (s->collapse_bad) return *reason = "BadCollapseId", 400;
  if (s->expiration_bad) return *reason = "BadExpirationDate", 400;
  if (s->body_len == 0) return *reason = "PayloadEmpty", 400;
  if (s->body_len > apns_payload_limit(type)) return *reason = "PayloadTooLarge", 413;
  if (s->token == TOKEN_UNREGISTERED) return *reason = "Unregistered", 410;
  return 200;
}

/* Chaos: the stream limit and the window a "limit" or "window" fault lowered go back after their 100 requests. */
static int chaos_settings_back(apns__mock_conn *c) {
  int rv;
  if (c->limit_left != 0 && --c->limit_left == 0) {
    nghttp2_settings_entry e = {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, c->opts->max_streams};
    if ((rv = nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, &e, 1)) != 0) return rv;
  }
  if (c->window_left != 0 && --c->window_left == 0) {
    nghttp2_settings_entry e = {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, NGHTTP2_INITIAL_WINDOW_SIZE};
    if ((rv = nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, &e, 1)) != 0) return rv;
  }
  return 0;
}

/* Chaos: "goaway-drop" names the stream of s, then the connection closes; "goaway-low" names a stream 2 to 16 ids
 * below it, so this request and those between are not answered. Returns what chaos_request does. */
static int chaos_goaway(apns__mock_conn *c, mock_stream *s, int f) {
  int32_t last = s->id;
  if (f == APNS_MOCK_CHAOS_GOAWAY_LOW) {
    last = s->id - 2 * (int32_t)(1 + apns__mock_chaos_below(&c->chaos_rng, 8));
    if (last < 1) last = 1;
  }
  c->goaway_sid = last;
  int rv = nghttp2_submit_goaway(c->h2, NGHTTP2_FLAG_NONE, last, NGHTTP2_NO_ERROR, (const uint8_t *)c->goaway_data,
                                 c->goaway_len);
  if (rv != 0) return rv;
  if (f == APNS_MOCK_CHAOS_GOAWAY_DROP) c->chaos_close = 1;
  return f == APNS_MOCK_CHAOS_GOAWAY_LOW;
}

/* Chaos (opts->chaos): maybe one fault for the request on s, which has its answer set. Returns 1 when s is dealt
 * with (it gets no answer, or a later one), 0 to answer it now as usual, or an nghttp2 error. */
static int chaos_request(apns__mock_conn *c, mock_stream *s) {
  const apns_mock_chaos *ch = &c->opts->chaos;
  int rv;
  if ((rv = chaos_settings_back(c)) != 0) return rv;
  /* A connection already on its way out takes no more faults: each one counted is one that happened. */
  if (c->chaos_close || c->chaos_cut || c->chaos_garbage || c->silent) return 0;
  int f = apns__mock_chaos_pick(ch, &c->chaos_rng);
  if (f < 0 || (f == APNS_MOCK_CHAOS_GOAWAY_LOW && (s->id < 3 || c->goaway_sid != 0)) ||
      (f == APNS_MOCK_CHAOS_GOAWAY_DROP && c->goaway_sid != 0))
    return 0;
  c->stats->chaos[f]++;
  switch (f) {
  case APNS_MOCK_CHAOS_DROP:
    /* The answers before it go out; this request and every later one get none, and the connection closes. */
    c->chaos_close = 1;
    return 1;
  case APNS_MOCK_CHAOS_DROP_WRITE:
    c->chaos_cut = 1;
    return 0;
  case APNS_MOCK_CHAOS_GOAWAY_DROP:
  case APNS_MOCK_CHAOS_GOAWAY_LOW:
    return chaos_goaway(c, s, f);
  case APNS_MOCK_CHAOS_SILENT:
    c->silent = 1;
    return 1;
  case APNS_MOCK_CHAOS_GARBAGE:
    c->chaos_garbage = 1;
    return 0;
  case APNS_MOCK_CHAOS_LIMIT:
  case APNS_MOCK_CHAOS_WINDOW: {
    nghttp2_settings_entry e = {f == APNS_MOCK_CHAOS_LIMIT ? NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS
                                                           : NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE,
                                1};
    if ((rv = nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, &e, 1)) != 0) return rv;
    if (f == APNS_MOCK_CHAOS_LIMIT)
      c->limit_left = 100;
    else
      c->window_left = 100;
    return 0;
  }
  case APNS_MOCK_CHAOS_REFUSE:
    rv = nghttp2_submit_rst_stream(c->h2, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_REFUSED_STREAM);
    return rv != 0 ? rv : 1;
  case APNS_MOCK_CHAOS_500:
  case APNS_MOCK_CHAOS_503:
  case APNS_MOCK_CHAOS_429:
    s->chan_body = NULL;
    set_answer(s,
               f == APNS_MOCK_CHAOS_500   ? 500
               : f == APNS_MOCK_CHAOS_503 ? 503
                                          : 429,
               f == APNS_MOCK_CHAOS_500   ? "InternalServerError"
               : f == APNS_MOCK_CHAOS_503 ? "ServiceUnavailable"
                                          : "TooManyRequests",
               0);
    return 0;
  case APNS_MOCK_CHAOS_HOLD:
    s->due = c->now + (ch->hold_ms ? ch->hold_ms : 2000);
    held_push(c, s);
    return 1;
  default: /* APNS_MOCK_CHAOS_TRICKLE */
    s->trickle = 1;
    return 0;
  }
}

/* Lets the on_request hook see the request on s (what it captured) and change the answer decided for it. Returns 0,
 * or -1 when out of memory. */
static int hook_request(apns__mock_conn *c, mock_stream *s, uint64_t seq, int status, const char *reason) {
  const apns_mock_options *o = c->opts;
  mock_capture *cap = s->cap;
  apns_header stackh[16], *hdrs = stackh;
  apns_mock_request req;
  memset(&req, 0, sizeof req);
  req.stream_id = s->id;
  req.seq = seq;
  req.conn_id = c->id;
  req.method = "";
  req.path = "";
  if (cap != NULL && cap->num_headers > 16) {
    hdrs = apns__malloc(cap->num_headers * sizeof *hdrs);
    if (hdrs == NULL) return -1;
  }
  if (cap != NULL) {
    const char *p = cap->text, *end = cap->text + cap->text_len;
    while (p < end) {
      const char *name = p, *value = p + strlen(p) + 1;
      p = value + strlen(value) + 1;
      if (strcmp(name, ":method") == 0)
        req.method = value;
      else if (strcmp(name, ":path") == 0)
        req.path = value;
      else if (name[0] != ':') {
        hdrs[req.num_headers].name = name;
        hdrs[req.num_headers].value = value;
        req.num_headers++;
      }
    }
    req.body = cap->body_len ? cap->body : NULL;
    req.body_len = cap->body_len;
  }
  req.headers = hdrs;
  req.status = status;
  req.reason = reason;
  req.apns_id = s->apns_id;
  o->on_request(o->data, &req);
  status = req.status;
  set_answer(s, status, req.reason, status == 410 ? wall_ms(c) : 0);
  if (hdrs != stackh) apns__free(hdrs);
  capture_free(s->cap);
  s->cap = NULL;
  return 0;
}

/* The request on s is complete: decide, then answer now or hold. */
static int on_request_done(apns__mock_conn *c, mock_stream *s) {
  const apns_mock_options *o = c->opts;
  if (s->answered || s->held) return 0;
  if (c->dropping || c->chaos_close || (c->goaway_sid > 0 && s->id > c->goaway_sid)) {
    c->stats->requests++;
    return 0;
  }
  uint64_t seq = ++c->requests;
  c->stats->requests++;

  const char *reason;
  int status = decide(c, s, &reason);
  if (status < 0) return NGHTTP2_ERR_CALLBACK_FAILURE;
  const int decided = status;
  if (s->id_bad || s->apns_id[0] == '\0') apns__mock_uuid(&c->rng, s->apns_id);

  if (o->on_request != NULL) {
    if (hook_request(c, s, seq, status, reason) != 0) return NGHTTP2_ERR_CALLBACK_FAILURE;
  } else {
    set_answer(s, status, reason, status == 410 ? wall_ms(c) : 0);
  }

  size_t chan_len = 0;
  const uint8_t *chan_body = s->chan ? apns__mock_chan_body(s->chan, &chan_len) : NULL;
  if (chan_body != NULL && s->status == decided && s->resp_len == 0) {
    s->chan_body = chan_body;
    s->resp_len = chan_len;
  }

  int rv;
  if (o->chaos.enabled && (rv = chaos_request(c, s)) != 0) {
    if (rv < 0) return rv;
  } else if (o->delay_ms == 0 && !c->paused) {
    rv = submit_response(c, s);
    if (rv != 0) return rv;
  } else {
    s->due = c->now + o->delay_ms;
    held_push(c, s);
  }

  if (o->goaway_after != 0 && seq == o->goaway_after && c->goaway_sid == 0) {
    c->goaway_sid = s->id;
    rv = nghttp2_submit_goaway(c->h2, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_NO_ERROR, (const uint8_t *)c->goaway_data,
                               c->goaway_len);
    if (rv != 0) return rv;
    c->stats->goaways++;
  }
  if (o->drop_after != 0 && seq == o->drop_after) c->dropping = 1;
  return 0;
}

/* The trickle tick: every deferred stream may send its next byte. */
static int trickle_release(apns__mock_conn *c, uint64_t now) {
  if (c->paused || c->trickle_n == 0 || now < c->trickle_due) return 0;
  int n = c->trickle_n;
  c->trickle_n = 0;
  for (int i = 0; i < n; i++) {
    mock_stream *s = nghttp2_session_get_stream_user_data(c->h2, c->trickle_ids[i]);
    if (s == NULL) continue; /* closed meanwhile (reset by the client at its deadline) */
    s->trickle_sent = 0;
    int rv = nghttp2_session_resume_data(c->h2, c->trickle_ids[i]);
    if (rv != 0 && rv != NGHTTP2_ERR_INVALID_ARGUMENT) return rv;
  }
  return 0;
}

static int release_due(apns__mock_conn *c, uint64_t now) {
  if (c->paused) return 0;
  int trv = trickle_release(c, now);
  if (trv != 0) return trv;
  mock_stream *s;
  while ((s = held_first(c)) != NULL && s->due <= now) {
    held_unlink(c, s);
    if (c->goaway_sid > 0 && s->id > c->goaway_sid) continue; /* chaos: a GOAWAY below it came meanwhile */
    int rv = submit_response(c, s);
    if (rv != 0) return rv;
  }
  return 0;
}

/* ---- nghttp2 callbacks ---- */

static int cb_begin_headers(nghttp2_session *h2, const nghttp2_frame *frame, void *ud) {
  apns__mock_conn *c = ud;
  if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  mock_stream *s = stream_get(c);
  if (s == NULL) return NGHTTP2_ERR_CALLBACK_FAILURE;
  s->id = frame->hd.stream_id;
  if (++c->open_streams > c->stats->max_concurrent) c->stats->max_concurrent = c->open_streams;
  if (c->opts->on_request != NULL) {
    s->cap = apns__calloc(1, sizeof *s->cap);
    if (s->cap == NULL) {
      c->open_streams--;
      stream_put(c, s);
      return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
  }
  nghttp2_session_set_stream_user_data(h2, s->id, s);
  return 0;
}

static int classify_path(apns__mock_conn *c, mock_stream *s, const uint8_t *v, size_t len) {
  static const char prefix[] = "/3/device/";
  const size_t plen = sizeof prefix - 1;
  if (c->channels != NULL && s->chan == NULL) {
    int rv = apns__mock_chan_match(v, len, &s->chan);
    if (rv < 0) return NGHTTP2_ERR_CALLBACK_FAILURE;
    if (rv == 1) {
      int manage = apns__mock_chan_is_management(s->chan);
      if ((c->serve == APNS__MOCK_SERVE_PUSH && manage) || (c->serve == APNS__MOCK_SERVE_MANAGE && !manage)) {
        apns__mock_chan_req_free(s->chan); /* the other listener's path: BadPath here */
        s->chan = NULL;
        return 0;
      }
      s->path_ok = 1;
      return 0;
    }
  }
  if (c->serve == APNS__MOCK_SERVE_MANAGE) return 0;
  if (len < plen || memcmp(v, prefix, plen) != 0) return 0;
  const char *tok = (const char *)v + plen;
  size_t tlen = len - plen;
  s->path_ok = 1;
  if (tlen == 0) {
    s->token = TOKEN_MISSING;
    return 0;
  }
  if (tlen % 2 != 0) { /* hex bytes come in pairs: Apple refuses an odd length */
    s->token = TOKEN_BAD;
    return 0;
  }
  for (size_t i = 0; i < tlen; i++) {
    if (!is_hex(tok[i])) {
      s->token = TOKEN_BAD;
      return 0;
    }
  }
  const apns_mock_options *o = c->opts;
  if (c->prefix_bad_len && tlen >= c->prefix_bad_len && memcmp(tok, o->bad_prefix, c->prefix_bad_len) == 0)
    s->token = TOKEN_BAD;
  else if (c->prefix_unreg_len && tlen >= c->prefix_unreg_len &&
           memcmp(tok, o->unregistered_prefix, c->prefix_unreg_len) == 0)
    s->token = TOKEN_UNREGISTERED;
  return 0;
}

/* Marks a header as seen; non-zero (and the request is DuplicateHeaders) when it was already. */
static int seen_twice(mock_stream *s, uint8_t bit) {
  if (s->seen & bit) {
    s->dup = 1;
    return 1;
  }
  s->seen |= bit;
  return 0;
}

/* The authorization header of a token connection: the current token is recognised by its bytes; a different one
 * is verified now (the signature does not depend on the connection) and kept for the decision. */
static int auth_header(apns__mock_conn *c, mock_stream *s, const char *v, size_t len) {
  if (!c->token_conn) return 0;
  if (len < 7 || strncasecmp(v, "bearer ", 7) != 0) {
    s->auth = AUTH_BAD;
    return 0;
  }
  v += 7, len -= 7;
  if (c->cur != NULL && c->cur->len == len && memcmp(c->cur->text, v, len) == 0) {
    s->auth = AUTH_SAME;
    s->token_gen = c->token_gen;
    return 0;
  }
  if (len == 0 || len > APNS__JWT_MAX_LEN) {
    s->auth = AUTH_BAD;
    return 0;
  }
  mock_token *t = apns__malloc(sizeof *t + len + 1);
  if (t == NULL) return NGHTTP2_ERR_CALLBACK_FAILURE;
  int st = apns__jwt_verify(c->jwt, v, len, &t->claims);
  if (st != APNS__JWT_VALID) {
    apns__free(t);
    if (st < 0) return NGHTTP2_ERR_CALLBACK_FAILURE;
    s->auth = AUTH_BAD;
    return 0;
  }
  memcpy(t->text, v, len);
  t->text[len] = '\0';
  t->len = len;
  s->tok = t;
  s->auth = AUTH_NEW;
  return 0;
}

#define NAME_IS(lit) (namelen == sizeof(lit) - 1 && memcmp(name, lit, sizeof(lit) - 1) == 0)

static int cb_header(nghttp2_session *h2, const nghttp2_frame *frame, const uint8_t *name, size_t namelen,
                     const uint8_t *value, size_t valuelen, uint8_t flags, void *ud) {
  (void)flags;
  apns__mock_conn *c = ud;
  if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  mock_stream *s = nghttp2_session_get_stream_user_data(h2, frame->hd.stream_id);
  if (s == NULL) return 0;
  if (s->cap != NULL && capture_append(s->cap, name, namelen, value, valuelen) != 0)
    return NGHTTP2_ERR_CALLBACK_FAILURE;
  if (s->chan != NULL && namelen > 0 && name[0] != ':')
    apns__mock_chan_header(s->chan, name, namelen, value, valuelen);
  if (NAME_IS(":method")) {
    s->post = valuelen == 4 && memcmp(value, "POST", 4) == 0;
    s->method = s->post                                            ? APNS__MOCK_METHOD_POST
                : valuelen == 3 && memcmp(value, "GET", 3) == 0    ? APNS__MOCK_METHOD_GET
                : valuelen == 6 && memcmp(value, "DELETE", 6) == 0 ? APNS__MOCK_METHOD_DELETE
                                                                   : APNS__MOCK_METHOD_OTHER;
  } else if (NAME_IS(":path")) {
    return classify_path(c, s, value, valuelen);
  } else if (NAME_IS("apns-id")) {
    if (seen_twice(s, HDR_ID)) return 0;
    if (apns__mock_uuid_valid((const char *)value, valuelen)) {
      memcpy(s->apns_id, value, 36);
      s->apns_id[36] = '\0';
    } else {
      s->id_bad = 1;
    }
  } else if (NAME_IS("apns-push-type")) {
    char buf[16];
    apns_push_type type;
    if (seen_twice(s, HDR_PUSH_TYPE)) return 0;
    if (valuelen < sizeof buf) {
      memcpy(buf, value, valuelen);
      buf[valuelen] = '\0';
    }
    if (valuelen < sizeof buf && apns_push_type_from_string(buf, &type) == 0)
      s->push_type = (uint8_t)type;
    else
      s->push_type_bad = 1;
  } else if (NAME_IS("apns-priority")) {
    if (seen_twice(s, HDR_PRIORITY)) return 0;
    if (valuelen == 1 && (value[0] == '1' || value[0] == '5'))
      s->priority = (uint8_t)(value[0] - '0');
    else if (valuelen == 2 && value[0] == '1' && value[1] == '0')
      s->priority = 10;
    else
      s->priority = MOCK_PRIORITY_BAD;
  } else if (NAME_IS("apns-topic")) {
    if (seen_twice(s, HDR_TOPIC)) return 0;
    s->topic_given = 1;
    if (valuelen > APNS_TOPIC_MAX) {
      s->topic_bad = 1;
    } else {
      memcpy(s->topic, value, valuelen);
      s->topic[valuelen] = '\0';
      s->topic_bad = apns_validate_topic(s->topic) != 0 || strlen(s->topic) != valuelen;
    }
  } else if (NAME_IS("apns-collapse-id")) {
    if (seen_twice(s, HDR_COLLAPSE)) return 0;
    s->collapse_bad = valuelen == 0 || valuelen > APNS_COLLAPSE_ID_MAX;
  } else if (NAME_IS("apns-expiration")) {
    if (seen_twice(s, HDR_EXPIRATION)) return 0;
    s->expiration_bad = valuelen == 0 || valuelen > 19;
    for (size_t i = 0; i < valuelen; i++)
      if (value[i] < '0' || value[i] > '9') s->expiration_bad = 1;
  } else if (NAME_IS("authorization")) {
    if (seen_twice(s, HDR_AUTH)) return 0;
    return auth_header(c, s, (const char *)value, valuelen);
  }
  return 0;
}

static int cb_data_chunk(nghttp2_session *h2, uint8_t flags, int32_t stream_id, const uint8_t *data, size_t len,
                         void *ud) {
  (void)flags, (void)ud;
  mock_stream *s = nghttp2_session_get_stream_user_data(h2, stream_id);
  if (s == NULL) return 0;
  s->body_len += len;
  if (s->chan != NULL) apns__mock_chan_data(s->chan, data, len);
  mock_capture *cap = s->cap;
  if (cap != NULL && cap->body_len + len <= 1 << 20) {
    if (cap->body_len + len > cap->body_cap) {
      size_t ncap = cap->body_cap ? cap->body_cap * 2 : 1024;
      while (ncap < cap->body_len + len) ncap *= 2;
      uint8_t *b = apns__realloc(cap->body, ncap);
      if (b == NULL) return NGHTTP2_ERR_CALLBACK_FAILURE;
      cap->body = b;
      cap->body_cap = ncap;
    }
    memcpy(cap->body + cap->body_len, data, len);
    cap->body_len += len;
  }
  return 0;
}

static int cb_frame_recv(nghttp2_session *h2, const nghttp2_frame *frame, void *ud) {
  apns__mock_conn *c = ud;
  if ((frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) ||
      !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
    return 0;
  mock_stream *s = nghttp2_session_get_stream_user_data(h2, frame->hd.stream_id);
  if (s == NULL) return 0;
  return on_request_done(c, s) == 0 ? 0 : NGHTTP2_ERR_CALLBACK_FAILURE;
}

static int cb_stream_close(nghttp2_session *h2, int32_t stream_id, uint32_t error_code, void *ud) {
  (void)error_code;
  apns__mock_conn *c = ud;
  mock_stream *s = nghttp2_session_get_stream_user_data(h2, stream_id);
  if (s == NULL) return 0;
  if (s->held) held_unlink(c, s);
  if (s->answered) c->answering--;
  c->open_streams--;
  nghttp2_session_set_stream_user_data(h2, stream_id, NULL);
  stream_put(c, s);
  return 0;
}

/* ---- the connection ---- */

/* The first SETTINGS, once the client certificate (if any) is known: token connections start at one stream. */
static int start_h2(apns__mock_conn *c) {
  const apns_mock_options *opts = c->opts;
  c->started = 1;
  c->cert_uid = c->tls != NULL ? apns__tls_peer_uid(c->tls) : NULL;
  c->token_conn = c->jwt != NULL && c->cert_uid == NULL;
  nghttp2_settings_entry iv[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, c->token_conn       ? 1
                                                : opts->max_streams ? opts->max_streams
                                                                    : 1000},
      {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
  };
  if (nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, iv, 2) != 0) return APNS_ENOMEM;
  /* A wide connection window, so a thousand streams of payload are not held back by 64 KiB. */
  if (nghttp2_session_set_local_window_size(c->h2, NGHTTP2_FLAG_NONE, 0, MOCK_CONN_WINDOW) != 0) return APNS_ENOMEM;
  return 0;
}

int apns__mock_conn_new(apns__mock_conn **out, const apns_mock_options *opts, struct apns__tls_config *tls,
                        const struct apns__jwt_verifier *jwt, apns_mock_stats *stats, uint64_t seed) {
  nghttp2_session_callbacks *cbs = NULL;
  nghttp2_option *h2opt = NULL;
  int rv = APNS_ENOMEM;
  *out = NULL;
  if (opts == NULL || stats == NULL) return APNS_EINVAL;
  apns__mock_conn *c = apns__calloc(1, sizeof *c);
  if (c == NULL) return APNS_ENOMEM;
  apns__list_init(&c->slabs);
  apns__list_init(&c->free_streams);
  apns__list_init(&c->held_fifo);
  apns__heap_init(&c->held_early, held_less);
  c->id = stats->connections;
  c->opts = opts;
  c->jwt = jwt;
  c->stats = stats;
  c->rng = seed;
  if (opts->chaos.enabled) c->chaos_rng = apns__mock_chaos_conn_seed(&opts->chaos, c->id);
  c->paused = opts->paused;
  c->prefix_bad_len = opts->bad_prefix ? strlen(opts->bad_prefix) : 0;
  c->prefix_unreg_len = opts->unregistered_prefix ? strlen(opts->unregistered_prefix) : 0;
  {
    char esc[MOCK_REASON_MAX * 6 + 1];
    json_escape(esc, sizeof esc, opts->goaway_reason ? opts->goaway_reason : "Shutdown", MOCK_REASON_MAX);
    c->goaway_len = (size_t)snprintf(c->goaway_data, sizeof c->goaway_data, "{\"reason\":\"%s\"}", esc);
  }

  if (tls != NULL) {
    rv = apns__tls_new(&c->tls, tls, NULL);
    if (rv != 0) goto fail;
    rv = APNS_ENOMEM;
  }
  if (nghttp2_session_callbacks_new(&cbs) != 0) goto fail;
  nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, cb_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cbs, cb_header);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, cb_data_chunk);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, cb_frame_recv);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, cb_stream_close);
  if (nghttp2_option_new(&h2opt) != 0) goto fail;
  /* Closed streams are kept only for RFC 7540 priorities, which we do not honour: drop them at once. */
  nghttp2_option_set_no_closed_streams(h2opt, 1);
  if (nghttp2_session_server_new3(&c->h2, cbs, c, h2opt, apns__nghttp2_mem()) != 0) goto fail;
  nghttp2_session_callbacks_del(cbs);
  cbs = NULL;
  nghttp2_option_del(h2opt);
  h2opt = NULL;

  if (c->tls == NULL && start_h2(c) != 0) goto fail;
  *out = c;
  return 0;

fail:
  nghttp2_option_del(h2opt);
  nghttp2_session_callbacks_del(cbs);
  apns__mock_conn_free(c);
  return rv;
}

void apns__mock_conn_free(apns__mock_conn *c) {
  if (c == NULL) return;
  /* nghttp2_session_del does not report stream closes: captures are freed through the slabs below. */
  nghttp2_session_del(c->h2);
  apns__tls_free(c->tls);
  apns__list *n;
  while ((n = apns__list_pop_head(&c->slabs)) != NULL) {
    mock_slab *slab = APNS__CONTAINER_OF(n, mock_slab, node);
    for (int i = 0; i < MOCK_SLAB; i++) {
      capture_free(slab->streams[i].cap);
      apns__free(slab->streams[i].tok);
      apns__mock_chan_req_free(slab->streams[i].chan);
    }
    apns__free(slab);
  }
  apns__free(c->cur);
  apns__free(c->out);
  apns__free(c);
}

static int h2_error(apns__mock_conn *c, int rv) {
  c->failed = 1;
  c->stats->protocol_errors++;
  set_error(c, "HTTP/2", nghttp2_strerror(rv));
  return rv == NGHTTP2_ERR_NOMEM ? APNS_ENOMEM : APNS_EHTTP2;
}

static int h2_input(apns__mock_conn *c, const uint8_t *data, size_t len) {
  ssize_t n = nghttp2_session_mem_recv(c->h2, data, len);
  if (n < 0) return h2_error(c, (int)n);
  return 0;
}

int apns__mock_conn_feed(apns__mock_conn *c, const uint8_t *data, size_t len, uint64_t now_ms) {
  if (c->failed) return APNS_ECLOSED;
  if (c->silent) return 0; /* chaos: what the client says is never read */
  c->now = now_ms;
  if (c->tls == NULL) return h2_input(c, data, len);

  int rv = apns__tls_feed(c->tls, data, len);
  if (rv != 0) return rv;
  if (!apns__tls_handshake_done(c->tls)) {
    rv = apns__tls_handshake(c->tls);
    if (rv == 1) return 0;
    if (rv != 0) {
      c->failed = 1;
      c->stats->handshake_failures++;
      set_error(c, "TLS handshake", apns__tls_error(c->tls));
      return rv;
    }
  }
  if (!c->started && (rv = start_h2(c)) != 0) {
    c->failed = 1;
    set_error(c, "HTTP/2", "out of memory");
    return rv;
  }
  uint8_t buf[16384];
  for (;;) {
    ssize_t n = apns__tls_read(c->tls, buf, sizeof buf);
    if (n == 0) break;
    if (n == APNS_ECLOSED) {
      c->peer_closed = 1;
      break;
    }
    if (n < 0) {
      c->failed = 1;
      set_error(c, "TLS", apns__tls_error(c->tls));
      return (int)n;
    }
    rv = h2_input(c, buf, (size_t)n);
    if (rv != 0) return rv;
  }
  return 0;
}

static int gather(apns__mock_conn *c) {
  for (;;) {
    const uint8_t *p;
    ssize_t n = nghttp2_session_mem_send(c->h2, &p);
    if (n < 0) return h2_error(c, (int)n);
    if (n == 0) return 0;
    if (c->out_len + (size_t)n > c->out_cap) {
      size_t ncap = c->out_cap ? c->out_cap * 2 : 16384;
      while (ncap < c->out_len + (size_t)n) ncap *= 2;
      uint8_t *b = apns__realloc(c->out, ncap);
      if (b == NULL) return APNS_ENOMEM;
      c->out = b;
      c->out_cap = ncap;
    }
    memcpy(c->out + c->out_len, p, (size_t)n);
    c->out_len += (size_t)n;
  }
}

/* Chaos garbage: random bytes after the frames gathered, inside TLS when there is TLS; then the connection ends. */
static int chaos_garbage(apns__mock_conn *c) {
  enum { N = 64 };
  if (c->out_len + N > c->out_cap) {
    size_t ncap = c->out_len + N;
    uint8_t *b = apns__realloc(c->out, ncap);
    if (b == NULL) return APNS_ENOMEM;
    c->out = b;
    c->out_cap = ncap;
  }
  apns__mock_chaos_bytes(&c->chaos_rng, c->out + c->out_len, N);
  c->out_len += N;
  c->chaos_garbage = 0;
  c->failed = 1;
  return 0;
}

/* Chaos drop-write: the block about to be written is cut at a random point and the connection ends there. */
static void chaos_cut(apns__mock_conn *c, size_t *len) {
  if (!c->chaos_cut || *len == 0) return;
  *len = (size_t)apns__mock_chaos_below(&c->chaos_rng, *len);
  c->chaos_cut = 0;
  c->failed = 1;
}

int apns__mock_conn_flush(apns__mock_conn *c, uint64_t now_ms, uint8_t **buf, size_t *len) {
  int rv = 0;
  *buf = NULL;
  *len = 0;
  c->now = now_ms;
  int ready = c->tls == NULL || apns__tls_handshake_done(c->tls);
  if (c->silent) return 0;
  if (ready && !c->failed) {
    rv = release_due(c, now_ms);
    if (rv != 0) rv = h2_error(c, rv);
    if (rv == 0) rv = gather(c);
    if (rv == 0 && c->chaos_garbage) rv = chaos_garbage(c);
    if (c->chaos_close) c->failed = 1; /* chaos drop, goaway-drop: close once this block is written */
  }
  if (c->tls == NULL) {
    /* Hand over the gathered block itself; the next flush starts a new one. */
    if (c->out_len > 0) {
      *buf = c->out;
      *len = c->out_len;
      c->out = NULL;
      c->out_len = c->out_cap = 0;
    }
    chaos_cut(c, len);
    return rv;
  }
  if (c->out_len > 0) {
    int wrv = apns__tls_write(c->tls, c->out, c->out_len);
    c->out_len = 0;
    if (wrv != 0 && rv == 0) {
      c->failed = 1;
      set_error(c, "TLS write", apns__tls_error(c->tls));
      rv = wrv;
    }
  }
  apns__tls_take_output(c->tls, buf, len);
  chaos_cut(c, len);
  return rv;
}

uint64_t apns__mock_conn_next_due(const apns__mock_conn *c) {
  if (c->paused || c->silent) return APNS__MOCK_NEVER;
  const mock_stream *s = held_first(c);
  uint64_t due = s ? s->due : APNS__MOCK_NEVER;
  if (c->trickle_n > 0 && c->trickle_due < due) due = c->trickle_due;
  return due;
}

void apns__mock_conn_set_channels(apns__mock_conn *c, apns__mock_channels *channels, int serve) {
  c->channels = channels;
  c->serve = serve;
}

void apns__mock_conn_set_paused(apns__mock_conn *c, int paused) {
  c->paused = paused != 0;
}

int apns__mock_conn_want_close(const apns__mock_conn *c) {
  if (c->failed || c->peer_closed) return 1;
  if (c->dropping && c->answering == 0 && held_first(c) == NULL) return 1;
  return !nghttp2_session_want_read(c->h2) && !nghttp2_session_want_write(c->h2);
}

int apns__mock_conn_dropped(const apns__mock_conn *c) {
  return c->dropping;
}

const char *apns__mock_conn_error(const apns__mock_conn *c) {
  return c->err;
}
