/* The APNs provider-token verifier of apns-mock: checks an ES256 JWT as Apple does. Test and mock support, outside
 * libapns.so: no client verifies tokens. Keys are loaded with the library's own loader (apns__jwt_key_load), so
 * the mock takes exactly the keys the signer takes.
 *
 * It parses with jansson, because it must take whatever a client sends (extra fields, any key order). */
#include "jwt_verify.h"
#include "secrets.h"

#include "alloc.h"
#include "base64.h"
#include "errbuf.h"
#include "mbedtls_compat.h"

#include <jansson.h>
#include <string.h>

#include <mbedtls/bignum.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/ecp.h>
#include <mbedtls/error.h>
#include <mbedtls/md.h>
#include <mbedtls/pk.h>
#include <mbedtls/version.h>

#define APNS__JWT_SIG_LEN 64

typedef struct apns__jwt_key {
  char kid[APNS__JWT_ID_LEN + 1];
  mbedtls_ecp_group grp;
  mbedtls_ecp_point Q;
} apns__jwt_key;

struct apns__jwt_verifier {
  apns__jwt_key **keys; /* pointers, so that growing the array never moves an mbedTLS context */
  size_t count, cap;
};

int apns__jwt_verifier_new(apns__jwt_verifier **out) {
  if (out == NULL) return APNS_EINVAL;
  *out = apns__calloc(1, sizeof **out);
  return *out != NULL ? 0 : APNS_ENOMEM;
}

static void apns__jwt_key_free(apns__jwt_key *k) {
  if (k == NULL) return;
  mbedtls_ecp_point_free(&k->Q);
  mbedtls_ecp_group_free(&k->grp);
  apns__free(k);
}

void apns__jwt_verifier_free(apns__jwt_verifier *v) {
  if (v == NULL) return;
  for (size_t i = 0; i < v->count; i++) apns__jwt_key_free(v->keys[i]);
  apns__free(v->keys);
  apns__free(v);
}

static const apns__jwt_key *apns__jwt_find(const apns__jwt_verifier *v, const char *kid) {
  for (size_t i = 0; i < v->count; i++)
    if (strcmp(v->keys[i]->kid, kid) == 0) return v->keys[i];
  return NULL;
}

int apns__jwt_verifier_add(apns__jwt_verifier *v, const char *key_id, const char *path, const char *pem,
                           size_t pem_len, char *errbuf, size_t errlen) {
  apns__jwt_key *k = NULL;
  mbedtls_pk_context pk;
  int err, ret;

  if (errbuf != NULL && errlen > 0) errbuf[0] = '\0';
  if (v == NULL) return APNS_EINVAL;
  if (!apns__jwt_id_valid(key_id)) {
    apns__errbuf(errbuf, errlen, "key id must be exactly %d ASCII letters or digits", APNS__JWT_ID_LEN);
    return APNS_EINVAL;
  }
  if (apns__jwt_find(v, key_id) != NULL) {
    apns__errbuf(errbuf, errlen, "key id %s is already registered", key_id);
    return APNS_EINVAL;
  }
  mbedtls_pk_init(&pk);
  if ((err = apns__jwt_key_load(&pk, path, pem, pem_len, 1, errbuf, errlen)) != 0) goto out;

  if (v->count == v->cap) {
    size_t cap = v->cap ? v->cap * 2 : 4;
    apns__jwt_key **keys = apns__realloc(v->keys, cap * sizeof *keys);
    if (keys == NULL) {
      err = APNS_ENOMEM;
      goto out;
    }
    v->keys = keys;
    v->cap = cap;
  }
  if ((k = apns__calloc(1, sizeof *k)) == NULL) {
    err = APNS_ENOMEM;
    goto out;
  }
  memcpy(k->kid, key_id, APNS__JWT_ID_LEN + 1);
  mbedtls_ecp_group_init(&k->grp);
  mbedtls_ecp_point_init(&k->Q);
  /* Only the public point is kept: a verifier loaded from a .p8 holds no private scalar. */
  const mbedtls_ecp_keypair *kp = mbedtls_pk_ec(pk);
  if (mbedtls_ecp_group_load(&k->grp, MBEDTLS_ECP_DP_SECP256R1) != 0 ||
      mbedtls_ecp_copy(&k->Q, &APNS__EC(kp, Q)) != 0) {
    err = APNS_ENOMEM;
    goto out;
  }
  if ((ret = mbedtls_ecp_check_pubkey(&k->grp, &k->Q)) != 0) {
    char words[160];
    mbedtls_strerror(ret, words, sizeof words);
    apns__errbuf(errbuf, errlen, "cannot use the public key in %s%s%s: %s (mbedTLS -0x%04X)",
                 path ? "key file '" : "key PEM text", path ? path : "", path ? "'" : "", words, (unsigned)-ret);
    err = APNS_EBADKEY;
    goto out;
  }
  v->keys[v->count++] = k;
  k = NULL;
  err = 0;

out:
  apns__jwt_key_free(k);
  mbedtls_pk_free(&pk);
  return err;
}

