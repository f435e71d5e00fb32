/* Fuzz target jwt: the .p8 / PEM key loader and the provider-token code (lib/jwt.h).
 *
 * Input: a mode byte, then
 *   mode 0: key text (PEM or DER; or '@' or '#' and splices of (offset, byte) pairs, applied to the fuzz key's
 *           PEM or its SEC1 DER made at run time, so mutations of a real key need no key in the corpus). The signer
 * and the verifier load it or refuse it with a documented code and a NUL-terminated message that quotes none of the
 * key's bytes; a key the signer took signs a token that a verifier holding the same key accepts as VALID, with the
 * kid, iss and iat it was made with. mode 1: a token, checked against a verifier holding a fixed test key: a status
 * or APNS_ENOMEM, never anything else; the claims strings stay NUL-terminated inside their buffers. mode 2: an iat
 * and a splice: a token signed with the fuzz key at that iat, some of its bytes replaced from the input, then
 * verified. Unchanged, it must be VALID; changed, it must not be VALID unless the change left the three parts meaning
 * the same (we only require a documented status). */
#define _GNU_SOURCE /* memmem */
#include "fuzz.h"
#include "keys.h"

#include "alloc.h"
#include "mbedtls_compat.h"
#include "jwt_verify.h"

#include <mbedtls/pk.h>
#include <string.h>

#define KID FUZZ_KID
#define TEAM FUZZ_TEAM

static int is_b64(uint8_t c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
}

/* A message must not carry key text: no run of 16 base64 characters of it may also be in the key. */
static void check_message(const char *msg, size_t cap, const uint8_t *key, size_t key_len) {
  size_t len = strnlen(msg, cap);
  FUZZ_CHECK(len < cap);
  for (size_t i = 0; i + 16 <= len; i++) {
    size_t j = 0;
    while (j < 16 && is_b64((uint8_t)msg[i + j])) j++;
    if (j < 16) continue;
    FUZZ_CHECK(memmem(key, key_len, msg + i, 16) == NULL);
  }
}

static void check_claims(const apns__jwt_claims *c) {
  FUZZ_CHECK(memchr(c->kid, '\0', sizeof c->kid) != NULL);
  FUZZ_CHECK(memchr(c->iss, '\0', sizeof c->iss) != NULL);
}

static void key_mode(const uint8_t *key, size_t len, int64_t iat) {
  apns__jwt_signer *s = NULL;
  apns__jwt_verifier *v = NULL;
  char err[256] = "", err2[256] = "";
  char *tok = NULL;
  size_t tok_len = 0;
  int rs = apns__jwt_signer_new(&s, NULL, (const char *)key, len, KID, TEAM, err, sizeof err);
  FUZZ_CHECK(rs == 0 || rs == APNS_EBADKEY || rs == APNS_ENOMEM || rs == APNS_ETLS);
  check_message(err, sizeof err, key, len);
  if (apns__jwt_verifier_new(&v) != 0) goto out;
  int rv = apns__jwt_verifier_add(v, KID, NULL, (const char *)key, len, err2, sizeof err2);
  FUZZ_CHECK(rv == 0 || rv == APNS_EBADKEY || rv == APNS_ENOMEM);
  check_message(err2, sizeof err2, key, len);
  if (rs != 0) goto out;
  FUZZ_CHECK(s != NULL);
  FUZZ_CHECK(strcmp(apns__jwt_signer_key_id(s), KID) == 0 && strcmp(apns__jwt_signer_team_id(s), TEAM) == 0);
  /* Whatever private key the signer takes, the verifier takes too. */
  FUZZ_CHECK(rv == 0 || rv == APNS_ENOMEM);
  if (apns__jwt_sign(s, iat, &tok, &tok_len) != 0) goto out;
  FUZZ_CHECK(strlen(tok) == tok_len);
  if (rv == 0) {
    apns__jwt_claims c;
    int st = apns__jwt_verify(v, tok, tok_len, &c);
    if (st != APNS_ENOMEM) {
      FUZZ_CHECK(st == APNS__JWT_VALID);
      FUZZ_CHECK(strcmp(c.kid, KID) == 0 && strcmp(c.iss, TEAM) == 0 && c.iat == iat);
    }
  }
out:
  apns__free(tok);
  apns__jwt_signer_free(s);
  apns__jwt_verifier_free(v);
}

