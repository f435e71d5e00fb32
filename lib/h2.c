/* The HTTP/2 client session without I/O, over nghttp2. Layer 2: never includes uv.h.
 *
 * Per stream we keep one small record (from a free list, so steady state allocates nothing of ours per request): the
 * request it serves, and the response as it arrives in one arena (header strings, then the body). nghttp2 holds the
 * record as its stream user data, which makes every frame callback an O(1) lookup. A table from stream id to record
 * serves apns__h2_cancel, since nghttp2 cannot look up a stream whose HEADERS are still queued.
 *
 * A record ends (its one callback) as soon as its outcome is known; nghttp2 may still hold it for a while (the
 * stream is reset but not yet closed), so it becomes a "zombie" that nothing calls back for, recycled when nghttp2
 * reports the stream closed or when the session is freed. The request is never touched after its callback: its
 * queued HEADERS are canceled with RST_STREAM (nghttp2 then drops them unsent) and the body reader refuses a
 * zombie. */
#include "h2.h"

#include "alloc.h"
#include "blocks.h"
#include "list.h"
#include "sat.h"

#include <jansson.h>
#include <string.h>

/* Our receive windows: larger than any response we accept, so no response ever waits on a WINDOW_UPDATE. nghttp2
 * sends WINDOW_UPDATE by itself as data is consumed (we consume at once, into bounded buffers). */
#define APNS__H2_STREAM_WINDOW (1 << 20)
#define APNS__H2_CONN_WINDOW (1 << 24)
/* Response header strings beyond this end the stream like an oversized body: APNs sends three small headers. */
#define APNS__H2_MAX_HEADER_BYTES (32 * 1024)
/* Inline room for a typical response without an allocation: APNs's apns-id and apns-unique-id, or a short JSON
 * reason; and what a general-purpose server or a proxy in front of one adds to every response (nginx: server,
 * date, content-type, content-length, then the apns-id it echoes: five headers, about 150 bytes). Records are
 * recycled, so this is paid once per stream in flight, not per notification. */
#define APNS__H2_INLINE_ARENA 256
#define APNS__H2_INLINE_HEADERS 8

/* A header while it is collected is two arena offsets (the arena may move); at delivery the same slot becomes the
 * apns_header the callback gets. */
typedef union h2_hslot {
  apns_header h;
  struct {
    size_t name, value;
  } off;
} h2_hslot;

typedef struct h2_stream h2_stream;
struct h2_stream {
  apns__req *req; /* NULL once ended */
  int32_t id;
  unsigned ended : 1;        /* its callback has run (or is running) */
  unsigned trailers : 1;     /* the current header block is a trailer block: ignored */
  unsigned headers_sent : 1; /* nghttp2 has serialized its HEADERS: from then on the server may have it */
  int status;
  uint64_t out_mark; /* the owner's output mark when its HEADERS were serialized (apns__h2_set_out_mark) */
  size_t body_sent;
  apns__list node; /* on the open list (id order), the zombie list or the free list */
  char *arena;     /* header strings, then the body */
  size_t len, cap;
  size_t body_off; /* where the body starts in the arena; SIZE_MAX before any DATA */
  size_t header_bytes;
  h2_hslot *hdrs;
  size_t nhdrs, hcap;
  size_t apns_id, unique_id; /* offset + 1 of the value, 0 when absent */
  char inline_arena[APNS__H2_INLINE_ARENA];
  h2_hslot inline_hdrs[APNS__H2_INLINE_HEADERS];
};

struct apns__h2 {
  nghttp2_session *session;
  apns__h2_callbacks cb;
  void *ctx;
  char *authority;
  size_t authority_len;

  apns__list open;         /* ended == 0, in stream id order */
  apns__list zombies;      /* ended, still known to nghttp2 */
  apns__list free_streams; /* records to reuse */
  uint32_t in_flight, max_streams;
  uint64_t out_mark; /* see apns__h2_set_out_mark */
  size_t out_used;   /* bytes of the take_output in progress before the frame being serialized */

  /* id -> open record, open addressing with linear probing; keys 0 are empty (client ids are odd). */
  int32_t *map_keys;
  h2_stream **map_vals;
  size_t map_cap, map_count;

  /* A chunk nghttp2_session_mem_send gave us that we could not copy (out of memory): valid until the next
   * mem_send, so the next take_output starts with it and no byte is lost. */
  const uint8_t *stash;
  size_t stash_len;

  apns__blocks blocks; /* nghttp2's allocations for this session (blocks.h); released after the session */

  int dead;  /* 0, or the error the session died of (APNS_EHTTP2, APNS_ENOMEM) */
  int fatal; /* nghttp2 returned a fatal error: only nghttp2_session_del may follow */
  unsigned settings_seen : 1;
  unsigned goaway_recv : 1;
  unsigned shutdown : 1;
  unsigned closed : 1; /* fail_all or free ran: no more submits */
  unsigned free_pending : 1;
  unsigned freeing : 1;
  unsigned depth;      /* nesting of our calls that run callbacks; free waits for 0 */
  unsigned in_nghttp2; /* inside mem_recv/mem_send: those two must not nest */
};

