/* APNs provider tokens: ES256 JWT signing and verification over mbedTLS. Layer 1: no I/O except reading the key
 * file at setup.
 *
 * The JSON is written by hand rather than by jansson: the ids are checked to be letters and digits, so nothing
 * needs escaping, and a fixed key order makes tokens reproducible and testable byte for byte. The verifier parses
 * with jansson, because it must take whatever a client sends (extra fields, any key order). */
#include "jwt.h"

#include "alloc.h"
#include "base64.h"
#include "errbuf.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <mbedtls/bignum.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/ecp.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/md.h>
#include <mbedtls/pk.h>
#include <mbedtls/version.h>

/* mbedTLS 3 made the key pair's fields private; the accessors it added instead do not exist in 2.28. */
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
#define APNS__EC(kp, field) ((kp)->MBEDTLS_PRIVATE(field))
#else
#define APNS__EC(kp, field) ((kp)->field)
#endif

#define APNS__JWT_SIG_LEN 64
/* A .p8 is about 250 bytes; anything this large is not a key, and we will not read it whole. */
#define APNS__JWT_MAX_KEY_FILE (64 * 1024)

struct apns__jwt_signer {
  mbedtls_pk_context pk;
  mbedtls_entropy_context entropy;
  mbedtls_ctr_drbg_context drbg; /* blinding only: the signature itself is RFC 6979 deterministic */
  char key_id[APNS__JWT_ID_LEN + 1];
  char team_id[APNS__JWT_ID_LEN + 1];
  char header[64]; /* base64url of the header JSON, the same for every token */
  size_t header_len;
};

typedef struct apns__jwt_key {
  char kid[APNS__JWT_ID_LEN + 1];
  mbedtls_ecp_group grp;
  mbedtls_ecp_point Q;
} apns__jwt_key;

struct apns__jwt_verifier {
  apns__jwt_key **keys; /* pointers, so that growing the array never moves an mbedTLS context */
  size_t count, cap;
};

int apns__jwt_id_valid(const char *s) {
  if (s == NULL) return 0;
  for (size_t i = 0; i < APNS__JWT_ID_LEN; i++) {
    char c = s[i];
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) return 0;
  }
  return s[APNS__JWT_ID_LEN] == '\0';
}

/* ---- loading keys ---- */

/* The key text in a NUL-terminated buffer of our own (zeroed by the caller before it frees it): read from path, or
 * copied from pem. A PEM must be handed to mbedTLS with its NUL, which the caller's text may lack. */
static int apns__jwt_key_text(const char *path, const char *pem, size_t pem_len, char **buf, size_t *len,
                              const char *what, char *errbuf, size_t errlen) {
  *buf = NULL;
  *len = 0;
  if (path == NULL) {
    if (pem == NULL) {
      apns__errbuf(errbuf, errlen, "no %s given: pass a file name or PEM text", what);
      return APNS_EINVAL;
    }
    while (pem_len > 0 && pem[pem_len - 1] == '\0') pem_len--;
    if (pem_len == 0) {
      apns__errbuf(errbuf, errlen, "%s PEM text is empty", what);
      return APNS_EBADKEY;
    }
    if ((*buf = apns__strndup(pem, pem_len)) == NULL) return APNS_ENOMEM;
    *len = pem_len;
    return 0;
  }

  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    apns__errbuf(errbuf, errlen, "cannot read %s file '%s': %s", what, path, strerror(errno));
    return APNS_EBADKEY;
  }
  int err = APNS_EBADKEY;
  struct stat st;
  if (fstat(fileno(f), &st) != 0) {
    apns__errbuf(errbuf, errlen, "cannot read %s file '%s': %s", what, path, strerror(errno));
    goto out;
  }
  if (!S_ISREG(st.st_mode)) {
    apns__errbuf(errbuf, errlen, "cannot read %s file '%s': not a regular file", what, path);
    goto out;
  }
  if (st.st_size == 0 || st.st_size > APNS__JWT_MAX_KEY_FILE) {
    apns__errbuf(errbuf, errlen, "%s file '%s' is %s (%jd bytes)", what, path, st.st_size ? "too large" : "empty",
                 (intmax_t)st.st_size);
    goto out;
  }
  size_t size = (size_t)st.st_size;
  if ((*buf = apns__malloc(size + 1)) == NULL) {
    err = APNS_ENOMEM;
    goto out;
  }
  if (fread(*buf, 1, size, f) != size) {
    apns__errbuf(errbuf, errlen, "cannot read %s file '%s': short read", what, path);
    apns__zero(*buf, size + 1);
    apns__free(*buf);
    *buf = NULL;
    goto out;
  }
  (*buf)[size] = '\0';
  *len = size;
  err = 0;