/* Whether a failed json_loadb ran out of memory. jansson 2.14 reports a failed allocation as a syntax error, or
 * leaves the error unset (pinned in test_jwt.c), so when its code does not say so we ask its allocator for a little
 * memory: if that fails too, the parse failure was ours to report as APNS_ENOMEM, not the client's bad token. */
static int apns__jwt_json_oom(const json_error_t *jerr) {
  json_malloc_t m;
  json_free_t f;
  if (json_error_code(jerr) == json_error_out_of_memory) return 1;
  json_get_alloc_funcs(&m, &f);
  void *probe = m(64);
  if (probe == NULL) return 1;
  f(probe);
  return 0;
}

/* Parses len bytes of JSON that must be an object. NULL with *err = APNS_ENOMEM or APNS__JWT_MALFORMED. */
static json_t *apns__jwt_json(const uint8_t *buf, size_t len, int *err) {
  json_error_t jerr;
  /* jansson leaves jerr untouched when its very first allocation fails. */
  memset(&jerr, 0, sizeof jerr);
  json_t *j = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, &jerr);
  if (j == NULL) {
    *err = apns__jwt_json_oom(&jerr) ? APNS_ENOMEM : APNS__JWT_MALFORMED;
    return NULL;
  }
  if (!json_is_object(j)) {
    json_decref(j);
    *err = APNS__JWT_MALFORMED;
    return NULL;
  }
  return j;
}

/* Copies the string member key of obj into dst (cap bytes). 0, or -1 when missing, not a string, or too long. */
static int apns__jwt_copy_string(const json_t *obj, const char *key, char *dst, size_t cap) {
  const json_t *j = json_object_get(obj, key);
  if (!json_is_string(j) || json_string_length(j) >= cap) return -1;
  memcpy(dst, json_string_value(j), json_string_length(j) + 1);
  return 0;
}

