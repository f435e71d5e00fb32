/* libapns internal: TLS without I/O, over mbedTLS. Layer 2: never includes uv.h.
 *
 * Ciphertext goes in with apns__tls_feed() and comes out with apns__tls_take_output(); plaintext goes in with
 * apns__tls_write() and comes out with apns__tls_read(). The same code serves the client (libapns) and the server
 * (apns-mock), so a test can run both ends in memory.
 *
 * A config holds what connections share (CA chain, own certificate and key, RNG); it is reference-counted so a
 * pool's connections can share one and the last to go frees it. Key material is zeroed when freed. */
#ifndef APNS_LIB_TLS_H
#define APNS_LIB_TLS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct apns__tls_config apns__tls_config;
typedef struct apns__tls apns__tls;

typedef struct apns__tls_options {
  int server; /* 0: client (default), 1: server */
  /* Trust anchors. Client: verify the server against these; NULL file and pem mean the system's trust (see
   * apns_tls_options.ca_file). Server: when set, client certificates are required and verified. */
  const char *ca_file;
  const char *ca_pem; /* PEM text, NUL-terminated; used when ca_file is NULL */
  /* Own certificate chain and private key (the client's for certificate auth; the server's always). */
  const char *cert_file;
  const char *cert_pem;
  const char *key_file;
  const char *key_pem;
  const char *key_passphrase; /* for an encrypted PEM key; NULL when not encrypted */
  /* Client only: skip verification of the server's chain and host name. For tests against self-made servers
   * only; nothing turns verification off without this field. Default 0. */
  int insecure_skip_verify;
  /* Tests only: the one ALPN protocol to offer (client) or accept (server) instead of "h2"; "" for none. NULL
   * (the default) means "h2". The handshake still ends in APNS_EALPN unless "h2" was agreed, so this only serves
   * to make a peer that does not speak HTTP/2. */
  const char *alpn;
} apns__tls_options;

/* The cipher suites a config offers (client) or accepts (server), best first, 0-terminated: ECDHE with AES-GCM or
 * ChaCha20-Poly1305 for TLS 1.2 and the TLS 1.3 suites, as HTTP/2 requires (RFC 9113 9.2.2). */
const int *apns__tls_config_ciphersuites(const apns__tls_config *cfg);
/* The name of the suite the handshake agreed on ("TLS-ECDHE-ECDSA-WITH-CHACHA20-POLY1305-SHA256"); NULL before the
 * handshake is done. */
const char *apns__tls_ciphersuite(const apns__tls *tls);

/* The CA bundle paths a client tries, in order, when neither the options nor SSL_CERT_FILE / SSL_CERT_DIR say
 * (NULL-terminated), and the first of a list that is a readable regular file (NULL when none is). */
const char *const *apns__tls_ca_bundle_paths(void);
const char *apns__tls_find_ca_bundle(const char *const *paths);

/* Creates a config. On failure returns APNS_EBADCERT, APNS_EBADKEY, APNS_ETLS, APNS_EINVAL or APNS_ENOMEM and
 * writes a message naming the file and mbedTLS's words into errbuf (when errbuf is not NULL). The refcount is 1. */
int apns__tls_config_new(apns__tls_config **out, const apns__tls_options *opts, char *errbuf, size_t errlen);
apns__tls_config *apns__tls_config_ref(apns__tls_config *cfg);
void apns__tls_config_unref(apns__tls_config *cfg); /* NULL is fine */

/* A connection. Client: hostname is sent as SNI and verified against the certificate (unless insecure); ALPN
 * offers "h2" only. Both sides: TLS 1.2 or newer, and only the cipher suites HTTP/2 allows (ephemeral ECDHE with
 * AES-GCM or ChaCha20-Poly1305; RFC 9113 9.2.2): a peer offering only CBC or static-RSA suites fails the handshake
 * (APNS_ETLS). hostname is required unless insecure (APNS_EINVAL): mbedTLS 2.28 would otherwise skip the
 * name check silently. mbedTLS 2.28 matches it against the certificate's dNSName entries (or CN when there are
 * none), never against iPAddress entries: to reach a server at 127.0.0.1, connect there and pass the name its
 * certificate holds ("localhost" for certgen's). Server: hostname is ignored; ALPN selects "h2". Takes a
 * reference on cfg. Returns 0, APNS_EINVAL, APNS_ENOMEM or APNS_ETLS. */
int apns__tls_new(apns__tls **out, apns__tls_config *cfg, const char *hostname);
void apns__tls_free(apns__tls *tls); /* NULL is fine */

/* Ciphertext from the peer. Copied; call the functions below to make progress. Returns 0 or APNS_ENOMEM. */
int apns__tls_feed(apns__tls *tls, const uint8_t *data, size_t len);
/* Advances the handshake: 0 when complete (and ALPN gave h2), 1 while it needs more input (check
 * apns__tls_take_output for bytes to send first), or APNS_ECERTVERIFY (message says why: which check failed),
 * APNS_EALPN (the peer did not agree on h2), APNS_ETLS (any other failure; message has mbedTLS's words).
 * A TLS 1.3 client (mbedTLS 3) is complete only once the server's first record is in: the server refuses a client
 * certificate after the client's Finished, so until then the handshake may still fail (APNS_ETLS). The first
 * plaintext byte read then is returned by the first apns__tls_read. A server must therefore send first, as an
 * HTTP/2 server does (SETTINGS). */
int apns__tls_handshake(apns__tls *tls);
int apns__tls_handshake_done(const apns__tls *tls);
/* Plaintext from the peer into buf: the number of bytes (> 0), 0 when nothing more is available now, APNS_ECLOSED
 * after the peer's close_notify, or APNS_ETLS. Call again while it returns cap: more may be waiting. Reading may
 * queue output too (an alert), so check apns__tls_take_output afterwards. Errors stick: every later call returns
 * the same one. APNS_EINVAL before the handshake is done. */
ssize_t apns__tls_read(apns__tls *tls, uint8_t *buf, size_t cap);
/* Encrypts all of len plaintext bytes into the outgoing ciphertext (several records if needed, up to 16 KiB of
 * plaintext each), appended to the one output buffer. 0, APNS_ENOMEM, APNS_ETLS, or APNS_EINVAL before the
 * handshake is done. */
int apns__tls_write(apns__tls *tls, const uint8_t *data, size_t len);
/* Hands over the ciphertext waiting to be sent: *buf is an apns__malloc'd block of *len bytes that the caller now
 * owns and frees with apns__free (no copy is made: it can go straight to uv_write); NULL and 0 when there is none.
 * The next output starts a new buffer. */
void apns__tls_take_output(apns__tls *tls, uint8_t **buf, size_t *len);
size_t apns__tls_output_size(const apns__tls *tls);
/* Queues a close_notify alert. */
int apns__tls_close_notify(apns__tls *tls);
/* The last error's message ("certificate verification failed: the certificate is not correctly signed by the
 * trusted CA", ...); "" when none. */
const char *apns__tls_error(const apns__tls *tls);
/* Server side: the client certificate's subject UID (Apple puts the topic there), or NULL. Static until free. */
const char *apns__tls_peer_uid(apns__tls *tls);

#endif
