/* libapns internal: what differs between mbedTLS 2.28 (Debian 12) and 3.6 (Debian 13, Fedora, Alpine, Homebrew), in
 * one place. Layer 1: includes mbedTLS's crypto headers only (pk, version, PSA), never its TLS ones.
 *
 * 3.x made struct fields private (MBEDTLS_PRIVATE), added an RNG argument to key parsing and pair checks (blinding
 * of the public-key computation), a signature buffer size to mbedtls_pk_sign, and needs psa_crypto_init() before a
 * TLS 1.3 handshake or any PSA-backed operation. Each wrapper below takes the 3.x arguments and drops what 2.28
 * does not want. */
#ifndef APNS_LIB_MBEDTLS_COMPAT_H
#define APNS_LIB_MBEDTLS_COMPAT_H

#include <mbedtls/pk.h>
#include <mbedtls/version.h>
#include <stddef.h>

#if MBEDTLS_VERSION_NUMBER >= 0x03000000
#define APNS__MBEDTLS3 1
#include <psa/crypto.h>
#define APNS__MBED_PRIV(f) MBEDTLS_PRIVATE(f)
#else
#define APNS__MBEDTLS3 0
#define APNS__MBED_PRIV(f) f
#endif

/* A field of an EC key pair (grp, d, Q). */
#define APNS__EC(kp, field) ((kp)->APNS__MBED_PRIV(field))

typedef int (*apns__mbed_rng)(void *, unsigned char *, size_t);

static inline int apns__mbed_pk_parse_key(mbedtls_pk_context *pk, const unsigned char *key, size_t keylen,
                                          const unsigned char *pwd, size_t pwdlen, apns__mbed_rng f_rng,
                                          void *p_rng) {
#if APNS__MBEDTLS3
  return mbedtls_pk_parse_key(pk, key, keylen, pwd, pwdlen, f_rng, p_rng);
#else
  (void)f_rng;
  (void)p_rng;
  return mbedtls_pk_parse_key(pk, key, keylen, pwd, pwdlen);
#endif
}

static inline int apns__mbed_pk_parse_keyfile(mbedtls_pk_context *pk, const char *path, const char *pwd,
                                              apns__mbed_rng f_rng, void *p_rng) {
#if APNS__MBEDTLS3
  return mbedtls_pk_parse_keyfile(pk, path, pwd, f_rng, p_rng);
#else
  (void)f_rng;
  (void)p_rng;
  return mbedtls_pk_parse_keyfile(pk, path, pwd);
#endif
}

static inline int apns__mbed_pk_check_pair(const mbedtls_pk_context *pub, const mbedtls_pk_context *prv,
                                           apns__mbed_rng f_rng, void *p_rng) {
#if APNS__MBEDTLS3
  return mbedtls_pk_check_pair(pub, prv, f_rng, p_rng);
#else
  (void)f_rng;
  (void)p_rng;
  return mbedtls_pk_check_pair(pub, prv);
#endif
}

static inline int apns__mbed_pk_sign(mbedtls_pk_context *pk, mbedtls_md_type_t md, const unsigned char *hash,
                                     size_t hash_len, unsigned char *sig, size_t sig_size, size_t *sig_len,
                                     apns__mbed_rng f_rng, void *p_rng) {
#if APNS__MBEDTLS3
  return mbedtls_pk_sign(pk, md, hash, hash_len, sig, sig_size, sig_len, f_rng, p_rng);
#else
  (void)sig_size; /* 2.28 writes at most MBEDTLS_PK_SIGNATURE_MAX_SIZE */
  return mbedtls_pk_sign(pk, md, hash, hash_len, sig, sig_len, f_rng, p_rng);
#endif
}

/* psa_crypto_init() where mbedTLS has PSA (3.x): a TLS 1.3 handshake fails without it. Calling it again once it
 * succeeded returns at once; 3.6 built with MBEDTLS_THREADING_C (as Debian builds it) makes it thread-safe.
 * Returns 0 or the PSA status (negative). */
static inline int apns__mbed_crypto_init(void) {
#if APNS__MBEDTLS3 && defined(MBEDTLS_PSA_CRYPTO_C)
  psa_status_t st = psa_crypto_init();
  return st == PSA_SUCCESS ? 0 : (int)st;
#else
  return 0;
#endif
}

#endif
