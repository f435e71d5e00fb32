/* libapns: what every part of the API shares.
 *
 * Error codes, APNs reasons, the replaceable allocator and the small structs that cross the API boundary
 * (headers and responses). Include <apns.h> rather than this file.
 */
#ifndef APNS_COMMON_H
#define APNS_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Marks the public functions, as libuv's UV_EXTERN does. The library is compiled with BUILDING_APNS_SHARED and
 * hidden visibility, so these and nothing else leave libapns.so. A program using the library defines nothing (on
 * Windows, USING_APNS_SHARED when it links the DLL rather than the static library). */
#if defined(_WIN32)
#if defined(BUILDING_APNS_SHARED)
#define APNS_EXTERN __declspec(dllexport)
#elif defined(USING_APNS_SHARED)
#define APNS_EXTERN __declspec(dllimport)
#else
#define APNS_EXTERN /* nothing */
#endif
#elif defined(BUILDING_APNS_SHARED) && defined(__GNUC__) && __GNUC__ >= 4
#define APNS_EXTERN __attribute__((visibility("default")))
#else
#define APNS_EXTERN /* nothing */
#endif

#define APNS_VERSION_MAJOR 0
#define APNS_VERSION_MINOR 1
#define APNS_VERSION_PATCH 0
#define APNS_VERSION_STRING "0.1.0"

/* The version of the library actually linked, as "MAJOR.MINOR.PATCH". */
APNS_EXTERN const char *apns_version_string(void);

/* ------------------------------------------------------------------------------------------------------------------
 * Errors
 *
 * Every function that can fail returns an int: 0 on success, a negative code on failure. Our codes live in a range
 * of their own (just above APNS__ERRNO_BASE, -100000, and far below every errno) so that libuv's UV_* codes
 * (negative errno values, DNS errors) can travel through the same int unchanged. apns_strerror() and
 * apns_err_name() understand both.
 *
 * An HTTP status or an APNs reason is not an error: a request that got any response ends with err == 0 and the
 * status and reason in the apns_response.
 * ---------------------------------------------------------------------------------------------------------------- */
#define APNS__ERRNO_BASE (-100000)

/* XX(name, message) */
#define APNS_ERRNO_MAP(XX)                                                                                            \
  XX(EINVAL, "invalid argument")                                                                                      \
  XX(ENOMEM, "out of memory")                                                                                         \
  XX(ETIMEDOUT, "request deadline passed before a response")                                                          \
  XX(ECLOSED, "connection closed before a response")                                                                  \
  XX(EBLOCKED, "connection cannot take another stream now")                                                           \
  XX(ECANCELED, "canceled by close")                                                                                  \
  XX(EQUEUEFULL, "pending queue is full")                                                                             \
  XX(ETLS, "TLS failure")                                                                                             \
  XX(ECERTVERIFY, "server certificate verification failed")                                                           \
  XX(EALPN, "server did not negotiate HTTP/2 (ALPN h2)")                                                              \
  XX(EHTTP2, "HTTP/2 protocol error")                                                                                 \
  XX(ERESPONSETOOLARGE, "response body exceeds the limit")                                                            \
  XX(EPAYLOADTOOLARGE, "payload exceeds the size limit")                                                              \
  XX(EPAYLOADEMPTY, "payload is empty")                                                                               \
  XX(EBADJSON, "payload is not valid JSON")                                                                           \
  XX(EBADUTF8, "string is not valid UTF-8")                                                                           \
  XX(EBADTOKEN, "device token is not an even-length hex string")                                                      \
  XX(EBADTOPIC, "topic is empty or has spaces or control characters")                                                 \
  XX(EBADAPNSID, "apns-id is not a canonical UUID")                                                                   \
  XX(EBADCOLLAPSEID, "collapse-id is empty, over 64 bytes, or has CR, LF, NUL or a space at either end")              \
  XX(EBADPRIORITY, "priority must be 1, 5 or 10")                                                                     \
  XX(EBADPUSHTYPE, "unknown push type")                                                                               \
  XX(EBADHEADER, "header name or value has CR, LF, NUL or an invalid character")                                      \
  XX(EBADKEY, "private key could not be loaded")                                                                      \
  XX(EBADCERT, "certificate could not be loaded")                                                                     \
  XX(EBUSY, "call not allowed from here (re-entrant or wrong state)")                                                 \
  XX(ESTOPPED, "pool or client stopped after a fatal answer")                                                         \
  XX(EBADCHANNELID, "broadcast channel id is missing, too long or not base64")                                        \
  XX(EPROXY, "proxy refused or failed to open the tunnel")                                                            \
  XX(EPROXYAUTH, "proxy authentication required or refused")                                                          \
  XX(EPROXYPROTO, "proxy reply is malformed or too large")