int apns__jwt_verify(const apns__jwt_verifier *v, const char *token, size_t len, apns__jwt_claims *claims) {
  /* Parts are decoded into the stack: the token length is capped, so they are too. */
  uint8_t part[APNS__JWT_MAX_LEN / 4 * 3 + 3], hash[32];
  apns__jwt_claims local;
  size_t plen;
  json_t *j = NULL;
  int err = 0, ret;

  if (claims == NULL) claims = &local;
  memset(claims, 0, sizeof *claims);
  if (v == NULL || token == NULL || len == 0 || len > APNS__JWT_MAX_LEN) return APNS__JWT_MALFORMED;
  const char *dot1 = memchr(token, '.', len);
  if (dot1 == NULL) return APNS__JWT_MALFORMED;
  const char *claims_b64 = dot1 + 1;
  const char *dot2 = memchr(claims_b64, '.', (size_t)(token + len - claims_b64));
  if (dot2 == NULL) return APNS__JWT_MALFORMED;
  const char *sig_b64 = dot2 + 1;
  size_t header_n = (size_t)(dot1 - token), claims_n = (size_t)(dot2 - claims_b64),
         sig_n = (size_t)(token + len - sig_b64);
  if (header_n == 0 || claims_n == 0 || sig_n == 0) return APNS__JWT_MALFORMED;

  /* Header: alg and kid decide which key checks the signature. */
  if (apns__base64url_decode(part, sizeof part, &plen, token, header_n) != 0) return APNS__JWT_MALFORMED;
  if ((j = apns__jwt_json(part, plen, &err)) == NULL) return err;
  /* kid is taken first so that the caller can log it whatever else is wrong. */
  int kid_ok = apns__jwt_copy_string(j, "kid", claims->kid, sizeof claims->kid) == 0;
  const json_t *alg = json_object_get(j, "alg");
  if (!json_is_string(alg)) {
    err = APNS__JWT_MALFORMED;
    goto out;
  }
  if (strcmp(json_string_value(alg), "ES256") != 0 || json_string_length(alg) != 5) {
    err = APNS__JWT_BAD_ALG;
    goto out;
  }
  if (!kid_ok) {
    err = APNS__JWT_MALFORMED;
    goto out;
  }
  json_decref(j);
  j = NULL;
  const apns__jwt_key *key = apns__jwt_find(v, claims->kid);
  if (key == NULL) return APNS__JWT_UNKNOWN_KID;

  /* Signature over the ASCII of header "." claims, before any claim is believed. */
  if (apns__base64url_decode(part, sizeof part, &plen, sig_b64, sig_n) != 0) return APNS__JWT_MALFORMED;
  if (plen != APNS__JWT_SIG_LEN) return APNS__JWT_BAD_SIGNATURE;
  if (mbedtls_md(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), (const unsigned char *)token, (size_t)(dot2 - token),
                 hash) != 0)
    return APNS__JWT_BAD_SIGNATURE;
  mbedtls_mpi r, s;
  mbedtls_mpi_init(&r);
  mbedtls_mpi_init(&s);
  ret = mbedtls_mpi_read_binary(&r, part, 32);
  if (ret == 0) ret = mbedtls_mpi_read_binary(&s, part + 32, 32);
  /* mbedtls_ecdsa_verify takes a non-const group in 2.28 but does not change it. */
  if (ret == 0) ret = mbedtls_ecdsa_verify((mbedtls_ecp_group *)&key->grp, hash, sizeof hash, &key->Q, &r, &s);
  mbedtls_mpi_free(&r);
  mbedtls_mpi_free(&s);
  if (ret == MBEDTLS_ERR_MPI_ALLOC_FAILED || ret == MBEDTLS_ERR_ECP_ALLOC_FAILED) return APNS_ENOMEM;
  if (ret != 0) return APNS__JWT_BAD_SIGNATURE;
  /* A token the key signed: a credential, which the test runner checks no output shows (secrets.h). */
  apns__secret_record("jwt-signature", sig_b64, sig_n);

  /* Claims: iss and iat; whether they are acceptable is the caller's call. */
  if (apns__base64url_decode(part, sizeof part, &plen, claims_b64, claims_n) != 0) return APNS__JWT_MALFORMED;
  if ((j = apns__jwt_json(part, plen, &err)) == NULL) return err;
  const json_t *iat = json_object_get(j, "iat");
  if (apns__jwt_copy_string(j, "iss", claims->iss, sizeof claims->iss) != 0 || !json_is_integer(iat) ||
      json_integer_value(iat) < 0) {
    err = APNS__JWT_MALFORMED;
    goto out;
  }
  claims->iat = (int64_t)json_integer_value(iat);
  err = APNS__JWT_VALID;

out:
  json_decref(j);
  return err;
}

const char *apns__jwt_status_name(int status) {
  switch (status) {
  case APNS__JWT_VALID:
    return "valid";
  case APNS__JWT_MALFORMED:
    return "malformed";
  case APNS__JWT_BAD_ALG:
    return "bad alg";
  case APNS__JWT_UNKNOWN_KID:
    return "unknown kid";
  case APNS__JWT_BAD_SIGNATURE:
    return "bad signature";
  default:
    return "?";
  }
}

apns_reason apns__jwt_status_reason(int status) {
  return status == APNS__JWT_VALID ? APNS_REASON_NONE : APNS_REASON_InvalidProviderToken;
}
