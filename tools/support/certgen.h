/* Test and mock support: throwaway certificates made at run time, for tests and for apns-mock --self-signed. Not
 * part of libapns.so (it would pull certificate writing into every user's mbedTLS).
 *
 * No private key is ever committed to the repository: tests and the mock make a fresh CA, a server certificate and
 * an Apple-like client certificate each time they need them. Keys are EC P-256 (fast to make). No uv.h;
 * the only I/O is apns__certgen_write_dir().
 *
 * What the certificates hold:
 * - CA: CN=libapns test CA, basicConstraints CA:TRUE, keyUsage keyCertSign|cRLSign, self-signed.
 * - server: CN=<server_host>, subjectAltName dNSName <server_host> and iPAddress <server_ip>; signed by the CA.
 *   mbedTLS 2.28 matches the host name against dNSName entries only, never against an iPAddress entry: a client
 *   that connects to 127.0.0.1 verifies with the host name "localhost".
 * - client: UID=<topic>, CN=Apple Push Services: <topic>, OU=<team>, O=libapns test, C=US, with Apple's push
 *   extensions 1.2.840.113635.100.6.3.1 (development) and .2 (production) present (value NULL); signed by the CA. */
#ifndef APNS_SUPPORT_CERTGEN_H
#define APNS_SUPPORT_CERTGEN_H

#include <stddef.h>

typedef struct apns__certgen_options {
  const char *topic;       /* client certificate's UID; NULL: "com.example.app" */
  const char *server_host; /* server CN and dNSName; NULL: "localhost" (another for mismatch tests) */
  const char *server_ip;   /* IPv4 or IPv6 literal for the iPAddress entry; NULL: "127.0.0.1"; "" for none */
  int days;                /* validity from an hour ago; 0: 3650 */
  int server_expired;      /* non-zero: the server certificate expired yesterday (for verification tests) */
  int other_ca;            /* non-zero: also make other_ca_cert, an unrelated CA (for "wrong CA" tests) */
  int token_key;           /* non-zero: also make token_key, a .p8 provider-token key (apns__certgen_p8_key) */
} apns__certgen_options;

/* NUL-terminated PEM text, each apns__malloc'd. Free with apns__certgen_free, which zeroes the keys. */
typedef struct apns__certgen_result {
  char *ca_cert;
  char *server_cert;
  char *server_key;
  char *client_cert;
  char *client_key;
  char *other_ca_cert; /* NULL unless opts->other_ca */
  char *token_key;     /* NULL unless opts->token_key: PKCS#8 PEM */
} apns__certgen_result;

/* Makes the certificates. opts may be NULL (all defaults). Returns 0, APNS_EINVAL (bad option: the message says
 * which), APNS_ENOMEM, or APNS_ETLS (mbedTLS failed; the message has its words). On failure *out is all NULL. */
int apns__certgen(const apns__certgen_options *opts, apns__certgen_result *out, char *errbuf, size_t errlen);
void apns__certgen_free(apns__certgen_result *res); /* NULL is fine; the struct itself is not freed */

/* Writes ca.pem, server.pem, server-key.pem, client.pem, client-key.pem (and other-ca.pem, token-key.p8 when
 * present) into dir,
 * which must exist; existing files are replaced. Keys get mode 0600, certificates 0644. Returns 0, APNS_EINVAL
 * (dir or res NULL, path too long), or -errno of the failing call (libuv's UV_E* value on Unix, so apns_strerror
 * names it); the message names the file. */
int apns__certgen_write_dir(const char *dir, const apns__certgen_result *res, char *errbuf, size_t errlen);

/* Encrypts an unencrypted PEM private key the way `openssl ec -aes128` does (legacy PEM "Proc-Type: 4,ENCRYPTED",
 * DEK-Info AES-128-CBC, key from MD5 over passphrase and salt), which mbedTLS can read back with the passphrase.
 * mbedTLS 2.28 writes no encrypted keys itself; this lets tests exercise key_passphrase without a key on disk.
 * *out is apns__malloc'd PEM (free with apns__zero + apns__free). Returns 0, APNS_EBADKEY, APNS_ENOMEM or
 * APNS_ETLS. */
int apns__certgen_encrypt_key(const char *key_pem, const char *passphrase, char **out, char *errbuf, size_t errlen);

/* A fresh EC P-256 private key as Apple ships its token keys (.p8): PKCS#8 PrivateKeyInfo PEM, "BEGIN PRIVATE KEY",
 * unencrypted, the curve named in the algorithm and the public key inside the ECPrivateKey. mbedTLS 2.28 writes
 * only SEC1 ("BEGIN EC PRIVATE KEY"), so the PKCS#8 wrapper is written here with asn1write. *pem is apns__malloc'd
 * and NUL-terminated (free with apns__zero + apns__free). Returns 0, APNS_EINVAL (pem NULL), APNS_ENOMEM or
 * APNS_ETLS (message in errbuf). */
int apns__certgen_p8_key(char **pem, char *errbuf, size_t errlen);

/* An mbedTLS f_rng (ctx unused): the one CTR-DRBG of the support library, seeded from the system's entropy on
 * first use (and again in a forked child). certgen draws from it; so do the mock's and the tests' mbedTLS calls
 * that want a generator (mbedTLS 3 parses and pair-checks private keys with one, for blinding). Returns 0 or
 * mbedTLS's error. Not thread-safe: one thread of a process uses it. */
int apns__certgen_rng(void *ctx, unsigned char *out, size_t len);

#endif
