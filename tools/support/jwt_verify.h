/* Test and mock support: the APNs provider-token verifier, for apns-mock and the tests. Not part of libapns.so.
 *
 * Checks a token made as jwt.h describes: compact JWS, ES256 over the P-256 key registered under the header's kid.
 * A verifier belongs to one thread at a time. */
#ifndef APNS_SUPPORT_JWT_VERIFY_H
#define APNS_SUPPORT_JWT_VERIFY_H

#include "jwt.h"

/* The longest token the verifier looks at; ours are about 200 bytes. */
#define APNS__JWT_MAX_LEN 4096

typedef struct apns__jwt_verifier apns__jwt_verifier;

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
 * bytes at pem. Only the public point is kept. Returns 0, APNS_EINVAL (bad or duplicate key_id, no source),
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