static void h2_destroy(apns__h2 *h2);

/* ---- allocation through apns__malloc, nghttp2's included ---- */

static void *ng_malloc(size_t size, void *ud) {
  (void)ud;
  return apns__malloc(size);
}
static void ng_free(void *ptr, void *ud) {
  (void)ud;
  apns__free(ptr);
}
static void *ng_calloc(size_t n, size_t size, void *ud) {
  (void)ud;
  return apns__calloc(n, size);
}
static void *ng_realloc(void *ptr, size_t size, void *ud) {
  (void)ud;
  return apns__realloc(ptr, size);
}

nghttp2_mem *apns__nghttp2_mem(void) {
  /* nghttp2 copies the struct into each session; one shared, never written, serves them all. The client's sessions
   * have a block cache each instead (apns__h2_new). */
  static nghttp2_mem mem = {NULL, ng_malloc, ng_free, ng_calloc, ng_realloc};
  return &mem;
}

/* ---- lists ---- */

static h2_stream *stream_of_node(apns__list *n) {
  return n ? APNS__CONTAINER_OF(n, h2_stream, node) : NULL;
}

/* ---- id map ---- */

static size_t map_home(int32_t id, size_t cap) {
  /* Client ids are consecutive odd numbers. Taken as they are (id >> 1), the open streams would fill one contiguous
   * run of slots, and a deletion's backward shift would walk all of it: O(streams in flight) each time. A
   * multiplicative mix scatters consecutive ids, so runs stay short at load <= 1/2. */
  uint32_t x = ((uint32_t)id >> 1) * 0x9E3779B1u;
  return (x ^ (x >> 16)) & (cap - 1);
}

static size_t map_slot(const apns__h2 *h2, int32_t id) {
  return map_home(id, h2->map_cap);
}

static int map_reserve(apns__h2 *h2) {
  size_t cap, i;
  int32_t *keys;
  h2_stream **vals;
  if ((h2->map_count + 1) * 2 <= h2->map_cap) return 0;
  cap = h2->map_cap ? h2->map_cap * 2 : 16;
  keys = apns__calloc(cap, sizeof *keys);
  vals = apns__malloc(cap * sizeof *vals);
  if (keys == NULL || vals == NULL) {
    apns__free(keys);
    apns__free(vals);
    return APNS_ENOMEM;
  }
  for (i = 0; i < h2->map_cap; i++) {
    if (h2->map_keys[i] == 0) continue;
    size_t j = map_home(h2->map_keys[i], cap);
    while (keys[j] != 0) j = (j + 1) & (cap - 1);
    keys[j] = h2->map_keys[i];
    vals[j] = h2->map_vals[i];
  }
  apns__free(h2->map_keys);
  apns__free(h2->map_vals);
  h2->map_keys = keys;
  h2->map_vals = vals;
  h2->map_cap = cap;
  return 0;
}

static void map_put(apns__h2 *h2, int32_t id, h2_stream *st) {
  size_t i = map_slot(h2, id);
  while (h2->map_keys[i] != 0) i = (i + 1) & (h2->map_cap - 1);
  h2->map_keys[i] = id;
  h2->map_vals[i] = st;
  h2->map_count++;
}

static size_t map_find(const apns__h2 *h2, int32_t id) {
  if (h2->map_cap == 0 || id <= 0) return SIZE_MAX;
  for (size_t i = map_slot(h2, id);; i = (i + 1) & (h2->map_cap - 1)) {
    if (h2->map_keys[i] == id) return i;
    if (h2->map_keys[i] == 0) return SIZE_MAX;
  }
}

/* Backward-shift deletion keeps probe chains intact without tombstones. */
static void map_del(apns__h2 *h2, int32_t id) {
  size_t mask = h2->map_cap - 1, i = map_find(h2, id), j;
  if (i == SIZE_MAX) return;
  h2->map_keys[i] = 0;
  h2->map_count--;
  for (j = (i + 1) & mask; h2->map_keys[j] != 0; j = (j + 1) & mask) {
    size_t home = map_slot(h2, h2->map_keys[j]);
    /* Move j into the hole at i when its home is not cyclically in (i, j]. */
    if (((j - home) & mask) >= ((j - i) & mask)) {
      h2->map_keys[i] = h2->map_keys[j];
      h2->map_vals[i] = h2->map_vals[j];
      h2->map_keys[j] = 0;
      i = j;
    }
  }
}

/* ---- stream records ---- */

static void stream_reset_response(h2_stream *st) {
  st->len = 0;
  st->body_off = SIZE_MAX;
  st->header_bytes = 0;
  st->nhdrs = 0;
  st->apns_id = st->unique_id = 0;
  st->status = 0;
}

static h2_stream *stream_get(apns__h2 *h2) {
  h2_stream *st = stream_of_node(apns__list_pop_head(&h2->free_streams));
  if (st == NULL && (st = apns__malloc(sizeof *st)) == NULL) return NULL;
  st->req = NULL;
  st->id = 0;
  st->ended = 0;
  st->trailers = 0;
  st->headers_sent = 0;
  st->body_sent = 0;
  apns__list_init(&st->node);
  st->arena = st->inline_arena;
  st->cap = sizeof st->inline_arena;
  st->hdrs = st->inline_hdrs;
  st->hcap = APNS__H2_INLINE_HEADERS;
  stream_reset_response(st);
  return st;
}

