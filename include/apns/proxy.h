/* libapns: reaching APNs through an egress proxy (HTTP CONNECT or SOCKS5).
 *
 * A proxy is a stage of the connection between TCP and TLS: the connection resolves and connects to the proxy,
 * asks it for a tunnel to the APNs host and port, and then runs TLS through that tunnel end to end with Apple.
 * SNI, certificate verification and the HTTP/2 authority are for the APNs host (or tls.verify_name), never for
 * the proxy: the proxy only ever sees the host name, the port and ciphertext. The connect timeout of the
 * connection covers the proxy stage too.
 *
 *   HTTP CONNECT   "CONNECT host:port HTTP/1.1" with Host and, when a user is set, Proxy-Authorization: Basic.
 *                  Any 2xx opens the tunnel. 407 (or 401, which tinyproxy sends for wrong credentials) ends the
 *                  attempt with APNS_EPROXYAUTH; any other status with
 *                  APNS_EPROXY; a reply that is not well-formed HTTP/1.x (bare LF, no status, more than 8 KiB of
 *                  status line and headers) with APNS_EPROXYPROTO.
 *   SOCKS5         RFC 1928, with no authentication or, when a user is set, RFC 1929 user/password. The APNs host
 *                  is sent as a domain name (address type 3), so DNS happens at the proxy (curl's socks5h); an IP
 *                  literal is sent as an address. A refused request ends with APNS_EPROXY, refused credentials or
 *                  no acceptable method with APNS_EPROXYAUTH, a reply that breaks the protocol with
 *                  APNS_EPROXYPROTO.
 * In every case apns_conn_last_error() (and the pool's and client's causes) names the proxy host:port and the
 * status or SOCKS reply. A proxy that cannot be reached is a connection failure with libuv's code
 * (UV_ECONNREFUSED, ...) and a message naming the proxy.
 *
 * Out of scope: HTTPS proxies (TLS to the proxy itself: "https://" URLs are refused), SOCKS4, and proxy
 * authentication schemes other than Basic (Digest, NTLM, Negotiate). Passwords travel in clear to the proxy, as
 * they do with curl over http:// and socks5:// proxies: use them on trusted networks only.
 *
 * Credentials are copied when a connection, pool or client is opened, never logged nor put in error messages, and
 * zeroed before their memory is freed.
 */
#ifndef APNS_PROXY_H
#define APNS_PROXY_H

#include <apns/common.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  APNS_PROXY_NONE = 0,  /* connect directly (the default) */
  APNS_PROXY_HTTP = 1,  /* HTTP CONNECT over plain TCP to the proxy */
  APNS_PROXY_SOCKS5 = 2 /* SOCKS5, the name resolved by the proxy */
} apns_proxy_type;

/* Where the proxy is, and how to authenticate to it. Pointed to by apns_conn_options, apns_pool_options and
 * apns_client_options as .proxy (NULL, or type NONE: no proxy). Everything is read and copied during the call
 * that opens: neither the struct nor its strings need outlive it. Initialize it with APNS_PROXY_OPTIONS_INIT or
 * apns_proxy_options_init() (size set, the rest zero: no proxy); apns_proxy_parse_url() and
 * apns_proxy_from_env() return one initialized. */
typedef struct apns_proxy_options {
  size_t size;          /* sizeof(apns_proxy_options), set by the initializers */
  apns_proxy_type type; /* default APNS_PROXY_NONE */
  const char *host;     /* the proxy's name or IP address; required unless type is NONE (resolved by libuv) */
  uint16_t port;        /* default 1080, as curl's */
  /* Credentials: Basic for HTTP CONNECT (the user may not contain ':'), RFC 1929 for SOCKS5 (each at most 255
   * bytes). Default NULL: no authentication. A NULL password with a user is the empty password. */
  const char *user;
  const char *password;
} apns_proxy_options;

#ifdef __cplusplus
#define APNS_PROXY_OPTIONS_INIT                                                                                      \
  { sizeof(apns_proxy_options) }
#else
#define APNS_PROXY_OPTIONS_INIT                                                                                      \
  { .size = sizeof(apns_proxy_options) }
#endif
/* Zeroes *o and sets o->size, as APNS_PROXY_OPTIONS_INIT does (for options in allocated memory). */
APNS_EXTERN void apns_proxy_options_init(apns_proxy_options *o);

#define APNS_PROXY_DEFAULT_PORT 1080

/* Parses a proxy URL as curl spells them: "http://[user[:password]@]host[:port][/]", "socks5://...",
 * "socks5h://..." (both SOCKS5 schemes resolve at the proxy: see above), and a bare "host[:port]" meaning http.
 * The user and password are percent-decoded ("p%40ss" is "p@ss"); an IPv6 host is written in brackets.
 * On success *out is a new apns_proxy_options owning its strings: free it with apns_proxy_options_free(). Returns
 * 0, APNS_EINVAL (with errbuf saying what is wrong, without the password: unknown or unsupported scheme such as
 * https:// or socks4://, empty host, bad port, bad percent-escape, a path or query) or APNS_ENOMEM. errbuf may be
 * NULL. */
APNS_EXTERN int apns_proxy_parse_url(const char *url, apns_proxy_options **out, char *errbuf, size_t errlen);

/* The proxy the environment names for an HTTPS connection to host, as curl reads it: the first set and non-empty
 * of https_proxy, HTTPS_PROXY, all_proxy, ALL_PROXY, parsed as apns_proxy_parse_url() does; unless no_proxy (or
 * NO_PROXY when no_proxy is unset) matches host: "*" matches every host; otherwise a comma-separated list of names
 * or IP addresses, each matching host itself or, for names, any host under it ("example.com" and ".example.com"
 * both match "api.example.com"), case-insensitively, spaces around entries ignored. (CIDR ranges and ports in
 * no_proxy are not understood: such an entry matches nothing.)
 * On success *out is a new apns_proxy_options (free it with apns_proxy_options_free()), or NULL when no proxy
 * applies. Returns 0, APNS_EINVAL (the variable's value is not a proxy URL: errbuf names the variable) or
 * APNS_ENOMEM. The library reads no environment variable unless this function is called. Not thread-safe against
 * concurrent setenv(), as getenv() is not. */
APNS_EXTERN int apns_proxy_from_env(const char *host, apns_proxy_options **out, char *errbuf, size_t errlen);

/* Frees what apns_proxy_parse_url() or apns_proxy_from_env() returned, zeroing the credentials first. NULL is
 * allowed. */
APNS_EXTERN void apns_proxy_options_free(apns_proxy_options *proxy);

/* The scheme's name, for messages: "http", "socks5", or "none". Never NULL. */
APNS_EXTERN const char *apns_proxy_type_name(apns_proxy_type type);

#ifdef __cplusplus
}
#endif
#endif /* APNS_PROXY_H */
