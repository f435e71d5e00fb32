/* libapns internal: the proxy handshake (HTTP CONNECT, SOCKS5), sans-I/O. Layer 2: no socket, no libuv.
 *
 * The connection feeds it what the proxy sends and writes what it hands out, from TCP connected until the tunnel
 * is open; then TLS takes over the same socket. The handshake never consumes a byte past the proxy's reply, so
 * bytes that arrive in the same read as the reply (the server's first TLS records, when a proxy forwards early)
 * are handed back once, as the unused tail of that read. Every size is bounded: a proxy cannot make it buffer
 * more than APNS__PROXY_MAX_REPLY bytes. */
#ifndef APNS_LIB_PROXY_H
#define APNS_LIB_PROXY_H

#include <apns/proxy.h>
#include <stddef.h>
#include <stdint.h>

/* Status line and headers of an HTTP CONNECT reply, all 1xx interim replies included. */
#define APNS__PROXY_MAX_REPLY 8192

/* A validated copy of apns_proxy_options that owns its strings; the credentials are zeroed when it is freed. */
typedef struct apns__proxy_cfg {
  apns_proxy_type type; /* never NONE */
  char *host;
  uint16_t port;
  char *user;     /* NULL: no authentication */
  char *password; /* "" when user is set without one */
} apns__proxy_cfg;

/* *out is NULL (and 0 returned) when o is NULL or its type is NONE. APNS_EINVAL with errbuf saying why: no host,
 * unknown type, credentials too long or with a byte the scheme cannot carry. APNS_ENOMEM. */
int apns__proxy_cfg_new(apns__proxy_cfg **out, const apns_proxy_options *o, char *errbuf, size_t errlen);
void apns__proxy_cfg_free(apns__proxy_cfg *cfg);

typedef struct apns__proxy apns__proxy;

/* A handshake asking cfg's proxy for a tunnel to host:port. cfg is copied from (it may go after this returns).
 * The first bytes to send are ready at once. APNS_EINVAL when host is empty or over 255 bytes; APNS_ENOMEM. */
int apns__proxy_new(apns__proxy **out, const apns__proxy_cfg *cfg, const char *host, uint16_t port);
void apns__proxy_free(apns__proxy *p);

/* Hands out the bytes to send now, in a buffer the caller frees with apns__free after zeroing it (apns__zero: it
 * may hold credentials). *buf is NULL and *len 0 when there is nothing to send. Returns 0 or APNS_ENOMEM. */
int apns__proxy_take_output(apns__proxy *p, uint8_t **buf, size_t *len);

/* Consumes bytes from the proxy. Returns 0: more are needed (after taking any new output); 1: the tunnel is open,
 * data[0..*used) were the proxy's and data[*used..len) belong to TLS; or a negative code (APNS_EPROXY,
 * APNS_EPROXYAUTH, APNS_EPROXYPROTO, APNS_ENOMEM) with apns__proxy_error() saying what happened. *used is set in
 * every case. Once it has returned 1 or an error, it returns APNS_EBUSY and consumes nothing. */
int apns__proxy_feed(apns__proxy *p, const uint8_t *data, size_t len, size_t *used);

/* The proxy closed the connection before its reply was complete: returns APNS_EPROXY (or the error already
 * reported) and sets the message. */
int apns__proxy_eof(apns__proxy *p);

/* Non-zero once the tunnel is open. */
int apns__proxy_done(const apns__proxy *p);
/* What went wrong, naming the proxy host:port, the target and the status or SOCKS reply; "" while nothing did.
 * Never holds credentials. */
const char *apns__proxy_error(const apns__proxy *p);
/* The HTTP status of the final reply, or the SOCKS5 reply code (0 is success), or -1 before either arrived. */
int apns__proxy_status(const apns__proxy *p);

/* The message for a SOCKS5 reply code (RFC 1928 section 6): "connection refused" for 5, ... Never NULL. */
const char *apns__socks5_reply_string(int rep);

#endif