static void stream_release_buffers(h2_stream *st) {
  if (st->arena != st->inline_arena) apns__free(st->arena);
  if (st->hdrs != st->inline_hdrs) apns__free(st->hdrs);
  st->arena = st->inline_arena;
  st->hdrs = st->inline_hdrs;
}

/* Back to the free list; heap buffers go, so a rare large response does not pin memory. */
static void stream_recycle(apns__h2 *h2, h2_stream *st) {
  stream_release_buffers(st);
  apns__list_push_head(&h2->free_streams, &st->node);
}

/* Room for n more bytes plus a NUL (the body is NUL-terminated at delivery without a further allocation). */
static int arena_reserve(h2_stream *st, size_t n) {
  size_t need = st->len + n + 1, cap;
  char *p;
  if (need <= st->cap) return 0;
  cap = st->cap * 2;
  while (cap < need) cap *= 2;
  if (st->arena == st->inline_arena) {
    p = apns__malloc(cap);
    if (p != NULL) memcpy(p, st->arena, st->len);
  } else {
    p = apns__realloc(st->arena, cap);
  }
  if (p == NULL) return APNS_ENOMEM;
  st->arena = p;
  st->cap = cap;
  return 0;
}

static size_t arena_put(h2_stream *st, const uint8_t *data, size_t len, int nul) {
  size_t off = st->len;
  memcpy(st->arena + st->len, data, len);
  st->len += len;
  if (nul) st->arena[st->len++] = '\0';
  return off;
}

static int hdrs_reserve(h2_stream *st) {
  h2_hslot *p;
  size_t cap;
  if (st->nhdrs < st->hcap) return 0;
  cap = st->hcap * 2;
  if (st->hdrs == st->inline_hdrs) {
    p = apns__malloc(cap * sizeof *p);
    if (p != NULL) memcpy(p, st->hdrs, st->nhdrs * sizeof *p);
  } else {
    p = apns__realloc(st->hdrs, cap * sizeof *p);
  }
  if (p == NULL) return APNS_ENOMEM;
  st->hdrs = p;
  st->hcap = cap;
  return 0;
}

/* Takes a record out of the open set: from here on nothing calls back for it again and its request is the
 * owner's. Returns the request. The caller delivers the one callback. */
static apns__req *stream_end(apns__h2 *h2, h2_stream *st, int still_in_nghttp2) {
  apns__req *req = st->req;
  apns__list_remove(&st->node);
  map_del(h2, st->id);
  h2->in_flight--;
  st->ended = 1;
  st->req = NULL;
  if (still_in_nghttp2) apns__list_push_tail(&h2->zombies, &st->node);
  return req;
}

/* Ends a stream without a response. If nghttp2 may still send for it, a RST_STREAM(CANCEL) is queued first:
 * canceled queued HEADERS are then dropped unsent, so the request's strings are not read after the callback. */
static void stream_fail(apns__h2 *h2, h2_stream *st, int err, apns_delivery delivery, int reset) {
  apns__req *req;
  /* A request whose HEADERS never left nghttp2 cannot have reached the server, whatever the caller assumed. */
  if (delivery == APNS_DELIVERY_UNKNOWN && !st->headers_sent) delivery = APNS_DELIVERY_NOT_PROCESSED;
  if (reset && !h2->fatal) (void)nghttp2_submit_rst_stream(h2->session, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_CANCEL);
  req = stream_end(h2, st, 1);
  if (h2->cb.on_stream_error) h2->cb.on_stream_error(h2->ctx, req, err, delivery);
}

/* ---- entry and exit of calls that run callbacks ---- */

static void enter(apns__h2 *h2) {
  h2->depth++;
}

/* Returns 1 when h2 was freed (a callback asked for it): the caller must not touch h2 again. */
static int leave(apns__h2 *h2) {
  if (--h2->depth == 0 && h2->free_pending && !h2->freeing) {
    h2_destroy(h2);
    return 1;
  }
  return 0;
}

/* ---- the response ---- */

