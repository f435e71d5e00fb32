/* No secret in any output: the record of the keys and tokens a test makes (tools/support/secrets.h), the scan
 * (test_secrets_scan), and the runner's check under APNS_TEST_SECRETS=1, proved able to fail by running this very
 * binary on a test that prints a secret it was told to plant. */
#include "fixture.h"

#include "alloc.h"
#include "jwt.h"
#include "jwt_verify.h"
#include <string.h>

/* Makes certificates, a token key and one provider token verified by the mock's verifier: every kind of secret
 * the record knows. *token is apns__malloc'd. */
static void make_secrets(apns__certgen_result *certs, char **token) {
  apns__certgen_options co;
  apns__jwt_signer *signer = NULL;
  apns__jwt_verifier *v = NULL;
  char err[256] = "";
  size_t len = 0;
  memset(&co, 0, sizeof co);
  co.token_key = 1;
  if (apns__certgen(&co, certs, err, sizeof err) != 0) test__fail(__FILE__, __LINE__, "certgen: %s", err);
  ASSERT_OK(apns__jwt_signer_new(&signer, NULL, certs->token_key, strlen(certs->token_key), "ABC123DEFG",
                                 "DEF123GHIJ", err, sizeof err));
  ASSERT_OK(apns__jwt_sign(signer, (int64_t)time(NULL), token, &len));
  ASSERT_OK(apns__jwt_verifier_new(&v));
  ASSERT_OK(
      apns__jwt_verifier_add(v, "ABC123DEFG", NULL, certs->token_key, strlen(certs->token_key), err, sizeof err));
  ASSERT_EQ(apns__jwt_verify(v, *token, len, NULL), APNS__JWT_VALID);
  apns__jwt_verifier_free(v);
  apns__jwt_signer_free(signer);
}

static char *read_all(const char *path) {
  static char buf[1 << 18];
  FILE *f = fopen(path, "r");
  ASSERT_NOT_NULL(f);
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  buf[n] = '\0';
  fclose(f);
  return buf;
}

/* Every key certgen makes and every token the verifier accepts is recorded; the scan finds each in a text and
 * nothing in a text without them (a certificate is no secret). */
TEST(secrets_recorded_and_found) {
  char path[600], kind[64];
  apns__certgen_result certs;
  char *token = NULL;
  snprintf(path, sizeof path, "%s/own.secrets", test_tmpdir());
  setenv("APNS_TEST_SECRETS_FILE", path, 1);
  make_secrets(&certs, &token);
  ASSERT_EQ(test_secrets_scan(path, certs.client_key, strlen(certs.client_key), kind, sizeof kind), 3);
  ASSERT_STREQ(kind, "key-pem"); /* a P-256 SEC1 PEM: 121 bytes, 3 base64 lines */
  ASSERT_GE(test_secrets_scan(path, certs.server_key, strlen(certs.server_key), kind, sizeof kind), 1);
  ASSERT_GE(test_secrets_scan(path, certs.token_key, strlen(certs.token_key), kind, sizeof kind), 1);
  ASSERT_STREQ(kind, "p8-pem");
  char line[1200];
  snprintf(line, sizeof line, "authorization: bearer %s\n", token);
  ASSERT_EQ(test_secrets_scan(path, line, strlen(line), kind, sizeof kind), 1);
  ASSERT_STREQ(kind, "jwt-signature");
  ASSERT_EQ(test_secrets_scan(path, certs.ca_cert, strlen(certs.ca_cert), kind, sizeof kind), 0);
  ASSERT_EQ(test_secrets_scan(path, certs.client_cert, strlen(certs.client_cert), kind, sizeof kind), 0);
  /* Each key's scalar, four spellings: hex both cases, base64, base64url. */
  const char *rec = read_all(path);
  int scalars = 0;
  for (const char *p = rec; (p = strstr(p, "ec-scalar\t")) != NULL; p++) scalars++;
  ASSERT_GE(scalars, 4 * 4); /* CA, server, client, token keys */
  test_secrets_assert_absent("a certificate", certs.ca_cert);
  apns__free(token);
  apns__certgen_free(&certs);
}

/* Run by secrets_check_catches_planted: prints a public certificate, and the secret APNS_TEST_PLANT_SECRET names
 * (key, jwt, scalar) when it is set. */
TEST(secrets_planted) {
  apns__certgen_result certs;
  char *token = NULL;
  const char *plant = getenv("APNS_TEST_PLANT_SECRET");
  make_secrets(&certs, &token);
  printf("%s", certs.ca_cert);
  if (plant && strcmp(plant, "key") == 0) printf("%s", certs.client_key);
  if (plant && strcmp(plant, "jwt") == 0) printf("authorization: bearer %s\n", token);
  if (plant && strcmp(plant, "scalar") == 0) {
    const char *rec = read_all(getenv("APNS_TEST_SECRETS_FILE")), *p = strstr(rec, "ec-scalar\t");
    ASSERT_NOT_NULL(p);
    p += strlen("ec-scalar\t");
    printf("d = %.*s\n", (int)strcspn(p, "\n"), p);
  }
  apns__free(token);
  apns__certgen_free(&certs);
}

static int run_planted(const char *plant, char *out, size_t cap) {
  char var[128];
  snprintf(var, sizeof var, "APNS_TEST_PLANT_SECRET=%s", plant ? plant : "");
  const char *set[] = {"APNS_TEST_SECRETS=1", plant ? var : NULL, NULL};
  const char *unset[] = {plant ? NULL : "APNS_TEST_PLANT_SECRET", NULL};
  return fx_run_self("secrets_planted", set, unset, out, cap);
}

/* The runner's check fails a test that passed but printed a private key, a token or a key's scalar, and lets the
 * same test pass when it prints only its certificate. */
TEST(secrets_check_catches_planted) {
  static char out[1 << 16];
  static const char *const plants[][2] = {{"key", "key-pem"}, {"jwt", "jwt-signature"}, {"scalar", "ec-scalar"}};
  for (size_t i = 0; i < sizeof plants / sizeof plants[0]; i++) {
    char want[128];
    int rc = run_planted(plants[i][0], out, sizeof out);
    if (rc != 1) test__fail(__FILE__, __LINE__, "the planted run (%s) exited %d, not 1:\n%s", plants[i][0], rc, out);
    snprintf(want, sizeof want, "recorded secrets in its output (the first a %s)", plants[i][1]);
    if (strstr(out, want) == NULL) test__fail(__FILE__, __LINE__, "no \"%s\" in:\n%s", want, out);
    ASSERT_TRUE(strstr(out, "\n0 passed, 1 failed\n") != NULL);
  }
  if (run_planted(NULL, out, sizeof out) != 0) test__fail(__FILE__, __LINE__, "%s", out);
  ASSERT_TRUE(strstr(out, "\n1 passed, 0 failed\n") != NULL);
}

TEST_SUITE(secrets){
    TEST_ENTRY(secrets_recorded_and_found),
    TEST_ENTRY(secrets_planted),
    TEST_ENTRY(secrets_check_catches_planted),
    TEST_SUITE_END,
};
