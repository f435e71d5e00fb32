/* libapns low level: one HTTP/2-over-TLS connection (aapns's Connection).
 *
 * A connection resolves its host (asynchronously, afresh each time), connects, does the TLS handshake (TLS 1.2 or
 * newer, ALPN h2 required, the server's chain and host name verified) and then carries up to as many concurrent
 * requests as the server's SETTINGS_MAX_CONCURRENT_STREAMS allows, following that limit up and down. Before the
 * server's first SETTINGS the limit is taken as 1: Apple allows one stream on a token-auth connection until a
 * request with a valid token has been accepted.
 *
 * apns_conn_post() never queues: when the connection is full or not ready it returns APNS_EBLOCKED at once. For a
 * queue, retries and several connections, use apns_pool.
 *
 * Every accepted request ends exactly once through its callback: a response (err 0, any status), APNS_ETIMEDOUT
 * when its deadline passed (the stream is reset with CANCEL and its slot freed at once), APNS_ECLOSED when the
 * connection was lost or the server went away (res->delivery says whether it is safe to send again), or
 * APNS_ECANCELED on apns_conn_close(). No callback runs inside the call that submitted the request. Closing the
 * connection from inside any of its callbacks is safe.
 *
 * All functions must be called on the loop's thread.
 *
 * Signals: no write of the library raises SIGPIPE (it sends with MSG_NOSIGNAL, or SO_NOSIGPIPE where that is what
 * the platform has), so the embedder need not ignore SIGPIPE for our sake; a peer that resets the connection ends
 * its requests with APNS_ECLOSED (or the libuv code in on_lost), never the process. Writes of your own to sockets
 * or pipes are yours to guard as before.
 */
#ifndef APNS_CONN_H
#define APNS_CONN_H

#include <apns/common.h>
#include <apns/proxy.h>
#include <uv.h>