/* Builds the apns_response in place (offsets become pointers) and calls on_response. */
static void deliver_response(apns__h2 *h2, h2_stream *st) {
  apns_response res;
  json_t *json = NULL;
  apns__req *req;
  size_t body_len = 0;
  /* The server may answer before it has read all of the body; then we stop sending it. */
  int reset = !nghttp2_session_get_stream_local_close(h2->session, st->id);

  memset(&res, 0, sizeof res);
  res.status = st->status;
  res.attempts = 1;
  res.delivery = APNS_DELIVERY_RESPONDED;
  if (st->body_off != SIZE_MAX) {
    body_len = st->len - st->body_off;
    st->arena[st->len] = '\0'; /* arena_reserve always leaves room for it */
    if (body_len > 0) {
      res.body = st->arena + st->body_off;
      res.body_len = body_len;
    }
  }
  /* Only error answers carry {"reason", "timestamp"}; 2xx bodies (channel management) are the caller's to read. */
  if (res.body != NULL && (st->status < 200 || st->status > 299)) {
    json_error_t jerr;
    memset(&jerr, 0, sizeof jerr);
    json = json_loadb(res.body, body_len, 0, &jerr);
    /* jansson sets no error text when it runs out of memory before parsing starts. */
    if (json == NULL && (json_error_code(&jerr) == json_error_out_of_memory || jerr.text[0] == '\0')) {
      stream_fail(h2, st, APNS_ENOMEM, APNS_DELIVERY_UNKNOWN, reset);
      return;
    }
    if (json_is_object(json)) {
      json_t *reason = json_object_get(json, "reason"), *ts = json_object_get(json, "timestamp");
      if (json_is_string(reason)) {
        res.reason_text = json_string_value(reason);
        res.reason = apns_reason_from_string(res.reason_text, json_string_length(reason));
      }
      if (json_is_integer(ts))
        res.timestamp_ms = (int64_t)json_integer_value(ts);
      else if (json_is_real(ts)) {
        /* Only what an int64_t holds converts (-2^63 and 2^63 are exact doubles); the cast of anything else, a
         * 1e300 say, is undefined behaviour. Such a timestamp is dropped, as if absent. */
        double v = json_real_value(ts);
        if (v >= -9223372036854775808.0 && v < 9223372036854775808.0) res.timestamp_ms = (int64_t)v;
      }
    }
  }
  for (size_t i = 0; i < st->nhdrs; i++) {
    size_t n = st->hdrs[i].off.name, v = st->hdrs[i].off.value;
    st->hdrs[i].h.name = st->arena + n;
    st->hdrs[i].h.value = st->arena + v;
  }
  res.headers = st->nhdrs ? &st->hdrs[0].h : NULL;
  res.num_headers = st->nhdrs;
  if (st->apns_id) res.apns_id = st->arena + st->apns_id - 1;
  if (st->unique_id) res.apns_unique_id = st->arena + st->unique_id - 1;

  if (reset) (void)nghttp2_submit_rst_stream(h2->session, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_CANCEL);
  req = stream_end(h2, st, 1);
  if (h2->cb.on_response) h2->cb.on_response(h2->ctx, req, &res);
  json_decref(json);
}

/* Why a stream closed without a response, for the owner (see h2.h). */
static void close_error(uint32_t error_code, int *err, apns_delivery *delivery) {
  *delivery = APNS_DELIVERY_UNKNOWN;
  switch (error_code) {
  case NGHTTP2_REFUSED_STREAM:
    /* The server did not start on it (or nghttp2 never sent it): always safe to send again. */
    *err = APNS_ECLOSED;
    *delivery = APNS_DELIVERY_NOT_PROCESSED;
    break;
  case NGHTTP2_PROTOCOL_ERROR:
  case NGHTTP2_FLOW_CONTROL_ERROR:
  case NGHTTP2_STREAM_CLOSED:
  case NGHTTP2_FRAME_SIZE_ERROR:
  case NGHTTP2_COMPRESSION_ERROR:
    /* A broken exchange (a malformed response that nghttp2 reset, or one the server found malformed). */
    *err = APNS_EHTTP2;
    break;
  default:
    /* NO_ERROR without a full response, CANCEL, INTERNAL_ERROR, ENHANCE_YOUR_CALM, ...: the server gave up on it,
     * maybe after acting on it. */
    *err = APNS_ECLOSED;
    break;
  }
}

/* ---- nghttp2 callbacks ---- */

static h2_stream *stream_of(nghttp2_session *session, int32_t id) {
  h2_stream *st = nghttp2_session_get_stream_user_data(session, id);
  return st != NULL && !st->ended ? st : NULL;
}

static int on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *user_data) {
  h2_stream *st = stream_of(session, frame->hd.stream_id);
  (void)user_data;
  if (st == NULL) return 0;
  if (st->status >= 100 && st->status < 200) {
    /* The final response follows an informational one: keep only the final one's headers. */
    stream_reset_response(st);
  } else if (st->status >= 200) {
    st->trailers = 1; /* APNs sends none; they would only confuse the headers we report */
  }
  return 0;
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name, size_t namelen,
                     const uint8_t *value, size_t valuelen, uint8_t flags, void *user_data) {
  apns__h2 *h2 = user_data;
  h2_stream *st = stream_of(session, frame->hd.stream_id);
  h2_hslot *slot;
  (void)flags;
  if (st == NULL || st->trailers) return 0;
  if (namelen > 0 && name[0] == ':') {
    if (namelen == 7 && memcmp(name, ":status", 7) == 0) {
      int status = 0;
      for (size_t i = 0; i < valuelen && i < 3; i++) status = status * 10 + (value[i] - '0');
      st->status = status;
    }
    return 0;
  }
  if (namelen + valuelen + 2 > APNS__H2_MAX_HEADER_BYTES - st->header_bytes) {
    stream_fail(h2, st, APNS_ERESPONSETOOLARGE, APNS_DELIVERY_UNKNOWN, 1);
    return 0;
  }
  if (arena_reserve(st, namelen + valuelen + 2) != 0 || hdrs_reserve(st) != 0) {
    stream_fail(h2, st, APNS_ENOMEM, APNS_DELIVERY_UNKNOWN, 1);
    return 0;
  }
  st->header_bytes += namelen + valuelen + 2;
  slot = &st->hdrs[st->nhdrs++];
  slot->off.name = arena_put(st, name, namelen, 1);
  slot->off.value = arena_put(st, value, valuelen, 1);
  if (namelen == 7 && memcmp(name, "apns-id", 7) == 0) st->apns_id = slot->off.value + 1;
  if (namelen == 14 && memcmp(name, "apns-unique-id", 14) == 0) st->unique_id = slot->off.value + 1;
  return 0;
}

