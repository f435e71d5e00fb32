/* The fuzz targets in the normal suite: every committed seed (fuzz/corpus/NAME/) and every input a fuzzer once
 * broke something with (fuzz/regress/NAME/) replayed through the target's own entry point (fuzz/NAME.c, built
 * without libFuzzer), so their invariants are checked on every test run, under ASan+UBSan and valgrind too; plus
 * plain tests for the defects those inputs found, which fail without their fixes whatever the compiler. */
#define _GNU_SOURCE /* memmem */
#include "harness.h"

#include "../fuzz/fuzz.h"
#include "alloc.h"
#include "mbedtls_compat.h"
#include "certgen.h"
#include "h2.h"
#include "jwt_verify.h"
#include <apns.h>

#include <dirent.h>
#include <mbedtls/pk.h>
#include <sys/stat.h>

#ifndef APNS_FUZZ_DIR
#error "APNS_FUZZ_DIR (the source tree's fuzz/) must be defined by the build"
#endif

static uint8_t *read_all(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  uint8_t *buf;
  struct stat st;
  ASSERT_NOT_NULL(f);
  ASSERT_EQ(fstat(fileno(f), &st), 0);
  *len = (size_t)st.st_size;
  buf = malloc(*len + 1);
  ASSERT_NOT_NULL(buf);
  ASSERT_UEQ(fread(buf, 1, *len, f), *len);
  fclose(f);
  return buf;
}

/* Runs every file of fuzz/<sub>/<target>/ through fn; returns how many there were. */
static int replay_dir(const char *sub, const char *target, int (*fn)(const uint8_t *, size_t)) {
  char dir[1024], path[2048];
  int n = 0;
  snprintf(dir, sizeof dir, "%s/%s/%s", APNS_FUZZ_DIR, sub, target);
  DIR *d = opendir(dir);
  if (d == NULL) return 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    size_t len;
    if (e->d_name[0] == '.') continue;
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    printf("replay %s\n", path);
    uint8_t *buf = read_all(path, &len);
    ASSERT_EQ(fn(buf, len), 0);
    free(buf);
    n++;
  }
  closedir(d);
  return n;
}

static void replay(const char *target, int (*fn)(const uint8_t *, size_t)) {
  int seeds = replay_dir("corpus", target, fn);
  int regress = replay_dir("regress", target, fn);
  printf("%s: %d seeds, %d regression inputs\n", target, seeds, regress);
  ASSERT_GT(seeds, 0); /* an empty corpus would make the fuzz stage start from nothing */
}

#define REPLAY_TEST(name)                                                                                            \
  TEST(fuzz_replay_##name) {                                                                                         \
    replay(#name, apns_fuzz_##name);                                                                                 \
  }
APNS_FUZZ_TARGETS(REPLAY_TEST)
#undef REPLAY_TEST

/* ---- the defects the fuzzers found, pinned without them ---- */

/* A .p8 whose private scalar was damaged (so its public point is no longer its own) was taken by the signer, whose
 * tokens then failed with every holder of the public key; and by the verifier, which trusted the stale point.
 * Found by the jwt target (fuzz/regress/jwt/damaged-key-pair). Both now refuse it with APNS_EBADKEY. */
TEST(fuzz_jwt_damaged_key_pair_refused) {
  char *pem = NULL, err[256];
  unsigned char der[512];
  mbedtls_pk_context pk;
  apns__jwt_signer *s = NULL;
  apns__jwt_verifier *v = NULL;
  ASSERT_OK(apns__certgen_p8_key(&pem, err, sizeof err));
  mbedtls_pk_init(&pk);
  ASSERT_EQ(apns__mbed_pk_parse_key(&pk, (const unsigned char *)pem, strlen(pem) + 1, NULL, 0, NULL, NULL), 0);
  int n = mbedtls_pk_write_key_der(&pk, der, sizeof der); /* SEC1, at the end of der */
  mbedtls_pk_free(&pk);
  ASSERT_GT(n, 7 + 32);
  unsigned char *key = der + sizeof der - n;
  /* SEC1: 30 77 02 01 01 04 20 <32-byte scalar> a0 .. (curve) a1 .. (public point) */
  ASSERT_EQ(key[5], 0x04);
  ASSERT_EQ(key[6], 0x20);

  /* Untouched, the DER loads (the control). */
  ASSERT_OK(
      apns__jwt_signer_new(&s, NULL, (const char *)key, (size_t)n, "ABC123DEFG", "DEF123GHIJ", err, sizeof err));
  apns__jwt_signer_free(s);
  s = NULL;

  key[7 + 20] ^= 0x01; /* one bit of the scalar */
  ASSERT_ERR(
      apns__jwt_signer_new(&s, NULL, (const char *)key, (size_t)n, "ABC123DEFG", "DEF123GHIJ", err, sizeof err),
      APNS_EBADKEY);
  ASSERT_NULL(s);
  ASSERT_TRUE(strstr(err, "damaged") != NULL);
  ASSERT_OK(apns__jwt_verifier_new(&v));
  ASSERT_ERR(apns__jwt_verifier_add(v, "ABC123DEFG", NULL, (const char *)key, (size_t)n, err, sizeof err),
             APNS_EBADKEY);
  ASSERT_TRUE(strstr(err, "damaged") != NULL);
  apns__jwt_verifier_free(v);
  apns__zero(pem, strlen(pem));
  apns__free(pem);
}

TEST_SUITE(fuzz){
#define REPLAY_ENTRY(name) TEST_ENTRY(fuzz_replay_##name),
    APNS_FUZZ_TARGETS(REPLAY_ENTRY)
#undef REPLAY_ENTRY
        TEST_ENTRY(fuzz_jwt_damaged_key_pair_refused),
    TEST_SUITE_END,
};
