/* libapns internal: APNs provider tokens (JWT, ES256) over mbedTLS. Layer 1: no I/O but reading a key at setup.
 *
 * The signer makes the token the client sends as "authorization: bearer <token>"; the verifier checks one as Apple
 * does, for apns-mock. Tokens are compact JWS: base64url(header) "." base64url(claims) "." base64url(R || S),
 * without padding. The JSON is written with a fixed key order, byte for byte:
 *   header {"alg":"ES256","kid":"<key id>"}    claims {"iss":"<team id>","iat":<unix seconds>}
 * Signatures are deterministic ECDSA (RFC 6979, mbedtls_ecdsa_sign_det_ext): the same key, ids and iat give the same
 * token. mbedTLS 2.28 still wants an RNG to blind the scalar multiplication, so each signer owns a CTR-DRBG seeded
 * from the system's entropy at setup; it changes no output bit.
 *
 * A signer or verifier belongs to one thread at a time (the signer's DRBG has state). */
#ifndef APNS_LIB_JWT_H
#define APNS_LIB_JWT_H

#include <stddef.h>
#include <stdint.h>

#include <apns.h>

/* Key ids and team ids are exactly this many ASCII letters or digits. */
#define APNS__JWT_ID_LEN 10
/* The longest token the verifier looks at; ours are about 200 bytes. */
#define APNS__JWT_MAX_LEN 4096

typedef struct apns__jwt_signer apns__jwt_signer;
typedef struct apns__jwt_verifier apns__jwt_verifier;

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

/* ---- verification (apns-mock) ---- */

/* What apns__jwt_verify found. All rejections map to Apple's 403 InvalidProviderToken (apns__jwt_status_reason);
 * a missing token (MissingProviderToken) and an old iat (ExpiredProviderToken, older than one hour) are for the
 * caller to judge, as is whether iss is the team the key belongs to. */
typedef enum apns__jwt_status {
  APNS__JWT_VALID = 0,
  APNS__JWT_MALFORMED,     /* not three non-empty base64url parts, too long, header or claims not a JSON object,
                              a field missing or of the wrong type, iat negative */
  APNS__JWT_BAD_ALG,       /* header alg is not "ES256" */
  APNS__JWT_UNKNOWN_KID,   /* no key was added under the header's kid */
  APNS__JWT_BAD_SIGNATURE, /* the signature is not 64 bytes, or does not verify with the kid's key */
} apns__jwt_status;

/* What the token says. Filled as far as parsing got (kid once the header parsed, iss and iat once the claims did);
 * empty strings and 0 otherwise. Strings longer than the buffers make the token MALFORMED. */
typedef struct apns__jwt_claims {
  char kid[64];
  char iss[64];
  int64_t iat;
} apns__jwt_claims;

int apns__jwt_verifier_new(apns__jwt_verifier **out);
void apns__jwt_verifier_free(apns__jwt_verifier *v); /* NULL is fine */
/* Registers the P-256 public key for key_id, taken from a private key (PKCS#8 or SEC1, as the signer takes them)
 * or a public key (PEM "BEGIN PUBLIC KEY" or DER), from the file path when it is not NULL, else from the pem_len
 * bytes at pem. Only the public point is kept; a private key whose public point is not its own is refused
 * (APNS_EBADKEY), as the signer refuses it. Returns 0, APNS_EINVAL (bad or duplicate key_id, no source),
 * APNS_EBADKEY (as for the signer, with a message in errbuf) or APNS_ENOMEM. */
int apns__jwt_verifier_add(apns__jwt_verifier *v, const char *key_id, const char *path, const char *pem,
                           size_t pem_len, char *errbuf, size_t errlen);
/* Checks the len bytes of token (no "bearer " prefix). Returns an apns__jwt_status (>= 0) or APNS_ENOMEM; never
 * fails another way, whatever the bytes. claims may be NULL. */
int apns__jwt_verify(const apns__jwt_verifier *v, const char *token, size_t len, apns__jwt_claims *claims);
/* "valid", "malformed", "bad alg", "unknown kid", "bad signature"; "?" out of range. */
const char *apns__jwt_status_name(int status);
/* APNS_REASON_NONE for VALID, APNS_REASON_InvalidProviderToken for every rejection. */
apns_reason apns__jwt_status_reason(int status);

#endif