static int on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t stream_id, const uint8_t *data, size_t len,
                         void *user_data) {
  apns__h2 *h2 = user_data;
  h2_stream *st = stream_of(session, stream_id);
  size_t have;
  (void)flags;
  if (st == NULL) return 0;
  if (st->body_off == SIZE_MAX) st->body_off = st->len;
  have = st->len - st->body_off;
  if (len > APNS__H2_MAX_BODY - have) {
    stream_fail(h2, st, APNS_ERESPONSETOOLARGE, APNS_DELIVERY_UNKNOWN, 1);
    return 0;
  }
  if (arena_reserve(st, len) != 0) {
    stream_fail(h2, st, APNS_ENOMEM, APNS_DELIVERY_UNKNOWN, 1);
    return 0;
  }
  arena_put(st, data, len, 0);
  return 0;
}

static void on_goaway(apns__h2 *h2, const nghttp2_goaway *goaway) {
  json_t *json = NULL, *reason = NULL;
  h2_stream *st;
  h2->goaway_recv = 1;
  if (goaway->opaque_data_len > 0) {
    json = json_loadb((const char *)goaway->opaque_data, goaway->opaque_data_len, 0, NULL);
    reason = json_object_get(json, "reason");
  }
  if (h2->cb.on_goaway)
    h2->cb.on_goaway(h2->ctx, goaway->error_code, goaway->last_stream_id,
                     json_is_string(reason) ? json_string_value(reason) : NULL);
  json_decref(json);
  /* Streams above last-stream-id were not processed. They are the newest, so they form the tail of the open list:
   * no scan of the rest. nghttp2 closes them itself later (REFUSED_STREAM); their records are zombies by then. */
  while ((st = stream_of_node(apns__list_tail(&h2->open))) != NULL && st->id > goaway->last_stream_id)
    stream_fail(h2, st, APNS_ECLOSED, APNS_DELIVERY_NOT_PROCESSED, 0);
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data) {
  apns__h2 *h2 = user_data;
  switch (frame->hd.type) {
  case NGHTTP2_HEADERS:
  case NGHTTP2_DATA:
    if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) {
      h2_stream *st = stream_of(session, frame->hd.stream_id);
      if (st != NULL && st->status >= 200) deliver_response(h2, st);
    }
    break;
  case NGHTTP2_SETTINGS:
    if (!(frame->hd.flags & NGHTTP2_FLAG_ACK)) {
      uint32_t max = nghttp2_session_get_remote_settings(session, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
      if (!h2->settings_seen || max != h2->max_streams) {
        h2->settings_seen = 1;
        h2->max_streams = max;
        if (h2->cb.on_max_streams) h2->cb.on_max_streams(h2->ctx, max);
      }
    }
    break;
  case NGHTTP2_PING:
    if ((frame->hd.flags & NGHTTP2_FLAG_ACK) && h2->cb.on_ping_ack) h2->cb.on_ping_ack(h2->ctx);
    break;
  case NGHTTP2_GOAWAY:
    on_goaway(h2, &frame->goaway);
    break;
  default:
    break;
  }
  return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code, void *user_data) {
  apns__h2 *h2 = user_data;
  h2_stream *st = nghttp2_session_get_stream_user_data(session, stream_id);
  if (st == NULL) return 0;
  if (st->ended) {
    apns__list_remove(&st->node);
  } else {
    int err;
    apns_delivery delivery;
    apns__req *req;
    close_error(error_code, &err, &delivery);
    req = stream_end(h2, st, 0);
    if (h2->cb.on_stream_error) h2->cb.on_stream_error(h2->ctx, req, err, delivery);
  }
  /* nghttp2 forgets the stream when this returns: the record is free again. */
  stream_recycle(h2, st);
  return 0;
}

/* What a session nghttp2 terminated died of: its HPACK coder answers an allocation failure with
 * GOAWAY(COMPRESSION_ERROR), not NGHTTP2_ERR_NOMEM, so one of its allocations failing in this call is the cause. */
static int broken_error(const apns__h2 *h2) {
  return apns__blocks_failed(&h2->blocks) ? APNS_ENOMEM : APNS_EHTTP2;
}