typedef enum {
  APNS__ERR_FIRST = APNS__ERRNO_BASE,
#define APNS__ERR_ENUM(name, msg) APNS_##name,
  APNS_ERRNO_MAP(APNS__ERR_ENUM)
#undef APNS__ERR_ENUM
  APNS__ERR_LAST
} apns_errno;

/* A human-readable message for any code: ours, libuv's, or 0 ("success"). Never NULL; the string is static. */
APNS_EXTERN const char *apns_strerror(int err);
/* The symbolic name: "APNS_ETIMEDOUT", "ECONNREFUSED" (libuv's), ... Never NULL; static. */
APNS_EXTERN const char *apns_err_name(int err);

/* ------------------------------------------------------------------------------------------------------------------
 * APNs reasons (the "reason" in a non-200 response body)
 *
 * APNS_REASON_NONE: there was no reason (status 200, or no body). APNS_REASON_UNKNOWN: a reason this version does
 * not know; the response still carries its text. Both spellings of BadEnvironmentKeyIdInToken are known.
 * ---------------------------------------------------------------------------------------------------------------- */
/* XX(name, status Apple documents it with) */
#define APNS_REASON_MAP(XX)                                                                                           \
  XX(BadCollapseId, 400)                                                                                              \
  XX(BadDeviceToken, 400)                                                                                             \
  XX(BadExpirationDate, 400)                                                                                          \
  XX(BadMessageId, 400)                                                                                               \
  XX(BadPriority, 400)                                                                                                \
  XX(BadTopic, 400)                                                                                                   \
  XX(DeviceTokenNotForTopic, 400)                                                                                     \
  XX(DuplicateHeaders, 400)                                                                                           \
  XX(IdleTimeout, 400)                                                                                                \
  XX(InvalidPushType, 400)                                                                                            \
  XX(MissingDeviceToken, 400)                                                                                         \
  XX(MissingTopic, 400)                                                                                               \
  XX(PayloadEmpty, 400)                                                                                               \
  XX(TopicDisallowed, 400)                                                                                            \
  XX(BadCertificate, 403)                                                                                             \
  XX(BadCertificateEnvironment, 403)                                                                                  \
  XX(ExpiredProviderToken, 403)                                                                                       \
  XX(Forbidden, 403)                                                                                                  \
  XX(InvalidProviderToken, 403)                                                                                       \
  XX(MissingProviderToken, 403)                                                                                       \
  XX(UnrelatedKeyIdInToken, 403)                                                                                      \
  XX(BadEnvironmentKeyIdInToken, 403)                                                                                 \
  XX(BadEnvironmentKeyInToken, 403)                                                                                   \
  XX(BadPath, 404)                                                                                                    \
  XX(MethodNotAllowed, 405)                                                                                           \
  XX(ExpiredToken, 410)                                                                                               \
  XX(Unregistered, 410)                                                                                               \
  XX(PayloadTooLarge, 413)                                                                                            \
  XX(TooManyProviderTokenUpdates, 429)                                                                                \
  XX(TooManyRequests, 429)                                                                                            \
  XX(InternalServerError, 500)                                                                                        \
  XX(ServiceUnavailable, 503)                                                                                         \
  XX(Shutdown, 503)                                                                                                   \
  XX(FeatureNotEnabled, 400)                                                                                          \
  XX(MissingChannelId, 400)                                                                                           \
  XX(BadChannelId, 400)                                                                                               \
  XX(ChannelNotRegistered, 400)                                                                                       \
  XX(BadRequestParams, 400)                                                                                           \
  XX(BadRequestPayload, 400)                                                                                          \
  XX(MissingPushType, 400)                                                                                            \
  XX(CannotCreateChannelConfig, 400)                                                                                  \
  XX(TopicMismatch, 403)