static int verify_status_ok(int st) {
  return st == APNS_ENOMEM || (st >= APNS__JWT_VALID && st <= APNS__JWT_BAD_SIGNATURE);
}

static void token_mode(const uint8_t *tok, size_t len, int splice, int64_t iat, fuzz_in *rest) {
  apns__jwt_verifier *v = NULL;
  apns__jwt_signer *s = NULL;
  apns__jwt_claims c;
  const char *key = fuzz_key();
  char *made = NULL;
  size_t made_len = 0;
  if (key == NULL || apns__jwt_verifier_new(&v) != 0) return;
  if (apns__jwt_verifier_add(v, KID, NULL, key, strlen(key), NULL, 0) != 0) goto out;
  if (!splice) {
    int st = apns__jwt_verify(v, (const char *)tok, len, &c);
    FUZZ_CHECK(verify_status_ok(st));
    check_claims(&c);
    FUZZ_CHECK(apns__jwt_status_name(st) != NULL);
    goto out;
  }
  if (apns__jwt_signer_new(&s, NULL, key, strlen(key), KID, TEAM, NULL, 0) != 0) goto out;
  if (apns__jwt_sign(s, iat, &made, &made_len) != 0) goto out;
  int st = apns__jwt_verify(v, made, made_len, &c);
  FUZZ_CHECK(st == APNS__JWT_VALID || st == APNS_ENOMEM);
  if (st == APNS__JWT_VALID) FUZZ_CHECK(c.iat == iat);
  int changed = 0;
  while (rest->n >= 2) {
    size_t at = fuzz_u8(rest) % made_len;
    char b = (char)fuzz_u8(rest);
    changed |= made[at] != b;
    made[at] = b;
  }
  st = apns__jwt_verify(v, made, made_len, &c);
  FUZZ_CHECK(verify_status_ok(st));
  check_claims(&c);
  if (!changed) FUZZ_CHECK(st == APNS__JWT_VALID || st == APNS_ENOMEM);
out:
  apns__free(made);
  apns__jwt_signer_free(s);
  apns__jwt_verifier_free(v);
}

/* '@' and '#' inputs: the fuzz key as PEM or DER with the input's splices applied; into buf, returns the length. */
static size_t spliced_key(uint8_t kind, fuzz_in *in, uint8_t *buf, size_t cap) {
  const char *pem = fuzz_key();
  size_t len = 0;
  if (pem == NULL) return 0;
  if (kind == '@') {
    len = strlen(pem);
    if (len > cap) return 0;
    memcpy(buf, pem, len);
  } else {
    static uint8_t der[512];
    static size_t der_len;
    if (der_len == 0) {
      mbedtls_pk_context pk;
      mbedtls_pk_init(&pk);
      if (apns__mbed_pk_parse_key(&pk, (const unsigned char *)pem, strlen(pem) + 1, NULL, 0, NULL, NULL) == 0) {
        int n = mbedtls_pk_write_key_der(&pk, der, sizeof der);
        if (n > 0) {
          memmove(der, der + sizeof der - (size_t)n, (size_t)n); /* mbedTLS writes at the end of the buffer */
          der_len = (size_t)n;
        }
      }
      mbedtls_pk_free(&pk);
    }
    if (der_len == 0 || der_len > cap) return 0;
    memcpy(buf, der, der_len);
    len = der_len;
  }
  while (in->n >= 2) {
    size_t at = fuzz_u8(in) % len;
    buf[at] = fuzz_u8(in);
  }
  return len;
}

int apns_fuzz_jwt(const uint8_t *data, size_t size) {
  fuzz_in in = {data, size};
  uint8_t mode = fuzz_u8(&in);
  switch (mode % 3) {
  case 0: {
    int64_t iat = 1700000000 + (int64_t)(mode >> 2);
    if (in.n > 0 && (in.p[0] == '@' || in.p[0] == '#')) {
      uint8_t key[1024];
      uint8_t kind = fuzz_u8(&in);
      size_t len = spliced_key(kind, &in, key, sizeof key);
      if (len) key_mode(key, len, iat);
    } else {
      key_mode(in.p, in.n, iat);
    }
    break;
  }
  case 1:
    token_mode(in.p, in.n, 0, 0, &in);
    break;
  default: {
    int64_t iat = (int64_t)fuzz_u16(&in) << 16 | fuzz_u16(&in);
    token_mode(NULL, 0, 1, iat, &in);
    break;
  }
  }
  return 0;
}

APNS_FUZZ_MAIN(jwt)