static int on_frame_send(nghttp2_session *session, const nghttp2_frame *frame, void *user_data) {
  apns__h2 *h2 = user_data;
  if (frame->hd.type == NGHTTP2_HEADERS) {
    h2_stream *st = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (st != NULL) {
      st->headers_sent = 1;
      /* A lower bound of where its bytes start in the owner's output: TLS only adds to the offset. */
      st->out_mark = apns__add_sat(h2->out_mark, h2->out_used);
    }
  }
  /* nghttp2 terminates a session it found broken with GOAWAY(error); ours (apns__h2_shutdown) is NO_ERROR. */
  if (frame->hd.type == NGHTTP2_GOAWAY && frame->goaway.error_code != NGHTTP2_NO_ERROR && !h2->dead)
    h2->dead = broken_error(h2);
  return 0;
}

static ssize_t read_body(nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t length,
                         uint32_t *data_flags, nghttp2_data_source *source, void *user_data) {
  h2_stream *st = source->ptr;
  size_t n;
  (void)session, (void)stream_id, (void)user_data;
  /* A zombie's request may be gone: never read it (and never end its body as if complete). */
  if (st->ended || st->req == NULL) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  n = st->req->body_len - st->body_sent;
  if (n > length) n = length;
  memcpy(buf, apns__req_body(st->req) + st->body_sent, n);
  st->body_sent += n;
  if (st->body_sent == st->req->body_len) *data_flags |= NGHTTP2_DATA_FLAG_EOF;
  return (ssize_t)n;
}

/* ---- the session ---- */

static int map_ng_error(int rv) {
  return rv == NGHTTP2_ERR_NOMEM ? APNS_ENOMEM : APNS_EHTTP2;
}

int apns__h2_new(apns__h2 **out, const char *authority, const apns__h2_callbacks *cb, void *ctx) {
  nghttp2_session_callbacks *cbs = NULL;
  nghttp2_option *opt = NULL;
  nghttp2_mem mem;
  apns__h2 *h2;
  int rv;
  nghttp2_settings_entry iv[] = {
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, APNS__H2_STREAM_WINDOW},
  };

  if (out == NULL) return APNS_EINVAL;
  *out = NULL;
  if (authority == NULL || cb == NULL || authority[0] == '\0' ||
      !apns__header_value_valid(authority, strlen(authority)))
    return APNS_EINVAL;

  h2 = apns__calloc(1, sizeof *h2);
  if (h2 == NULL) return APNS_ENOMEM;
  h2->cb = *cb;
  h2->ctx = ctx;
  apns__blocks_init(&h2->blocks);
  apns__blocks_mem(&h2->blocks, &mem);
  apns__list_init(&h2->open);
  apns__list_init(&h2->zombies);
  apns__list_init(&h2->free_streams);
  h2->max_streams = 1; /* until the server's first SETTINGS: token auth allows one stream before a valid token */
  h2->authority_len = strlen(authority);
  h2->authority = apns__strndup(authority, h2->authority_len);
  if (h2->authority == NULL) goto nomem;

  /* Both are plain malloc in nghttp2 and short-lived. */
  if (nghttp2_session_callbacks_new(&cbs) != 0) goto nomem;
  nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
  nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
  if (nghttp2_option_new(&opt) != 0) goto nomem;
  nghttp2_option_set_peer_max_concurrent_streams(opt, 1);

  rv = nghttp2_session_client_new3(&h2->session, cbs, h2, opt, &mem);
  nghttp2_session_callbacks_del(cbs);
  nghttp2_option_del(opt);
  cbs = NULL;
  opt = NULL;
  if (rv != 0) {
    h2->session = NULL;
    goto fail_rv;
  }
  rv = nghttp2_submit_settings(h2->session, NGHTTP2_FLAG_NONE, iv, sizeof iv / sizeof iv[0]);
  if (rv != 0) goto fail_rv;
  rv = nghttp2_session_set_local_window_size(h2->session, NGHTTP2_FLAG_NONE, 0, APNS__H2_CONN_WINDOW);
  if (rv != 0) goto fail_rv;
  *out = h2;
  return 0;

nomem:
  rv = NGHTTP2_ERR_NOMEM;
fail_rv:
  nghttp2_session_callbacks_del(cbs);
  nghttp2_option_del(opt);
  nghttp2_session_del(h2->session);
  apns__blocks_release(&h2->blocks);
  apns__free(h2->authority);
  apns__free(h2);
  return map_ng_error(rv);
}

static void free_list(apns__list *l) {
  h2_stream *st;
  while ((st = stream_of_node(apns__list_pop_head(l))) != NULL) {
    stream_release_buffers(st);
    apns__free(st);
  }
}

static void h2_destroy(apns__h2 *h2) {
  h2->freeing = 1;
  h2->closed = 1;
  enter(h2);
  apns__h2_fail_all(h2, APNS_ECLOSED, APNS_DELIVERY_UNKNOWN);
  h2->depth--;
  nghttp2_session_del(h2->session);
  apns__blocks_release(&h2->blocks); /* nghttp2 freed into it until now */
  free_list(&h2->zombies);
  free_list(&h2->free_streams);
  apns__free(h2->map_keys);
  apns__free(h2->map_vals);
  apns__free(h2->authority);
  apns__free(h2);
}

void apns__h2_free(apns__h2 *h2) {
  if (h2 == NULL || h2->freeing) return;
  if (h2->depth > 0) {
    /* From inside a callback: nghttp2 (or our own loop) is still using the session. The outermost call frees it
     * on its way out. */
    h2->free_pending = 1;
    h2->closed = 1;
    return;
  }
  h2_destroy(h2);
}

