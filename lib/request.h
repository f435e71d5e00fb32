/* libapns internal: a request built once into one allocation, ready for nghttp2. Layer 1: no I/O.
 *
 * The pool keeps an apns__req across retries on different connections, so the built form (headers, strings, body)
 * belongs to the request, not to any stream: h2 streams only point at it. Headers are validated here once (lowercase
 * names, no CR/LF/NUL), and HPACK flags chosen once: :path, authorization and apns-id are sent as literals never
 * indexed (they change per request); the rest may be indexed.
 *
 * The headers are kept compact (a request may wait in a queue of millions): lengths only, the strings one after the
 * other, the usual header names not stored at all. apns__req_nv spreads them into an nghttp2_nv array at submit. */
#ifndef APNS_LIB_REQUEST_H
#define APNS_LIB_REQUEST_H

#include "heap.h"
#include "list.h"
#include "validate.h"

#include <apns/common.h>
#include <nghttp2/nghttp2.h>
#include <stdalign.h>

/* What the owner's extra bytes are aligned for: pointers, 64-bit integers, doubles. Narrower than max_align_t
 * (16 on x86-64, for long double), which would pad every request by up to 16 bytes for types no owner keeps. */
typedef union {
  void *p;
  void (*f)(void);
  uint64_t u;
  double d;
} apns__req_align;
#define APNS__REQ_ALIGN alignof(apns__req_align)

typedef struct apns__req {
  size_t body_len;
  /* The layout of the rest of the block (read through apns__req_nv and apns__req_body). */
  uint32_t path_len;
  uint32_t num_headers;
  uint32_t hdrs_off; /* from the start of the block to the header table, behind the owner's extra bytes */
  uint8_t method;    /* index into request.c's method table */
  /* Kept by whoever holds the request now; zeroed by apns__req_new. A request is held by one at a time: the pool's
   * queue while it waits, the connection carrying the current attempt while it is in flight, so both use the same
   * two nodes. */
  struct {
    uint64_t deadline; /* absolute, in the loop's milliseconds (uv_now); set by the owner, read by the connection */
    int32_t stream_id;
    uint8_t early; /* its deadline is in its holder's heap of early ones (dl), not in the holder's FIFO */
    union {
      apns__heap_node dl; /* by deadline (apns__req_deadline_less): the pool's and the connection's early ones */
      apns__list fifo;    /* the pool's FIFO of queued deadlines (the connection's FIFO is q) */
    };
    apns__list q; /* the pool's queue; the connection's FIFO of deadlines, or its requests dropped unsent */
    void (*done)(struct apns__req *req, int err, const apns_response *res);
  } link;
  /* the rest of the allocation: `extra` bytes for the owner (apns__req_extra), the header table, the body, then
   * the strings (path, then each header's name unless it is a known one, and value, all NUL-terminated) */
} apns__req;

/* Builds a request from its public description. extra bytes, zeroed and aligned for pointers, 64-bit integers and
 * doubles (APNS__REQ_ALIGN; not for long double or over-aligned types), are kept for the owner's own bookkeeping (so
 * one allocation serves the whole request). Methods: NULL (POST), POST, GET, DELETE, PUT, HEAD (exact case).
 * Returns 0, APNS_EINVAL (NULL desc or path, path not starting with '/' or holding a space or control byte, unknown
 * method, headers NULL with num_headers > 0, body NULL with body_len > 0; or sizes past what the block records: a
 * path, header value, header count or extra of 4 GiB or more, a header name of 1 GiB or more), APNS_EBADHEADER (a
 * NULL name or value, a name not a lowercase HTTP token, a pseudo-header, a value with CR/LF/NUL, or an
 * connection-specific header HTTP/2 forbids: connection, keep-alive, proxy-connection, transfer-encoding, upgrade,
 * te; see apns__header_name_valid in validate.h) or APNS_ENOMEM. */
int apns__req_new(apns__req **out, const apns_request *desc, size_t extra);

/* desc's timeout resolved (0 means APNS_DEFAULT_TIMEOUT_MS). Not kept in the block: the owner turns it into
 * link.deadline when it posts, and nothing reads it after. desc has passed apns__req_new; a size that ends before
 * timeout_ms (an older program's) means the default, as the ABI rule says. */
static inline uint64_t apns__req_timeout(const apns_request *desc) {
  if (desc->size < offsetof(apns_request, timeout_ms) + sizeof desc->timeout_ms) return APNS_DEFAULT_TIMEOUT_MS;
  return desc->timeout_ms ? desc->timeout_ms : APNS_DEFAULT_TIMEOUT_MS;
}
void apns__req_free(apns__req *req);

/* The order of link.dl in a heap: the earlier link.deadline first, then the lower link.stream_id (on one connection,
 * the one posted first). */
int apns__req_deadline_less(const apns__heap_node *a, const apns__heap_node *b);

static inline apns__req *apns__req_of_dl(apns__heap_node *n) {
  return n == NULL ? NULL : APNS__CONTAINER_OF(n, apns__req, link.dl);
}

static inline apns__req *apns__req_of_q(apns__list *n) {
  return n == NULL ? NULL : APNS__CONTAINER_OF(n, apns__req, link.q);
}

static inline apns__req *apns__req_of_fifo(apns__list *n) {
  return n == NULL ? NULL : APNS__CONTAINER_OF(n, apns__req, link.fifo);
}

/* The extra bytes sit right behind the struct: a constant offset both ways, inline as the pool's lists use it. */
#define APNS__REQ_EXTRA_OFFSET ((sizeof(apns__req) + APNS__REQ_ALIGN - 1) & ~(size_t)(APNS__REQ_ALIGN - 1))

static inline void *apns__req_extra(apns__req *req) {
  return req == NULL ? NULL : (char *)req + APNS__REQ_EXTRA_OFFSET;
}

/* The request whose extra bytes these are (the inverse of apns__req_extra). */
static inline apns__req *apns__req_of_extra(void *extra) {
  return extra == NULL ? NULL : (apns__req *)(void *)((char *)extra - APNS__REQ_EXTRA_OFFSET);
}

/* The body (NULL when body_len is 0). */
const uint8_t *apns__req_body(const apns__req *req);

/* The request's header fields as nghttp2 takes them: :method, :scheme, :path, :authority (the given one: it belongs
 * to the connection), then the caller's headers in their order. Every name and value lives in the request block,
 * in static storage or in the authority (which the caller keeps alive as long as nghttp2 may read it), so all carry
 * NO_COPY_NAME | NO_COPY_VALUE; :path, authorization and apns-id also NO_INDEX. Returns how many entries the
 * request has (4 + its headers) and fills out only when cap holds them all. */
size_t apns__req_nv(const apns__req *req, nghttp2_nv *out, size_t cap, const char *authority, size_t authority_len);

#endif