out:
  fclose(f);
  return err;
}

/* How mbedTLS must be told the length: PEM with its NUL counted, DER as it is. */
static size_t apns__jwt_mbed_len(const char *buf, size_t len) {
  return memmem(buf, len, "-----BEGIN", 10) != NULL ? len + 1 : len;
}

static void apns__jwt_source(char *dst, size_t n, const char *path) {
  if (path != NULL)
    snprintf(dst, n, "key file '%s'", path);
  else
    snprintf(dst, n, "key PEM text");
}

static int apns__jwt_parse_error(int ret, const char *src, const char *what, char *errbuf, size_t errlen) {
  char words[160];
  if (ret == MBEDTLS_ERR_PK_ALLOC_FAILED) return APNS_ENOMEM;
  mbedtls_strerror(ret, words, sizeof words);
  apns__errbuf(errbuf, errlen, "cannot parse %s in %s: %s (mbedTLS -0x%04X)", what, src, words, (unsigned)-ret);
  return APNS_EBADKEY;
}

/* APNs tokens are ES256: the key must be EC on P-256. */
static int apns__jwt_check_p256(const mbedtls_pk_context *pk, const char *src, char *errbuf, size_t errlen) {
  if (mbedtls_pk_get_type(pk) != MBEDTLS_PK_ECKEY) {
    apns__errbuf(errbuf, errlen, "%s holds an %s key; APNs tokens (ES256) need an EC key on P-256 (secp256r1)", src,
                 mbedtls_pk_get_name(pk));
    return APNS_EBADKEY;
  }
  mbedtls_ecp_group_id id = APNS__EC(mbedtls_pk_ec(*pk), grp).id;
  if (id != MBEDTLS_ECP_DP_SECP256R1) {
    const mbedtls_ecp_curve_info *info = mbedtls_ecp_curve_info_from_grp_id(id);
    apns__errbuf(errbuf, errlen, "%s holds an EC key on %s; APNs tokens (ES256) need P-256 (secp256r1)", src,
                 info != NULL ? info->name : "an unknown curve");
    return APNS_EBADKEY;
  }
  return 0;
}

/* A private key's public point must be its scalar times G. mbedTLS takes the point a file carries on trust, and a key
 * whose halves disagree (a damaged .p8) would sign tokens that no holder of its public half accepts, or make a
 * verifier trust a point that belongs to no key: refused at setup instead. Costs one scalar multiplication. */
static int apns__jwt_check_pair(const mbedtls_pk_context *pk, const char *src, mbedtls_ctr_drbg_context *drbg,
                                char *errbuf, size_t errlen) {
  const mbedtls_ecp_keypair *kp = mbedtls_pk_ec(*pk);
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
  int ret = mbedtls_ecp_check_pub_priv(kp, kp, mbedtls_ctr_drbg_random, drbg);
#else
  (void)drbg;
  int ret = mbedtls_ecp_check_pub_priv(kp, kp);
#endif
  if (ret == MBEDTLS_ERR_MPI_ALLOC_FAILED || ret == MBEDTLS_ERR_ECP_ALLOC_FAILED) return APNS_ENOMEM;
  if (ret != 0) {
    apns__errbuf(errbuf, errlen, "%s is damaged: its public key is not the one of its private key", src);
    return APNS_EBADKEY;
  }
  return 0;
}

static int apns__jwt_parse_private(mbedtls_pk_context *pk, const char *buf, size_t len,
                                   mbedtls_ctr_drbg_context *drbg) {
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
  return mbedtls_pk_parse_key(pk, (const unsigned char *)buf, apns__jwt_mbed_len(buf, len), NULL, 0,
                              mbedtls_ctr_drbg_random, drbg);
#else
  (void)drbg;
  return mbedtls_pk_parse_key(pk, (const unsigned char *)buf, apns__jwt_mbed_len(buf, len), NULL, 0);
#endif
}

/* ---- signer ---- */