int apns__h2_feed(apns__h2 *h2, const uint8_t *data, size_t len) {
  int err = 0;
  if (h2 == NULL || (data == NULL && len > 0)) return APNS_EINVAL;
  if (h2->in_nghttp2) return APNS_EBUSY;
  if (h2->dead) return h2->dead;
  enter(h2);
  h2->in_nghttp2 = 1;
  apns__blocks_clear_failed(&h2->blocks);
  while (len > 0) {
    ssize_t n = nghttp2_session_mem_recv(h2->session, data, len);
    if (n < 0) {
      /* Every error mem_recv returns is fatal (NOMEM, CALLBACK_FAILURE, FLOODED, BAD_CLIENT_MAGIC). */
      h2->fatal = nghttp2_is_fatal((int)n);
      h2->dead = map_ng_error((int)n);
      break;
    }
    data += n;
    len -= (size_t)n;
  }
  h2->in_nghttp2 = 0;
  /* A protocol error is not returned by mem_recv: nghttp2 queues GOAWAY and ignores the rest. It shows as requests
   * no longer being allowed while we neither got GOAWAY nor sent ours. */
  if (!h2->dead && !h2->goaway_recv && !h2->shutdown &&
      nghttp2_session_get_next_stream_id(h2->session) <= INT32_MAX &&
      !nghttp2_session_check_request_allowed(h2->session))
    h2->dead = broken_error(h2);
  err = h2->dead;
  leave(h2); /* may free h2 (a callback asked for it) */
  return err;
}

int apns__h2_take_output(apns__h2 *h2, uint8_t **buf, size_t *len) {
  uint8_t *out = NULL;
  size_t used = 0, cap = 0;
  int err = 0;
  if (buf != NULL) *buf = NULL;
  if (len != NULL) *len = 0;
  if (h2 == NULL || buf == NULL || len == NULL) return APNS_EINVAL;
  if (h2->in_nghttp2) return APNS_EBUSY;
  if (h2->fatal) return h2->dead;
  enter(h2);
  h2->in_nghttp2 = 1;
  apns__blocks_clear_failed(&h2->blocks);
  for (;;) {
    const uint8_t *chunk;
    ssize_t n;
    if (h2->stash != NULL) {
      chunk = h2->stash;
      n = (ssize_t)h2->stash_len;
    } else {
      h2->out_used = used; /* where the frame nghttp2 serializes now begins, for on_frame_send */
      n = nghttp2_session_mem_send(h2->session, &chunk);
      if (n < 0) {
        h2->fatal = 1;
        h2->dead = map_ng_error((int)n);
        err = h2->dead;
        break;
      }
      if (n == 0) break;
    }
    if ((size_t)n > cap - used) {
      size_t ncap = cap ? cap : 4096;
      uint8_t *p;
      while (ncap - used < (size_t)n) ncap *= 2;
      p = apns__realloc(out, ncap);
      if (p == NULL) {
        /* Keep the chunk for next time; what we have so far goes out now. */
        h2->stash = chunk;
        h2->stash_len = (size_t)n;
        if (used == 0) err = APNS_ENOMEM;
        break;
      }
      out = p;
      cap = ncap;
    }
    memcpy(out + used, chunk, (size_t)n);
    used += (size_t)n;
    h2->stash = NULL;
    h2->stash_len = 0;
  }
  h2->in_nghttp2 = 0;
  if (used == 0 || h2->fatal) {
    /* A session nghttp2 gave up on sends nothing more. */
    apns__free(out);
  } else {
    *buf = out;
    *len = used;
    err = 0;
  }
  leave(h2);
  return err;
}

int32_t apns__h2_submit(apns__h2 *h2, apns__req *req, const nghttp2_nv *extra_headers, size_t num_extra) {
  nghttp2_nv local[24], *nva = local;
  nghttp2_data_provider prd, *prdp = NULL;
  h2_stream *st;
  size_t nreq, n, i;
  int32_t id;

  if (h2 == NULL || req == NULL || (num_extra > 0 && extra_headers == NULL)) return APNS_EINVAL;
  if (h2->dead || h2->closed || h2->goaway_recv || h2->shutdown || apns__h2_ids_low(h2)) return APNS_ECLOSED;
  if (h2->in_flight >= h2->max_streams) return APNS_EBLOCKED;
  nreq = apns__req_nv(req, NULL, 0, NULL, 0);
  n = nreq + num_extra;
  if (n < num_extra) return APNS_EINVAL;
  if (map_reserve(h2) != 0) return APNS_ENOMEM;
  st = stream_get(h2);
  if (st == NULL) return APNS_ENOMEM;
  if (n > sizeof local / sizeof local[0]) {
    nva = n <= SIZE_MAX / sizeof *nva ? apns__malloc(n * sizeof *nva) : NULL;
    if (nva == NULL) {
      stream_recycle(h2, st);
      return APNS_ENOMEM;
    }
  }
  /* The authority outlives any queued HEADERS (the session is deleted first), so nghttp2 need not copy it. */
  apns__req_nv(req, nva, nreq, h2->authority, h2->authority_len);
  for (i = 0; i < num_extra; i++) {
    nghttp2_nv *nv = &nva[nreq + i];
    *nv = extra_headers[i];
    /* Copied by nghttp2 (the caller's buffers are only valid during this call); authorization never indexed. */
    nv->flags &= NGHTTP2_NV_FLAG_NO_INDEX;
    if (nv->namelen == 13 && memcmp(nv->name, "authorization", 13) == 0) nv->flags |= NGHTTP2_NV_FLAG_NO_INDEX;
  }
  if (req->body_len > 0) {
    prd.source.ptr = st;
    prd.read_callback = read_body;
    prdp = &prd;
  }
  id = nghttp2_submit_request(h2->session, NULL, nva, n, prdp, st);
  if (nva != local) apns__free(nva);
  if (id < 0) {
    stream_recycle(h2, st);
    if (id == NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE) return APNS_ECLOSED;
    return map_ng_error(id);
  }
  st->id = id;
  st->req = req;
  apns__list_push_tail(&h2->open, &st->node);
  map_put(h2, id, st);
  h2->in_flight++;
  return id;
}