typedef enum {
  APNS_REASON_NONE = 0,
  APNS_REASON_UNKNOWN = 1,
#define APNS__REASON_ENUM(name, status) APNS_REASON_##name,
  APNS_REASON_MAP(APNS__REASON_ENUM)
#undef APNS__REASON_ENUM
  APNS__REASON_COUNT
} apns_reason;

/* The reason's text as Apple spells it ("BadDeviceToken"); "" for NONE, "Unknown" for UNKNOWN, NULL if out of range. */
APNS_EXTERN const char *apns_reason_string(apns_reason reason);
/* The reason for a text of len bytes (not NUL-terminated): NONE for len 0, UNKNOWN when not known. Case-sensitive,
 * as Apple's reasons are. */
APNS_EXTERN apns_reason apns_reason_from_string(const char *text, size_t len);
/* The HTTP status Apple documents the reason with; 0 for NONE and UNKNOWN. */
APNS_EXTERN int apns_reason_status(apns_reason reason);
/* Non-zero when the reason means "stop sending to this device token": Unregistered, ExpiredToken, BadDeviceToken,
 * DeviceTokenNotForTopic. */
APNS_EXTERN int apns_reason_is_token_dead(apns_reason reason);
/* Non-zero when the same request may succeed if sent again later unchanged (server trouble, rate limits, an expired
 * provider token that the library replaces): InternalServerError, ServiceUnavailable, Shutdown, TooManyRequests,
 * IdleTimeout, ExpiredProviderToken, TooManyProviderTokenUpdates. Never for the token-dead reasons, Forbidden or
 * PayloadTooLarge. */
APNS_EXTERN int apns_reason_is_retryable(apns_reason reason);

/* ------------------------------------------------------------------------------------------------------------------
 * Allocator
 *
 * Every allocation libapns makes, nghttp2's for our sessions and jansson's included, goes through these functions.
 * Replace them before any other call, as with uv_replace_allocator(); the functions must behave like their libc
 * namesakes (realloc(NULL, n) allocates, free(NULL) does nothing). jansson's allocator is process-wide: replacing
 * ours also sets jansson's, so do not replace it if another part of the process sets jansson's own.
 * mbedTLS allocates with its own calloc/free (Debian's build has no MBEDTLS_PLATFORM_MEMORY).
 * Returns 0, or APNS_EINVAL when a function is NULL.
 * ---------------------------------------------------------------------------------------------------------------- */
typedef void *(*apns_malloc_func)(size_t size);
typedef void *(*apns_realloc_func)(void *ptr, size_t size);
typedef void *(*apns_calloc_func)(size_t count, size_t size);
typedef void (*apns_free_func)(void *ptr);

APNS_EXTERN int apns_replace_allocator(apns_malloc_func malloc_func, apns_realloc_func realloc_func,
                                       apns_calloc_func calloc_func, apns_free_func free_func);

/* ------------------------------------------------------------------------------------------------------------------
 * Headers and responses: small structs that cross the boundary
 * ---------------------------------------------------------------------------------------------------------------- */

/* One HTTP header. name and value are NUL-terminated; names are lowercase (HTTP/2). */
typedef struct apns_header {
  const char *name;
  const char *value;
} apns_header;

/* ------------------------------------------------------------------------------------------------------------------
 * The ABI rule (README.md, "ABI"). A struct the caller fills and the library reads begins with size_t size, set by
 * its initializer (APNS_X_INIT, or apns_X_init(&x)), which leaves every other field zero: zero is each field's
 * default. The library reads only the first size bytes; a field past them takes its default (a program built
 * against an older header). A size of 0 (never initialized) is refused with APNS_EINVAL; so is a size larger than
 * the library knows unless every byte past what it knows is zero (a newer program that left the newer fields
 * unset works; one that set them is told "from a newer libapns"). Structs the library fills for the caller are
 * written through a size the caller passes (sizeof *out), never further. Structs the library lends to a callback
 * (apns_response, apns_pool_event, apns_channel_result) only ever grow at their end: read them through the pointer
 * given, never copy them by value nor allocate one.
 * ---------------------------------------------------------------------------------------------------------------- */

