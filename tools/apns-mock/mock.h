/* apns-mock: an APNs look-alike server (TLS + HTTP/2) on libuv, to run inside a test or bench process.
 *
 *   apns_mock_options o;
 *   apns_mock_options_init(&o);              // 127.0.0.1, port 0, plaintext h2c unless a certificate is given
 *   o.cert_pem = ...; o.key_pem = ...;       // TLS; add ca_pem to require client certificates
 *   apns_mock *m;
 *   apns_mock_start(&m, loop, &o, err, sizeof err);
 *   int port = apns_mock_port(m);
 *   ... uv_run(loop) ...
 *   apns_mock_stop(m, on_stopped, NULL);     // async: every handle is closed, then on_stopped, then m is freed
 *
 * Behaviour, per connection: POST /3/device/<hex token> answers 200 with the request's apns-id echoed (or a
 * generated lowercase UUID v4). Other paths get 404 BadPath, other methods 405 MethodNotAllowed, a token that is
 * not hex (or starts with bad_prefix) 400 BadDeviceToken, an empty /3/device/ 400 MissingDeviceToken, a malformed
 * apns-id 400 BadMessageId, an empty body 400 PayloadEmpty, a body over 4096 bytes (5120 for apns-push-type voip)
 * 413 PayloadTooLarge, a token starting with unregistered_prefix 410 Unregistered with a timestamp. The faults
 * below (delay, pause, stream limits, GOAWAY, drop) imitate what APNs is seen to do.
 *
 * Everything runs on the loop's thread; no call may come from another thread. The work per request is O(1): no
 * timer, no syscall and no allocation of its own per request (responses of a connection are coalesced into one
 * uv_write per loop turn). Ignore SIGPIPE in the process (as the apns-mock command does): a client that goes away
 * mid-write must cost an EPIPE, not the process. */
#ifndef APNS_MOCK_H
#define APNS_MOCK_H

#include <apns.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct apns_mock apns_mock;

/* A complete request as the on_request hook sees it. Valid only during the hook. */
typedef struct apns_mock_request {
  int32_t stream_id;
  uint64_t seq;               /* 1 for the connection's first complete request, then 2, ... */
  const char *method;         /* ":method" */
  const char *path;           /* ":path" */
  const apns_header *headers; /* every regular header (no pseudo-headers), in arrival order */
  size_t num_headers;
  const uint8_t *body; /* the request body; NULL when empty */
  size_t body_len;
  /* The answer the mock is about to give; the hook may change both. reason (Apple's spelling, at most 100
   * bytes; NULL for none) is copied when the hook returns. The apns-id header is always set. */
  int status;
  const char *reason;
} apns_mock_request;

/* Called for each complete request the mock will answer (not for those above a GOAWAY or after a drop). */
typedef void (*apns_mock_request_cb)(void *data, apns_mock_request *req);

typedef struct apns_mock_options {
  const char *host; /* IPv4 or IPv6 literal to listen on; default "127.0.0.1" */
  int port;         /* default 0: any free port (see apns_mock_port) */
  /* TLS. With neither cert_file nor cert_pem the mock speaks HTTP/2 over plain TCP (h2c, prior knowledge).
   * *_pem are NUL-terminated PEM text and win over the *_file fields when both are set. */
  const char *cert_file, *cert_pem;
  const char *key_file, *key_pem;
  /* When set (TLS only), a client certificate signed by this CA is required. Default NULL: none asked. */
  const char *ca_file, *ca_pem;
  /* Tokens starting with these get 400 BadDeviceToken / 410 Unregistered. Default NULL: none. */
  const char *bad_prefix;
  const char *unregistered_prefix;
  /* Every response is held this long after its request completes. Default 0. */
  uint32_t delay_ms;
  /* SETTINGS_MAX_CONCURRENT_STREAMS sent first (default 1000), and sent again after the connection's first
   * response when streams_after differs (default 0: no change). APNs starts token connections at 1. */
  uint32_t max_streams;
  uint32_t streams_after;
  /* After this many requests on a connection, GOAWAY(NO_ERROR) with last-stream-id the highest stream answered
   * and debug data {"reason":"<goaway_reason>"}; higher streams are refused. Default 0: never. */
  uint32_t goaway_after;
  const char *goaway_reason; /* default "Shutdown" */
  /* After this many requests on a connection, answer them, then close the TCP connection without GOAWAY; later
   * requests get no answer. Default 0: never. */
  uint32_t drop_after;
  /* Start with responses stalled (see apns_mock_set_paused). Default 0. */
  int paused;
  /* Observer and override for each request. Default NULL: the request is not copied at all. */
  apns_mock_request_cb on_request;
  void *data; /* passed to on_request */
} apns_mock_options;

/* Counters, since apns_mock_start. */
typedef struct apns_mock_stats {
  uint64_t connections;        /* accepted */
  uint64_t connections_open;   /* accepted and not yet closed */
  uint64_t handshake_failures; /* TLS handshake failed (bad or missing client certificate, no h2, ...) */
  uint64_t protocol_errors;    /* fatal HTTP/2 errors (bad preface, flooding, ...) */
  uint64_t requests;           /* complete requests received, also those left unanswered */
  uint64_t responses;          /* responses submitted */
  uint64_t goaways;            /* GOAWAYs sent by goaway_after */
  uint64_t drops;              /* connections closed by drop_after */
  uint64_t status[600];        /* responses by HTTP status: status[200], status[410], ... */
} apns_mock_stats;

/* The defaults above. */
void apns_mock_options_init(apns_mock_options *opts);

/* Loads the TLS material, binds and listens. opts is copied (strings too); the hook's data must stay valid.
 * Returns 0, APNS_EINVAL (bad option or address; errbuf says which), APNS_EBADCERT, APNS_EBADKEY, APNS_ETLS,
 * APNS_ENOMEM, or a libuv code from bind/listen (UV_EADDRINUSE, ...). */
int apns_mock_start(apns_mock **out, uv_loop_t *loop, const apns_mock_options *opts, char *errbuf, size_t errlen);

/* The bound port (useful with port 0). */
int apns_mock_port(const apns_mock *mock);

/* Non-zero: requests are taken but responses are held (they stay queued, delay included); zero: held responses
 * whose delay has passed go out on this loop turn. Applies to open and future connections. */
void apns_mock_set_paused(apns_mock *mock, int paused);

/* Closes every open connection at once, without GOAWAY (a network failure, from the client's view). The
 * listener stays open. */
void apns_mock_drop_connections(apns_mock *mock);

/* A snapshot of the counters. */
void apns_mock_get_stats(const apns_mock *mock, apns_mock_stats *out);
/* The counters as one line, "connections=2 requests=10 responses=10 200=8 410=2 ...", NUL-terminated. */
void apns_mock_format_stats(const apns_mock_stats *stats, char *buf, size_t len);

/* Closes the listener and every connection. When all their handles are closed, cb (if not NULL) runs with the
 * mock still readable (apns_mock_get_stats works), then the mock is freed. Call once; NULL is fine. */
typedef void (*apns_mock_stop_cb)(apns_mock *mock, void *data);
void apns_mock_stop(apns_mock *mock, apns_mock_stop_cb cb, void *data);

#endif
