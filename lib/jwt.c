/* APNs provider tokens: ES256 JWT signing over mbedTLS, and the key loader the signer and the mock's verifier
 * (tools/support/jwt_verify.c, outside the library) share. Layer 1: no I/O except reading the key file at setup.
 *
 * The JSON is written by hand rather than by jansson: the ids are checked to be letters and digits, so nothing
 * needs escaping, and a fixed key order makes tokens reproducible and testable byte for byte. */
#include "jwt.h"

#include "alloc.h"
#include "base64.h"
#include "errbuf.h"
#include "mbedtls_compat.h"

#include <errno.h>
#include <inttypes.h>
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
static int apns__jwt_has(const char *buf, size_t len, const char *needle) {
  size_t n = strlen(needle);
  for (size_t i = 0; i + n <= len; i++)
    if (buf[i] == needle[0] && memcmp(buf + i, needle, n) == 0) return 1;
  return 0;
}

static int apns__jwt_key_text(const char *path, const char *pem, size_t pem_len, char **buf, size_t *len,
                              const char *what, char *errbuf, size_t errlen) {
  *buf = NULL;
  *len = 0;
  if (path == NULL) {
    if (pem == NULL) {
      apns__errbuf(errbuf, errlen, "no %s given: pass a file name or PEM text", what);
      return APNS_EINVAL;
    }
    /* A PEM's terminating NUL may be counted or not; DER is taken as it is: its last byte is 0 for one key in 256,
     * and trimming it made such a key unreadable. */
    if (apns__jwt_has(pem, pem_len, "-----BEGIN"))
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

/* Whether the len bytes at buf hold needle (memmem is a GNU and BSD extension, not POSIX). */

/* How mbedTLS must be told the length: PEM with its NUL counted, DER as it is. */
static size_t apns__jwt_mbed_len(const char *buf, size_t len) {
  return apns__jwt_has(buf, len, "-----BEGIN") ? len + 1 : len;
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

/* mbedTLS 3 wants an RNG to blind the public-key computation when a private key file lacks the public point, and
 * the pair check below; 2.28 takes none (f_rng NULL). */
static int apns__jwt_parse_private(mbedtls_pk_context *pk, const char *buf, size_t len, apns__mbed_rng f_rng,
                                   void *p_rng) {
  return apns__mbed_pk_parse_key(pk, (const unsigned char *)buf, apns__jwt_mbed_len(buf, len), NULL, 0, f_rng, p_rng);
}

/* A private key's public point must be its scalar times G. mbedTLS takes the point a file carries on trust, and a key
 * whose halves disagree (a damaged .p8) would sign tokens that no holder of its public half accepts, or make a
 * verifier trust a point that belongs to no key: refused at setup instead. Costs one scalar multiplication. */
static int apns__jwt_check_pair(const mbedtls_pk_context *pk, const char *src, apns__mbed_rng f_rng, void *p_rng,
                                char *errbuf, size_t errlen) {
  const mbedtls_ecp_keypair *kp = mbedtls_pk_ec(*pk);
#if APNS__MBEDTLS3
  int ret = mbedtls_ecp_check_pub_priv(kp, kp, f_rng, p_rng);
#else
  (void)f_rng;
  (void)p_rng;
  int ret = mbedtls_ecp_check_pub_priv(kp, kp);
#endif
  if (ret == MBEDTLS_ERR_MPI_ALLOC_FAILED || ret == MBEDTLS_ERR_ECP_ALLOC_FAILED) return APNS_ENOMEM;
  if (ret != 0) {
    apns__errbuf(errbuf, errlen, "%s is damaged: its public key is not the one of its private key", src);
    return APNS_EBADKEY;
  }
  return 0;
}

int apns__jwt_key_load(struct mbedtls_pk_context *pk, const char *path, const char *pem, size_t pem_len,
                       int public_ok, char *errbuf, size_t errlen) {
  char src[320], *text = NULL;
  size_t text_len = 0;
  int err, ret;

  if ((err = apns__jwt_key_text(path, pem, pem_len, &text, &text_len, "key", errbuf, errlen)) != 0) return err;
  apns__jwt_source(src, sizeof src, path);
#if APNS__MBEDTLS3
  /* One generator for the parse and the pair check, for the length of this load. */
  mbedtls_entropy_context entropy;
  mbedtls_ctr_drbg_context drbg;
  mbedtls_entropy_init(&entropy);
  mbedtls_ctr_drbg_init(&drbg);
  apns__mbed_rng f_rng = mbedtls_ctr_drbg_random;
  void *p_rng = &drbg;
  ret = mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy, NULL, 0);
  if (ret == 0) ret = apns__jwt_parse_private(pk, text, text_len, f_rng, p_rng);
#else
  apns__mbed_rng f_rng = NULL;
  void *p_rng = NULL;
  ret = apns__jwt_parse_private(pk, text, text_len, f_rng, p_rng);
#endif
  int is_private = ret == 0;
  if (!is_private) {
    int ret_private = ret;
    int is_public = public_ok && apns__jwt_has(text, text_len, "PUBLIC KEY-----");
    if (public_ok) {
      mbedtls_pk_free(pk);
      mbedtls_pk_init(pk);
      ret = mbedtls_pk_parse_public_key(pk, (const unsigned char *)text, apns__jwt_mbed_len(text, text_len));
    }
    if (ret != 0) {
      /* Report the error of the kind of key the text claims to be. */
      err = apns__jwt_parse_error(is_public ? ret : ret_private, src, is_public ? "public key" : "private key",
                                  errbuf, errlen);
      goto out;
    }
  }
  err = apns__jwt_check_p256(pk, src, errbuf, errlen);
  if (err == 0 && is_private) err = apns__jwt_check_pair(pk, src, f_rng, p_rng, errbuf, errlen);
out:
#if APNS__MBEDTLS3
  mbedtls_ctr_drbg_free(&drbg);
  mbedtls_entropy_free(&entropy);
#endif
  apns__zero(text, text_len + 1);
  apns__free(text);
  return err;
}

/* ---- signer ---- */

int apns__jwt_signer_new(apns__jwt_signer **out, const char *p8_path, const char *p8_pem, size_t pem_len,
                         const char *key_id, const char *team_id, char *errbuf, size_t errlen) {
  static const char pers[] = "libapns jwt blinding";
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

  ret = mbedtls_ctr_drbg_seed(&s->drbg, mbedtls_entropy_func, &s->entropy, (const unsigned char *)pers,
                              sizeof pers - 1);
  if (ret != 0) {
    char words[160];
    mbedtls_strerror(ret, words, sizeof words);
    apns__errbuf(errbuf, errlen, "cannot seed the random generator: %s", words);
    err = APNS_ETLS;
    goto fail;
  }
  if ((err = apns__jwt_key_load(&s->pk, p8_path, p8_pem, pem_len, 0, errbuf, errlen)) != 0) goto fail;

  char header[64];
  int n = snprintf(header, sizeof header, "{\"alg\":\"ES256\",\"kid\":\"%s\"}", s->key_id);
  s->header_len = apns__base64url_encode(s->header, (const uint8_t *)header, (size_t)n);

  *out = s;
  return 0;

fail:
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