/* A generic HTTP/2 request, as the pool and the connection take it (the client builds these for you).
 * The library copies everything it needs while the call that takes it runs: your buffers are yours again when it
 * returns. Header names must be lowercase tokens; no name or value may hold CR, LF or NUL (APNS_EBADHEADER).
 * Initialize with APNS_REQUEST_INIT or apns_request_init(); a size of 0, or a newer layout with a newer field set,
 * is APNS_EINVAL from the call that takes it. */
typedef struct apns_request {
  size_t size;        /* sizeof(apns_request), set by the initializers */
  const char *method; /* NULL means "POST"; "GET" and "DELETE" serve APNs channel management */
  const char *path;   /* "/3/device/<token>" */
  const apns_header *headers;
  size_t num_headers;
  const void *body; /* may be NULL when body_len is 0 */
  size_t body_len;
  uint64_t timeout_ms; /* time from submission to the final callback; 0 means the default, 10 000 ms */
} apns_request;

#ifdef __cplusplus
#define APNS_REQUEST_INIT                                                                                            \
  { sizeof(apns_request) }
#else
#define APNS_REQUEST_INIT                                                                                            \
  { .size = sizeof(apns_request) }
#endif
/* Zeroes *o and sets o->size, as APNS_REQUEST_INIT does (for a request in allocated memory). */
APNS_EXTERN void apns_request_init(apns_request *o);

#define APNS_DEFAULT_TIMEOUT_MS 10000

/* What the server may have done with a request that ended without a response. */
typedef enum {
  /* It answered (err == 0). */
  APNS_DELIVERY_RESPONDED = 0,
  /* It certainly did not process the request: never written, REFUSED_STREAM, or above GOAWAY's last-stream-id.
   * Always safe to send again. */
  APNS_DELIVERY_NOT_PROCESSED = 1,
  /* It may have processed it: the connection was lost, the request timed out or was canceled while on the wire.
   * Sending again may show the notification twice; set a collapse-id to make that harmless. */
  APNS_DELIVERY_UNKNOWN = 2
} apns_delivery;

/* The outcome of one request, handed to its callback. Valid only during the callback: copy what you keep.
 * Every field is set; those that do not apply are 0 or NULL. Lent by the library: it only grows at its end, so
 * read it through the pointer, never copy the struct itself. */
typedef struct apns_response {
  int status;                 /* HTTP status, 0 when no response arrived */
  const char *apns_id;        /* apns-id header (APNs echoes ours or makes one), or NULL */
  const char *apns_unique_id; /* apns-unique-id (development environment only), or NULL */
  apns_reason reason;         /* parsed from the JSON body; NONE on 200 */
  const char *reason_text;    /* the reason as sent, also when UNKNOWN; NULL when none */
  int64_t timestamp_ms;       /* "timestamp" of a 410 (ms since the epoch), else 0 */
  const apns_header *headers; /* every response header but the pseudo-headers */
  size_t num_headers;
  const char *body; /* the raw body, NUL-terminated for convenience; NULL when empty */
  size_t body_len;
  apns_delivery delivery; /* for err != 0: whether it is safe to send again */
  unsigned attempts;      /* tries made (1 at the low level; the pool counts its retries) */
  /* For err != 0 at the pool and client levels: what went wrong, in words (the connection's message when the
   * cause was a connection's: "certificate verification failed: ...", "cannot connect to ...: connection
   * refused"; else apns_strerror(err)). NULL when err == 0, and may be NULL at the connection level. Valid only
   * during the callback. (Appended last: the struct only grows at its end.) */
  const char *error_text;
} apns_response;

/* The callback for every request at every level. err is 0 when a response arrived (whatever its status), or a
 * negative code: APNS_ETIMEDOUT, APNS_ECLOSED, APNS_ECANCELED, ... res is never NULL. It is called exactly once per
 * accepted request, never from inside the call that submitted it.
 * At the pool and client levels, a request that never reached the server (res->delivery NOT_PROCESSED) because no
 * connection could be made ends with the connection's error itself, not a bare timeout: APNS_ECERTVERIFY,
 * APNS_EALPN, APNS_ETLS, UV_ECONNREFUSED, UV_EAI_NONAME, ... with res->error_text saying more. */
typedef void (*apns_response_cb)(int err, const apns_response *res, void *data);

#ifdef __cplusplus
}
#endif
#endif /* APNS_COMMON_H */