int apns__jwt_signer_new(apns__jwt_signer **out, const char *p8_path, const char *p8_pem, size_t pem_len,
                         const char *key_id, const char *team_id, char *errbuf, size_t errlen) {
  static const char pers[] = "libapns jwt blinding";
  char src[320], *text = NULL;
  size_t text_len = 0;
  int err, ret;

  if (errbuf != NULL && errlen > 0) errbuf[0] = '\0';
  if (out == NULL) return APNS_EINVAL;
  *out = NULL;
  if (!apns__jwt_id_valid(key_id)) {
    apns__errbuf(errbuf, errlen, "key id must be exactly %d ASCII letters or digits", APNS__JWT_ID_LEN);
    return APNS_EINVAL;
  }
  if (!apns__jwt_id_valid(team_id)) {
    apns__errbuf(errbuf, errlen, "team id must be exactly %d ASCII letters or digits", APNS__JWT_ID_LEN);
    return APNS_EINVAL;
  }

  apns__jwt_signer *s = apns__calloc(1, sizeof *s);
  if (s == NULL) return APNS_ENOMEM;
  mbedtls_pk_init(&s->pk);
  mbedtls_entropy_init(&s->entropy);
  mbedtls_ctr_drbg_init(&s->drbg);
  memcpy(s->key_id, key_id, APNS__JWT_ID_LEN + 1);
  memcpy(s->team_id, team_id, APNS__JWT_ID_LEN + 1);

  if ((err = apns__jwt_key_text(p8_path, p8_pem, pem_len, &text, &text_len, "key", errbuf, errlen)) != 0) goto fail;

  ret = mbedtls_ctr_drbg_seed(&s->drbg, mbedtls_entropy_func, &s->entropy, (const unsigned char *)pers,
                              sizeof pers - 1);
  if (ret != 0) {
    char words[160];
    mbedtls_strerror(ret, words, sizeof words);
    apns__errbuf(errbuf, errlen, "cannot seed the random generator: %s", words);
    err = APNS_ETLS;
    goto fail;
  }

  apns__jwt_source(src, sizeof src, p8_path);
  if ((ret = apns__jwt_parse_private(&s->pk, text, text_len, &s->drbg)) != 0) {
    err = apns__jwt_parse_error(ret, src, "private key", errbuf, errlen);
    goto fail;
  }
  if ((err = apns__jwt_check_p256(&s->pk, src, errbuf, errlen)) != 0) goto fail;
  if ((err = apns__jwt_check_pair(&s->pk, src, &s->drbg, errbuf, errlen)) != 0) goto fail;

  char header[64];
  int n = snprintf(header, sizeof header, "{\"alg\":\"ES256\",\"kid\":\"%s\"}", s->key_id);
  s->header_len = apns__base64url_encode(s->header, (const uint8_t *)header, (size_t)n);

  apns__zero(text, text_len + 1);
  apns__free(text);
  *out = s;
  return 0;

fail:
  if (text != NULL) {
    apns__zero(text, text_len + 1);
    apns__free(text);
  }
  apns__jwt_signer_free(s);
  return err;
}

void apns__jwt_signer_free(apns__jwt_signer *s) {
  if (s == NULL) return;
  mbedtls_pk_free(&s->pk); /* zeroizes the private scalar */
  mbedtls_ctr_drbg_free(&s->drbg);
  mbedtls_entropy_free(&s->entropy);
  apns__zero(s, sizeof *s);
  apns__free(s);
}

const char *apns__jwt_signer_key_id(const apns__jwt_signer *s) {
  return s->key_id;
}

const char *apns__jwt_signer_team_id(const apns__jwt_signer *s) {
  return s->team_id;
}