#ifdef __cplusplus
extern "C" {
#endif

/* TLS settings, shared by connections, pools and clients, which point to them (apns_conn_options.tls, ...;
 * NULL: every default). Everything is read and copied during the call that opens (files are read then too, and
 * the name kept): nothing of the struct nor its strings need outlive that call. Initialize it with
 * APNS_TLS_OPTIONS_INIT or apns_tls_options_init(), which set size (see README.md, "ABI"); every other field's
 * default is zero. */
typedef struct apns_tls_options {
  size_t size; /* sizeof(apns_tls_options), set by the initializers; 0 is refused (APNS_EINVAL) */
  /* Trust anchors for the server's chain: a PEM file, or PEM text. Default (both NULL): the system's, which hold
   * Apple's roots: SSL_CERT_FILE and SSL_CERT_DIR (':'-separated) when either variable is set, else the bundle
   * libapns was built with (meson -Dca_bundle), else the first that exists of /etc/ssl/certs/ca-certificates.crt
   * (Debian, Ubuntu, Arch), /etc/pki/tls/certs/ca-bundle.crt and /etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem
   * (Fedora, RHEL), /etc/ssl/ca-bundle.pem (openSUSE), /etc/ssl/cert.pem (Alpine, macOS, FreeBSD, OpenBSD),
   * /usr/local/share/certs/ca-root-nss.crt (FreeBSD) and Homebrew's cert.pem. The variables are read when the
   * options are taken. */
  const char *ca_file;
  const char *ca_pem;
  /* Client certificate and its private key, for certificate auth (PEM files, or PEM text). */
  const char *cert_file;
  const char *cert_pem;
  const char *key_file;
  const char *key_pem;
  const char *key_passphrase; /* for an encrypted key; NULL otherwise */
  /* The name the server's certificate must carry, when it differs from the host connected to (connecting to
   * 127.0.0.1 with a certificate for "localhost"). Default NULL: the host. Also sent as SNI. */
  const char *verify_name;
  /* Turns off verification of the server's chain and name. Insecure: for test servers only. Default 0. */
  int insecure_skip_verify;
} apns_tls_options;

typedef struct apns_conn apns_conn;

/* The connection is ready (status 0) or failed to become so (a negative code: a libuv code for DNS or TCP,
 * APNS_ETLS, APNS_ECERTVERIFY, APNS_EALPN, APNS_ETIMEDOUT; through a proxy also APNS_EPROXY, APNS_EPROXYAUTH,
 * APNS_EPROXYPROTO). Called once. After a failure, call apns_conn_close() to free the connection. */
typedef void (*apns_conn_connect_cb)(apns_conn *conn, int status);
/* A ready connection stopped being usable: lost, GOAWAY from the server (reason is its JSON "reason", or NULL),
 * PING unanswered, TLS or protocol error. Every request it carried has already ended. Called at most once, never
 * after apns_conn_close(). Call apns_conn_close() to free the connection. */
typedef void (*apns_conn_lost_cb)(apns_conn *conn, int err, const char *reason);
/* The connection is closed; it is freed right after this returns. */
typedef void (*apns_conn_close_cb)(apns_conn *conn);

/* Initialize with APNS_CONN_OPTIONS_INIT or apns_conn_options_init(): they set size and leave every other field
 * zero, which is its default. The library reads only the first size bytes (a field past them takes its default),
 * and refuses a size of 0, or a larger size whose bytes past the layout it knows are not all zero. Nothing of the
 * struct need outlive apns_conn_open(): what the connection keeps is copied. */
typedef struct apns_conn_options {
  size_t size;      /* sizeof(apns_conn_options), set by the initializers */
  const char *host; /* required: "api.push.apple.com", "127.0.0.1", ... */
  uint16_t port;    /* default 443 */
  /* TLS settings (trust anchors, client certificate, verify_name), read and copied at open; default NULL: all
   * defaults. */
  const apns_tls_options *tls;
  /* Authority sent with every request; default: host, or host:port when port is not 443. */
  const char *authority;
  /* DNS, TCP and TLS together; default 10 000; UINT64_MAX: no limit. The host's addresses are tried one after
   * another, each with an equal share of the time then left (the last one with all of it), so an address that
   * drops packets costs its share, not the whole timeout. */
  uint64_t connect_timeout_ms;
  /* After this long without reading anything, send a PING (Go's apns2 checks after 15 s; Apple suggests at
   * least once an hour). Default 15 000; UINT64_MAX turns health checks off. */
  uint64_t ping_idle_ms;
  /* No PING ACK by then: the connection is lost (APNS_ETIMEDOUT). Default 5 000; UINT64_MAX: wait for ever. */
  uint64_t ping_timeout_ms;
  apns_conn_connect_cb on_connect; /* optional */
  apns_conn_lost_cb on_lost;       /* optional */
  void *data;                      /* yours: apns_conn_data() */
  /* Reach host:port through this proxy (see apns/proxy.h): the connection resolves and connects to the proxy,
   * opens a tunnel to host:port, then runs TLS through it for host (SNI and verification as without a proxy).
   * connect_timeout_ms covers the proxy stage too; the proxy's refusals end the attempt with APNS_EPROXY,
   * APNS_EPROXYAUTH or APNS_EPROXYPROTO and apns_conn_last_error() naming the proxy. Copied at open. Default
   * NULL: no proxy. */
  const apns_proxy_options *proxy;
} apns_conn_options;

#ifdef __cplusplus
#define APNS_TLS_OPTIONS_INIT                                                                                        \
  { sizeof(apns_tls_options) }
#define APNS_CONN_OPTIONS_INIT                                                                                       \
  { sizeof(apns_conn_options) }
#else
#define APNS_TLS_OPTIONS_INIT                                                                                        \
  { .size = sizeof(apns_tls_options) }
#define APNS_CONN_OPTIONS_INIT                                                                                       \
  { .size = sizeof(apns_conn_options) }
#endif
/* Zero *o and set o->size, as the macros do (for structs in allocated memory). */
APNS_EXTERN void apns_tls_options_init(apns_tls_options *o);
APNS_EXTERN void apns_conn_options_init(apns_conn_options *o);

/* Starts connecting. On success *out is the new connection and on_connect will run on a later loop turn. Returns
 * APNS_EINVAL (no host, bad proxy options, or options not initialized or from a newer libapns: errbuf says which),
 * APNS_EBADCERT / APNS_EBADKEY (with errbuf saying which file and why), APNS_ENOMEM, or a libuv code. errbuf may be
 * NULL. */
APNS_EXTERN int apns_conn_open(uv_loop_t *loop, apns_conn **out, const apns_conn_options *opts, char *errbuf,
                               size_t errlen);

/* Sends a request. The request is copied: its buffers are yours again when this returns. The deadline is now plus
 * req->timeout_ms (default 10 s; UINT64_MAX: none, the sum saturates). Returns 0 (cb will run exactly once, later),
 * APNS_EBLOCKED (not ready yet, or as many streams in flight as the server allows: try again after a callback),
 * APNS_ECLOSED (closing, closed, lost, after GOAWAY or with stream ids nearly spent), APNS_EINVAL / APNS_EBADHEADER
 * (bad request) or APNS_ENOMEM.
 */
APNS_EXTERN int apns_conn_post(apns_conn *conn, const apns_request *req, apns_response_cb cb, void *data);

/* Sets the authorization header sent with every later request ("bearer <JWT>" for token auth; NULL for none).
 * Copied. Returns 0, APNS_EBADHEADER or APNS_ENOMEM. */
APNS_EXTERN int apns_conn_set_authorization(apns_conn *conn, const char *value);

/* Closes the connection: every request still open ends with APNS_ECANCELED (on a later loop turn), then cb runs
 * and the connection is freed. A request not yet handed to the socket is dropped unsent and says so
 * (res->delivery APNS_DELIVERY_NOT_PROCESSED: safe to send elsewhere); one already written ends
 * APNS_DELIVERY_UNKNOWN (the server may have acted on it). Safe from inside any callback of this connection; calling
 * it twice is an error (APNS_EBUSY). cb may be NULL. */
APNS_EXTERN int apns_conn_close(apns_conn *conn, apns_conn_close_cb cb);

/* apns_conn_unref: the connection's handles (its socket, timers, ping timer and the rest, those it has now and those
 * it makes later, on reconnecting to the next address) no longer keep the loop alive, as uv_unref does for a
 * handle: uv_run(UV_RUN_DEFAULT) returns once nothing else is left, the connection still open. Requests in flight
 * do not keep it alive either (as Node's unref'd sockets): keep a handle of your own referenced while you wait for
 * answers. Two things still do, being libuv requests and not handles, until they end: the host name's resolution
 * (getaddrinfo) and the TCP connect in progress. apns_conn_ref undoes it. Both are idempotent (no count), take
 * effect at once, may be called from any callback, and are no-ops on NULL. Default: referenced. */
APNS_EXTERN void apns_conn_unref(apns_conn *conn);
APNS_EXTERN void apns_conn_ref(apns_conn *conn);

typedef enum {
  APNS_CONN_CONNECTING = 0,
  APNS_CONN_READY = 1,
  /* GOAWAY received, or stream ids nearly spent (2^31 per connection): open streams may complete, no new ones;
   * once the last has ended the connection is lost (on_lost, APNS_ECLOSED). */
  APNS_CONN_DRAINING = 2,
  APNS_CONN_LOST = 3,
  APNS_CONN_CLOSING = 4
} apns_conn_state;

/* Filled by apns_conn_get_stats, which writes no more than the size it is given: a program built against an
 * older header, with a smaller struct, gets the fields it knows. Fields are only ever appended. */
typedef struct apns_conn_stats {
  apns_conn_state state;
  uint32_t in_flight;   /* open streams */
  uint32_t max_streams; /* the server's current limit */
  uint64_t requests_sent;
  uint64_t requests_completed; /* ended with a response */
  uint64_t bytes_in;           /* TLS bytes read from the socket */
  uint64_t bytes_out;          /* TLS bytes written */
  uint64_t writes;             /* flushes handed to the socket (coalescing: far fewer than requests) */
} apns_conn_stats;

/* Writes the first min(size, sizeof(apns_conn_stats)) bytes of the stats to out: pass sizeof *out. */
APNS_EXTERN void apns_conn_get_stats(const apns_conn *conn, apns_conn_stats *out, size_t size);
APNS_EXTERN apns_conn_state apns_conn_get_state(const apns_conn *conn);
/* Non-zero when apns_conn_post would not return APNS_EBLOCKED or APNS_ECLOSED now. */
APNS_EXTERN int apns_conn_writable(const apns_conn *conn);
APNS_EXTERN void *apns_conn_data(const apns_conn *conn);
APNS_EXTERN void apns_conn_set_data(apns_conn *conn, void *data);
APNS_EXTERN uv_loop_t *apns_conn_loop(const apns_conn *conn);
/* The last error's message (TLS detail, GOAWAY reason, ...); "" when none. Valid until the next call. */
APNS_EXTERN const char *apns_conn_last_error(const apns_conn *conn);

#ifdef __cplusplus
}
#endif
#endif /* APNS_CONN_H */
