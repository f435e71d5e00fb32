/* libapns internal: APNs provider tokens (JWT, ES256) over mbedTLS. Layer 1: no I/O but reading a key at setup.
 *
 * The signer makes the token the client sends as "authorization: bearer <token>"; the verifier that checks one as
 * Apple does is apns-mock's (tools/support/jwt_verify.h), outside the library. Tokens are compact JWS:
 * base64url(header) "." base64url(claims) "." base64url(R || S), without padding. The JSON is written with a fixed
 * key order, byte for byte: header {"alg":"ES256","kid":"<key id>"}    claims {"iss":"<team id>","iat":<unix
 * seconds>} Signatures are deterministic ECDSA (RFC 6979, mbedtls_ecdsa_sign_det_ext): the same key, ids and iat give
 * the same token. mbedTLS 2.28 still wants an RNG to blind the scalar multiplication, so each signer owns a CTR-DRBG
 * seeded from the system's entropy at setup; it changes no output bit.
 *
 * A signer belongs to one thread at a time (the signer's DRBG has state). */
#ifndef APNS_LIB_JWT_H
#define APNS_LIB_JWT_H

#include <stddef.h>
#include <stdint.h>

#include <apns/common.h>

/* Key ids and team ids are exactly this many ASCII letters or digits. */
#define APNS__JWT_ID_LEN 10

typedef struct apns__jwt_signer apns__jwt_signer;

/* Non-zero when s holds exactly APNS__JWT_ID_LEN ASCII letters or digits (then NUL). NULL gives 0. */
int apns__jwt_id_valid(const char *s);

/* Creates a signer from a P-256 private key: read from the file p8_path when it is not NULL, else taken from the
 * pem_len bytes at p8_pem (PEM, or DER; a PEM need not be NUL-terminated). PKCS#8 ("BEGIN PRIVATE KEY", Apple's
 * .p8) and SEC1 ("BEGIN EC PRIVATE KEY") are both accepted; encrypted keys are not.
 * Returns 0, or:
 *   APNS_EINVAL   key_id or team_id is not 10 letters or digits, or no key source was given;
 *   APNS_EBADKEY  the file cannot be read, the key cannot be parsed, is not EC, not on P-256 (secp256r1), or is
 *                 damaged: the public key it carries is not the one of its private scalar;
 *   APNS_ENOMEM;
 *   APNS_ETLS     the DRBG could not be seeded.
 * On failure errbuf (when not NULL) gets a message that names the file and carries mbedTLS's words. Every copy of
 * the key text made here is zeroed before it is freed. */
int apns__jwt_signer_new(apns__jwt_signer **out, const char *p8_path, const char *p8_pem, size_t pem_len,
                         const char *key_id, const char *team_id, char *errbuf, size_t errlen);
/* Zeroes the key and frees the signer. NULL is fine. */
void apns__jwt_signer_free(apns__jwt_signer *s);
const char *apns__jwt_signer_key_id(const apns__jwt_signer *s);
const char *apns__jwt_signer_team_id(const apns__jwt_signer *s);

/* Signs a token issued at iat (unix seconds, from the caller's clock). *out gets an apns__malloc'd NUL-terminated
 * token of *len characters (len may be NULL), owned by the caller. Returns 0, APNS_EINVAL (iat < 0), APNS_ENOMEM,
 * or APNS_ETLS (mbedTLS failed to sign; not expected with a key that loaded). */
int apns__jwt_sign(apns__jwt_signer *s, int64_t iat, char **out, size_t *len);

/* Loads a P-256 key for ES256 into pk (mbedtls_pk_init'd by the caller, freed by it whatever the result): a
 * private key (PKCS#8 or SEC1, PEM or DER), or when public_ok also a public key (PEM "BEGIN PUBLIC KEY" or DER),
 * from the file path when it is not NULL, else from the pem_len bytes at pem. The signer and the mock's verifier
 * share it. Returns 0, APNS_EINVAL (no source), APNS_EBADKEY (with a message naming the source and carrying
 * mbedTLS's words) or APNS_ENOMEM. Every copy of the key text is zeroed before it is freed. */
struct mbedtls_pk_context;
int apns__jwt_key_load(struct mbedtls_pk_context *pk, const char *path, const char *pem, size_t pem_len,
                       int public_ok, char *errbuf, size_t errlen);

#endif
