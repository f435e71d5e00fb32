/* libapns internal: a request built once into one allocation, ready for nghttp2. Layer 1: no I/O.
 *
 * The pool keeps an apns__req across retries on different connections, so the built form (nghttp2_nv array,
 * strings, body) belongs to the request, not to any stream: h2 streams only point at it. Headers are validated here
 * once (lowercase names, no CR/LF/NUL), and HPACK flags chosen once: :path, authorization and apns-id are sent as
 * literals never indexed (they change per request); the rest may be indexed. */
#ifndef APNS_LIB_REQUEST_H
#define APNS_LIB_REQUEST_H

#include <apns.h>
#include <nghttp2/nghttp2.h>

typedef struct apns__req {
  nghttp2_nv *nva; /* :method, :scheme, :path, :authority (filled at submit), then the caller's headers */
  size_t nvlen;
  const uint8_t *body;
  size_t body_len;
  uint64_t timeout_ms;   /* resolved: never 0 */
  void *owner;           /* free for the layer that owns the request (conn or pool) */
  /* Kept by the connection carrying the current attempt (conn.c); zeroed by apns__req_new. */
  struct {
    uint64_t deadline; /* absolute, in the loop's milliseconds (uv_now) */
    int32_t stream_id;
    struct apns__req *prev, *next; /* the connection's deadline list */
    void (*done)(struct apns__req *req, int err, const apns_response *res);
    void *conn;
  } link;
  /* the rest of the allocation: nv array, strings, body, then `extra` bytes for the owner (apns__req_extra) */
} apns__req;

/* Builds a request from its public description. extra bytes, aligned for any type and zeroed, are kept for the
 * owner's own bookkeeping (so one allocation serves the whole request). Methods: NULL (POST), POST, GET, DELETE,
 * PUT, HEAD (exact case). Returns 0, APNS_EINVAL (NULL desc or path, path not starting with '/' or holding a space
 * or control byte, unknown method, headers NULL with num_headers > 0, body NULL with body_len > 0), APNS_EBADHEADER
 * (a NULL name or value, a name not a lowercase HTTP token, a pseudo-header, a value with CR/LF/NUL, or an
 * connection-specific header HTTP/2 forbids: connection, keep-alive, proxy-connection, transfer-encoding, upgrade,
 * te; see apns__header_name_valid in validate.c) or APNS_ENOMEM. */
int apns__req_new(apns__req **out, const apns_request *desc, size_t extra);
void *apns__req_extra(apns__req *req);
void apns__req_free(apns__req *req);

/* Header checks shared with validation: 1 when valid. */
int apns__header_name_valid(const char *name, size_t len);
int apns__header_value_valid(const char *value, size_t len);

#endif