int apns__h2_cancel(apns__h2 *h2, int32_t stream_id, int err, apns_delivery delivery) {
  size_t slot;
  if (h2 == NULL) return APNS_EINVAL;
  slot = map_find(h2, stream_id);
  if (slot == SIZE_MAX) return APNS_EINVAL;
  enter(h2);
  stream_fail(h2, h2->map_vals[slot], err, delivery, 1);
  leave(h2);
  return 0;
}

void apns__h2_set_out_mark(apns__h2 *h2, uint64_t mark) {
  if (h2 != NULL) h2->out_mark = mark;
}

void apns__h2_cancel_unsent(apns__h2 *h2, int err, apns_delivery delivery, uint64_t written) {
  h2_stream *st;
  if (h2 == NULL) return;
  enter(h2);
  /* nghttp2 serializes HEADERS in the order they were submitted, which is id order, and marks only grow: the unsent
   * streams are the tail of the open list. Queued HEADERS are dropped by the reset, unsent; serialized ones are
   * the owner's to drop. */
  while ((st = stream_of_node(apns__list_tail(&h2->open))) != NULL &&
         (!st->headers_sent || st->out_mark >= written)) {
    st->headers_sent = 0; /* never reached the server, whatever was serialized: stream_fail says NOT_PROCESSED */
    stream_fail(h2, st, err, delivery, 1);
  }
  leave(h2);
}

void apns__h2_fail_all(apns__h2 *h2, int err, apns_delivery delivery) {
  h2_stream *st;
  if (h2 == NULL) return;
  h2->closed = 1;
  enter(h2);
  /* Re-read the head each time: a callback may cancel or fail other streams. */
  while ((st = stream_of_node(apns__list_head(&h2->open))) != NULL) stream_fail(h2, st, err, delivery, 1);
  leave(h2);
}

int apns__h2_ping(apns__h2 *h2) {
  int rv;
  if (h2 == NULL) return APNS_EINVAL;
  if (h2->dead) return APNS_ECLOSED;
  rv = nghttp2_submit_ping(h2->session, NGHTTP2_FLAG_NONE, NULL);
  return rv == 0 ? 0 : map_ng_error(rv);
}

int apns__h2_shutdown(apns__h2 *h2) {
  int rv;
  if (h2 == NULL) return APNS_EINVAL;
  if (h2->dead) return APNS_ECLOSED;
  if (h2->shutdown) return 0;
  /* last-stream-id counts streams the server opened: with push disabled, none. */
  rv = nghttp2_submit_goaway(h2->session, NGHTTP2_FLAG_NONE, 0, NGHTTP2_NO_ERROR, NULL, 0);
  if (rv != 0) return map_ng_error(rv);
  h2->shutdown = 1;
  return 0;
}

uint32_t apns__h2_max_streams(const apns__h2 *h2) {
  return h2->max_streams;
}

uint32_t apns__h2_in_flight(const apns__h2 *h2) {
  return h2->in_flight;
}

int apns__h2_want_io(const apns__h2 *h2) {
  if (h2->fatal) return 0;
  return nghttp2_session_want_read(h2->session) || nghttp2_session_want_write(h2->session);
}

int apns__h2_goaway_received(const apns__h2 *h2) {
  return h2->goaway_recv;
}

int apns__h2_ids_low(const apns__h2 *h2) {
  return nghttp2_session_get_next_stream_id(h2->session) > (uint32_t)INT32_MAX - APNS__H2_ID_MARGIN;
}

void apns__h2_blocks_stats(const apns__h2 *h2, apns__blocks_stats *out) {
  *out = h2->blocks.st;
}

int apns__h2_test_set_next_stream_id(apns__h2 *h2, int32_t id) {
  if (h2 == NULL || id <= 0 || (id & 1) == 0) return APNS_EINVAL;
  return nghttp2_session_set_next_stream_id(h2->session, id) == 0 ? 0 : APNS_EINVAL;
}