int apns__jwt_sign(apns__jwt_signer *s, int64_t iat, char **out, size_t *len) {
  char claims[64];
  uint8_t hash[32], sig[APNS__JWT_SIG_LEN];
  mbedtls_mpi r, sv;
  int err = APNS_ETLS;

  if (s == NULL || out == NULL || iat < 0) return APNS_EINVAL;
  *out = NULL;
  int n = snprintf(claims, sizeof claims, "{\"iss\":\"%s\",\"iat\":%" PRId64 "}", s->team_id, iat);
  size_t claims_len = apns__base64url_encoded_len((size_t)n);
  size_t signed_len = s->header_len + 1 + claims_len;
  size_t total = signed_len + 1 + apns__base64url_encoded_len(APNS__JWT_SIG_LEN);
  /* Allocate before signing: a failure then leaves nothing half done. */
  char *tok = apns__malloc(total + 1);
  if (tok == NULL) return APNS_ENOMEM;
  memcpy(tok, s->header, s->header_len);
  tok[s->header_len] = '.';
  apns__base64url_encode(tok + s->header_len + 1, (const uint8_t *)claims, (size_t)n);

  if (mbedtls_md(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), (const unsigned char *)tok, signed_len, hash) != 0) {
    apns__free(tok);
    return APNS_ETLS;
  }

  mbedtls_ecp_keypair *kp = mbedtls_pk_ec(s->pk);
  mbedtls_mpi_init(&r);
  mbedtls_mpi_init(&sv);
  int ret = mbedtls_ecdsa_sign_det_ext(&APNS__EC(kp, grp), &r, &sv, &APNS__EC(kp, d), hash, sizeof hash,
                                       MBEDTLS_MD_SHA256, mbedtls_ctr_drbg_random, &s->drbg);
  /* JWS wants R and S as fixed 32-byte big-endian halves, not DER: write_binary left-pads with zeros. */
  if (ret == 0) ret = mbedtls_mpi_write_binary(&r, sig, 32);
  if (ret == 0) ret = mbedtls_mpi_write_binary(&sv, sig + 32, 32);
  mbedtls_mpi_free(&r);
  mbedtls_mpi_free(&sv);
  if (ret != 0) {
    if (ret == MBEDTLS_ERR_MPI_ALLOC_FAILED) err = APNS_ENOMEM;
    apns__free(tok);
    return err;
  }
  tok[signed_len] = '.';
  apns__base64url_encode(tok + signed_len + 1, sig, sizeof sig);
  *out = tok;
  if (len != NULL) *len = total;
  return 0;
}

/* ---- verifier ---- */

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
  char src[320], *text = NULL;
  size_t text_len = 0;
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
  if ((err = apns__jwt_key_text(path, pem, pem_len, &text, &text_len, "key", errbuf, errlen)) != 0) goto out;
  apns__jwt_source(src, sizeof src, path);

#if MBEDTLS_VERSION_NUMBER >= 0x03000000
  /* mbedTLS 3 wants an RNG to blind the public-key computation when a private key lacks one. */
  mbedtls_entropy_context entropy;
  mbedtls_ctr_drbg_context drbg;
  mbedtls_entropy_init(&entropy);
  mbedtls_ctr_drbg_init(&drbg);
  ret = mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy, NULL, 0);
  if (ret == 0) ret = apns__jwt_parse_private(&pk, text, text_len, &drbg);
  if (ret == 0 && (err = apns__jwt_check_p256(&pk, src, errbuf, errlen)) == 0)
    err = apns__jwt_check_pair(&pk, src, &drbg, errbuf, errlen);
  mbedtls_ctr_drbg_free(&drbg);
  mbedtls_entropy_free(&entropy);
#else
  ret = apns__jwt_parse_private(&pk, text, text_len, NULL);
  if (ret == 0 && (err = apns__jwt_check_p256(&pk, src, errbuf, errlen)) == 0)
    err = apns__jwt_check_pair(&pk, src, NULL, errbuf, errlen);
#endif
  if (ret == 0 && err != 0) goto out; /* a private key, but not a usable one */
  if (ret != 0) {
    int ret_private = ret;
    mbedtls_pk_free(&pk);
    mbedtls_pk_init(&pk);
    ret = mbedtls_pk_parse_public_key(&pk, (const unsigned char *)text, apns__jwt_mbed_len(text, text_len));
    if (ret != 0) {
      /* Report the error of the kind of key the text claims to be. */
      int is_public = memmem(text, text_len, "PUBLIC KEY-----", 15) != NULL;
      err = apns__jwt_parse_error(is_public ? ret : ret_private, src, is_public ? "public key" : "private key",
                                  errbuf, errlen);
      goto out;
    }
  }
  if ((err = apns__jwt_check_p256(&pk, src, errbuf, errlen)) != 0) goto out;

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
    err = apns__jwt_parse_error(ret, src, "public key", errbuf, errlen);
    goto out;
  }
  v->keys[v->count++] = k;
  k = NULL;
  err = 0;

out:
  apns__jwt_key_free(k);
  mbedtls_pk_free(&pk);
  if (text != NULL) {
    apns__zero(text, text_len + 1);
    apns__free(text);
  }
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
