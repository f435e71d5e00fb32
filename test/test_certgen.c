/* Run-time certificates: parsed back and verified with mbedTLS itself, cross-checked with the openssl CLI. */
#include "harness.h"

#include "alloc.h"
#include "certgen.h"

#include <apns.h>
#include <mbedtls/error.h>
#include <mbedtls/oid.h>
#include <mbedtls/pk.h>
#include <mbedtls/version.h>
#include <mbedtls/x509_crt.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#if MBEDTLS_VERSION_NUMBER >= 0x03000000
#define PRIV(f) MBEDTLS_PRIVATE(f)
#else
#define PRIV(f) f
#endif

#define OID_UID "\x09\x92\x26\x89\x93\xF2\x2C\x64\x01\x01"

/* mbedTLS 3.x wants an RNG for key parsing and pair checks (blinding); 2.28 does not. The support library's. */
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
static int parse_key(mbedtls_pk_context *key, const char *pem, const char *pass) {
  return mbedtls_pk_parse_key(key, (const unsigned char *)pem, strlen(pem) + 1, (const unsigned char *)pass,
                              pass ? strlen(pass) : 0, apns__certgen_rng, NULL);
}
static int check_pair(const mbedtls_pk_context *pub, const mbedtls_pk_context *prv) {
  return mbedtls_pk_check_pair(pub, prv, apns__certgen_rng, NULL);
}
#else
static int parse_key(mbedtls_pk_context *key, const char *pem, const char *pass) {
  return mbedtls_pk_parse_key(key, (const unsigned char *)pem, strlen(pem) + 1, (const unsigned char *)pass,
                              pass ? strlen(pass) : 0);
}
static int check_pair(const mbedtls_pk_context *pub, const mbedtls_pk_context *prv) {
  return mbedtls_pk_check_pair(pub, prv);
}
#endif

static void parse(mbedtls_x509_crt *crt, const char *pem) {
  mbedtls_x509_crt_init(crt);
  ASSERT_NOT_NULL(pem);
  int ret = mbedtls_x509_crt_parse(crt, (const unsigned char *)pem, strlen(pem) + 1);
  if (ret != 0) {
    char words[128];
    mbedtls_strerror(ret, words, sizeof words);
    fprintf(stderr, "parse: %s\n%s\n", words, pem);
  }
  ASSERT_EQ(ret, 0);
}

/* flags of verifying leaf against ca for host cn (NULL: no name check). */
static uint32_t verify(const char *leaf_pem, const char *ca_pem, const char *cn) {
  mbedtls_x509_crt leaf, ca;
  uint32_t flags = 0;
  parse(&leaf, leaf_pem);
  parse(&ca, ca_pem);
  int ret = mbedtls_x509_crt_verify(&leaf, &ca, NULL, cn, &flags, NULL, NULL);
  ASSERT_TRUE(ret == 0 ? flags == 0 : flags != 0);
  mbedtls_x509_crt_free(&leaf);
  mbedtls_x509_crt_free(&ca);
  return flags;
}

static const mbedtls_x509_name *find_attr(const mbedtls_x509_name *name, const char *oid, size_t oid_len) {
  for (; name != NULL; name = name->next)
    if (name->oid.len == oid_len && memcmp(name->oid.p, oid, oid_len) == 0) return name;
  return NULL;
}

static int has_bytes(const unsigned char *hay, size_t n, const void *needle, size_t m) {
  for (size_t i = 0; i + m <= n; i++)
    if (memcmp(hay + i, needle, m) == 0) return 1;
  return 0;
}

TEST(certgen_chain_verifies) {
  apns__certgen_result res;
  char err[256];
  ASSERT_OK(apns__certgen(NULL, &res, err, sizeof err));
  ASSERT_EQ(verify(res.server_cert, res.ca_cert, "localhost"), 0);
  ASSERT_EQ(verify(res.client_cert, res.ca_cert, NULL), 0);
  ASSERT_EQ(verify(res.ca_cert, res.ca_cert, NULL), 0);
  ASSERT_NULL(res.other_ca_cert);
  /* Each key belongs to its certificate. */
  mbedtls_x509_crt crt;
  mbedtls_pk_context key;
  const char *pairs[][2] = {{res.server_cert, res.server_key}, {res.client_cert, res.client_key}};
  for (int i = 0; i < 2; i++) {
    parse(&crt, pairs[i][0]);
    mbedtls_pk_init(&key);
    ASSERT_EQ(parse_key(&key, pairs[i][1], NULL), 0);
    ASSERT_EQ(check_pair(&crt.pk, &key), 0);
    ASSERT_TRUE(mbedtls_pk_can_do(&key, MBEDTLS_PK_ECKEY));
    ASSERT_EQ(mbedtls_pk_get_bitlen(&key), 256);
    mbedtls_pk_free(&key);
    mbedtls_x509_crt_free(&crt);
  }
  apns__certgen_free(&res);
  ASSERT_NULL(res.server_key);
  apns__certgen_free(NULL);
}

TEST(certgen_ca_is_a_ca) {
  apns__certgen_result res;
  ASSERT_OK(apns__certgen(NULL, &res, NULL, 0));
  mbedtls_x509_crt ca, leaf;
  parse(&ca, res.ca_cert);
  parse(&leaf, res.server_cert);
  ASSERT_EQ(ca.PRIV(ca_istrue), 1);
  ASSERT_EQ(leaf.PRIV(ca_istrue), 0);
  ASSERT_EQ(mbedtls_x509_crt_check_key_usage(&ca, MBEDTLS_X509_KU_KEY_CERT_SIGN), 0);
  ASSERT_EQ(mbedtls_x509_crt_check_key_usage(&leaf, MBEDTLS_X509_KU_DIGITAL_SIGNATURE), 0);
  ASSERT_NE(mbedtls_x509_crt_check_key_usage(&leaf, MBEDTLS_X509_KU_KEY_CERT_SIGN), 0);
  ASSERT_EQ(ca.version, 3);
  mbedtls_x509_crt_free(&ca);
  mbedtls_x509_crt_free(&leaf);
  apns__certgen_free(&res);
}

TEST(certgen_server_names) {
  apns__certgen_result res;
  ASSERT_OK(apns__certgen(NULL, &res, NULL, 0));
  mbedtls_x509_crt crt;
  parse(&crt, res.server_cert);
  const mbedtls_x509_name *cn = find_attr(&crt.subject, MBEDTLS_OID_AT_CN, MBEDTLS_OID_SIZE(MBEDTLS_OID_AT_CN));
  ASSERT_NOT_NULL(cn);
  ASSERT_EQ(cn->val.len, 9);
  ASSERT_MEMEQ(cn->val.p, "localhost", 9);
  /* mbedTLS lists the dNSName entry; the extension's raw DER holds both entries as written. */
  int dns = 0;
  for (const mbedtls_x509_sequence *s = &crt.subject_alt_names; s != NULL && s->buf.p != NULL; s = s->next)
    if (s->buf.tag == (MBEDTLS_ASN1_CONTEXT_SPECIFIC | 2) && s->buf.len == 9 && !memcmp(s->buf.p, "localhost", 9))
      dns++;
  ASSERT_EQ(dns, 1);
  static const unsigned char san[] = {0x30, 0x11, 0x82, 0x09, 'l',  'o',  'c', 'a', 'l', 'h',
                                      'o',  's',  't',  0x87, 0x04, 0x7f, 0,   0,   1};
  ASSERT_TRUE(has_bytes(crt.raw.p, crt.raw.len, san, sizeof san));
  mbedtls_x509_crt_free(&crt);
  apns__certgen_free(&res);
}

/* Pins mbedTLS's behaviour: the host name is matched against dNSName entries only (CN is ignored when there is a
 * subjectAltName). mbedTLS 2.28 never matches an iPAddress entry, so a client connecting to 127.0.0.1 verifies with
 * the host name "localhost"; 3.x matches "127.0.0.1" against the iPAddress entry. */
TEST(certgen_ip_san_matched_by_mbedtls3_only) {
  apns__certgen_result res;
  ASSERT_OK(apns__certgen(NULL, &res, NULL, 0));
  ASSERT_EQ(verify(res.server_cert, res.ca_cert, "localhost"), 0);
  ASSERT_EQ(verify(res.server_cert, res.ca_cert, "LOCALHOST"), 0);
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
  ASSERT_EQ(verify(res.server_cert, res.ca_cert, "127.0.0.1"), 0);
  ASSERT_EQ(verify(res.server_cert, res.ca_cert, "127.0.0.2"), MBEDTLS_X509_BADCERT_CN_MISMATCH);
#else
  ASSERT_EQ(verify(res.server_cert, res.ca_cert, "127.0.0.1"), MBEDTLS_X509_BADCERT_CN_MISMATCH);
#endif
  ASSERT_EQ(verify(res.server_cert, res.ca_cert, "other.example"), MBEDTLS_X509_BADCERT_CN_MISMATCH);
  apns__certgen_free(&res);
}

TEST(certgen_ipv6_and_no_ip) {
  apns__certgen_options opts = {.server_ip = "::1", .server_host = "push.test"};
  apns__certgen_result res;
  ASSERT_OK(apns__certgen(&opts, &res, NULL, 0));
  mbedtls_x509_crt crt;
  parse(&crt, res.server_cert);
  static const unsigned char ip6[] = {0x87, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  ASSERT_TRUE(has_bytes(crt.raw.p, crt.raw.len, ip6, sizeof ip6));
  mbedtls_x509_crt_free(&crt);
  ASSERT_EQ(verify(res.server_cert, res.ca_cert, "push.test"), 0);
  ASSERT_EQ(verify(res.server_cert, res.ca_cert, "localhost"), MBEDTLS_X509_BADCERT_CN_MISMATCH);
  apns__certgen_free(&res);

  opts.server_ip = "";
  ASSERT_OK(apns__certgen(&opts, &res, NULL, 0));
  parse(&crt, res.server_cert);
  static const unsigned char only_dns[] = {0x30, 0x0b, 0x82, 0x09, 'p', 'u', 's', 'h', '.', 't', 'e', 's', 't'};
  ASSERT_TRUE(has_bytes(crt.raw.p, crt.raw.len, only_dns, sizeof only_dns));
  mbedtls_x509_crt_free(&crt);
  apns__certgen_free(&res);
}

TEST(certgen_client_is_apple_like) {
  apns__certgen_options opts = {.topic = "com.example.pushy"};
  apns__certgen_result res;
  ASSERT_OK(apns__certgen(&opts, &res, NULL, 0));
  mbedtls_x509_crt crt;
  parse(&crt, res.client_cert);
  const mbedtls_x509_name *uid = find_attr(&crt.subject, OID_UID, sizeof OID_UID - 1);
  ASSERT_NOT_NULL(uid);
  ASSERT_EQ(uid->val.len, strlen("com.example.pushy"));
  ASSERT_MEMEQ(uid->val.p, "com.example.pushy", uid->val.len);
  ASSERT_EQ(uid->val.tag, MBEDTLS_ASN1_UTF8_STRING);
  const mbedtls_x509_name *cn = find_attr(&crt.subject, MBEDTLS_OID_AT_CN, MBEDTLS_OID_SIZE(MBEDTLS_OID_AT_CN));
  ASSERT_NOT_NULL(cn);
  ASSERT_EQ(cn->val.len, strlen("Apple Push Services: com.example.pushy"));
  ASSERT_MEMEQ(cn->val.p, "Apple Push Services: com.example.pushy", cn->val.len);
  /* Subject order as Apple's: UID first. */
  ASSERT_EQ(crt.subject.oid.len, sizeof OID_UID - 1);
  ASSERT_MEMEQ(crt.subject.oid.p, OID_UID, sizeof OID_UID - 1);
  /* Extension: OID 1.2.840.113635.100.6.3.{1,2}, not critical (absent BOOLEAN), OCTET STRING holding NULL. */
  static const unsigned char dev[] = {0x30, 0x10, 0x06, 0x0a, 0x2a, 0x86, 0x48, 0x86, 0xf7,
                                      0x63, 0x64, 0x06, 0x03, 0x01, 0x04, 0x02, 0x05, 0x00};
  unsigned char prod[sizeof dev];
  memcpy(prod, dev, sizeof dev);
  prod[13] = 0x02;
  ASSERT_TRUE(has_bytes(crt.raw.p, crt.raw.len, dev, sizeof dev));
  ASSERT_TRUE(has_bytes(crt.raw.p, crt.raw.len, prod, sizeof prod));
  mbedtls_x509_crt_free(&crt);
  apns__certgen_free(&res);
}

TEST(certgen_other_ca_and_expired) {
  apns__certgen_options opts = {.other_ca = 1, .server_expired = 1};
  apns__certgen_result res;
  ASSERT_OK(apns__certgen(&opts, &res, NULL, 0));
  ASSERT_NOT_NULL(res.other_ca_cert);
  ASSERT_TRUE(strcmp(res.other_ca_cert, res.ca_cert) != 0);
  ASSERT_EQ(verify(res.client_cert, res.other_ca_cert, NULL), MBEDTLS_X509_BADCERT_NOT_TRUSTED);
  ASSERT_EQ(verify(res.server_cert, res.ca_cert, "localhost"), MBEDTLS_X509_BADCERT_EXPIRED);
  ASSERT_EQ(verify(res.client_cert, res.ca_cert, NULL), 0);
  apns__certgen_free(&res);
}

TEST(certgen_bad_options) {
  apns__certgen_result res;
  char err[256];
  apns__certgen_options opts = {.server_ip = "not-an-ip"};
  ASSERT_ERR(apns__certgen(&opts, &res, err, sizeof err), APNS_EINVAL);
  ASSERT_NOT_NULL(strstr(err, "not-an-ip"));
  ASSERT_NULL(res.ca_cert);
  opts = (apns__certgen_options){.topic = "has space"};
  ASSERT_ERR(apns__certgen(&opts, &res, err, sizeof err), APNS_EINVAL);
  opts = (apns__certgen_options){.server_host = ""};
  ASSERT_ERR(apns__certgen(&opts, &res, err, sizeof err), APNS_EINVAL);
  ASSERT_ERR(apns__certgen(NULL, NULL, err, sizeof err), APNS_EINVAL);
  ASSERT_ERR(apns__certgen_write_dir(NULL, &res, err, sizeof err), APNS_EINVAL);
}

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  ASSERT_NOT_NULL(f);
  static char buf[8192];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  buf[n] = '\0';
  fclose(f);
  return buf;
}

TEST(certgen_write_dir) {
  apns__certgen_options opts = {.other_ca = 1};
  apns__certgen_result res;
  char err[256], path[1024];
  ASSERT_OK(apns__certgen(&opts, &res, NULL, 0));
  ASSERT_OK(apns__certgen_write_dir(test_tmpdir(), &res, err, sizeof err));
  const struct {
    const char *name;
    const char *text;
    unsigned mode;
  } files[] = {{"ca.pem", res.ca_cert, 0644},
               {"server.pem", res.server_cert, 0644},
               {"server-key.pem", res.server_key, 0600},
               {"client.pem", res.client_cert, 0644},
               {"client-key.pem", res.client_key, 0600},
               {"other-ca.pem", res.other_ca_cert, 0644}};
  mode_t old = umask(0);
  umask(old);
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", test_tmpdir(), files[i].name);
    ASSERT_EQ(stat(path, &st), 0);
    ASSERT_EQ(st.st_mode & 0777, files[i].mode & ~old);
    ASSERT_STREQ(slurp(path), files[i].text);
  }
  /* Rewriting replaces the files. */
  ASSERT_OK(apns__certgen_write_dir(test_tmpdir(), &res, err, sizeof err));
  snprintf(path, sizeof path, "%s/missing/dir", test_tmpdir());
  int ret = apns__certgen_write_dir(path, &res, err, sizeof err);
  ASSERT_LT(ret, 0);
  ASSERT_NOT_NULL(strstr(err, "missing/dir/ca.pem"));
  apns__certgen_free(&res);
}

TEST(certgen_encrypted_key) {
  apns__certgen_result res;
  char err[256], *enc = NULL;
  ASSERT_OK(apns__certgen(NULL, &res, NULL, 0));
  ASSERT_OK(apns__certgen_encrypt_key(res.client_key, "s3cret pass", &enc, err, sizeof err));
  ASSERT_NOT_NULL(strstr(enc, "-----BEGIN EC PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,"));
  mbedtls_pk_context key;
  mbedtls_pk_init(&key);
  ASSERT_EQ(parse_key(&key, enc, NULL), MBEDTLS_ERR_PK_PASSWORD_REQUIRED);
  mbedtls_pk_free(&key);
  mbedtls_pk_init(&key);
  ASSERT_NE(parse_key(&key, enc, "wrong"), 0);
  mbedtls_pk_free(&key);
  mbedtls_pk_init(&key);
  ASSERT_EQ(parse_key(&key, enc, "s3cret pass"), 0);
  mbedtls_x509_crt crt;
  parse(&crt, res.client_cert);
  ASSERT_EQ(check_pair(&crt.pk, &key), 0);
  mbedtls_x509_crt_free(&crt);
  mbedtls_pk_free(&key);
  apns__zero(enc, strlen(enc));
  apns__free(enc);
  ASSERT_ERR(apns__certgen_encrypt_key("not a key", "x", &enc, err, sizeof err), APNS_EBADKEY);
  ASSERT_NULL(enc);
  apns__certgen_free(&res);
}

/* An independent reader of what we wrote (the SAN DER is hand-made): the openssl CLI, when the machine has it. */
TEST(certgen_openssl_agrees) {
  /* scripts/deps installs openssl: a missing one is a failure, not a skip. */
  if (access("/usr/bin/openssl", X_OK) != 0)
    TEST_SKIP("/usr/bin/openssl is not installed (scripts/deps installs it)");
  apns__certgen_options opts = {.other_ca = 1, .topic = "com.example.app"};
  apns__certgen_result res;
  char cmd[4096], err[256];
  const char *d = test_tmpdir();
  ASSERT_OK(apns__certgen(&opts, &res, NULL, 0));
  ASSERT_OK(apns__certgen_write_dir(d, &res, err, sizeof err));
  snprintf(
      cmd, sizeof cmd,
      "openssl verify -CAfile %s/ca.pem %s/server.pem %s/client.pem >/dev/null && "
      "openssl x509 -in %s/server.pem -noout -ext subjectAltName | grep -q 'DNS:localhost, IP Address:127.0.0.1' "
      "&& openssl x509 -in %s/client.pem -noout -subject -nameopt RFC2253 | "
      "grep -q 'CN=Apple Push Services: com.example.app,UID=com.example.app' && "
      "openssl x509 -in %s/client.pem -noout -text | grep -q '1.2.840.113635.100.6.3.2' && "
      "! openssl verify -CAfile %s/other-ca.pem %s/server.pem >/dev/null 2>&1",
      d, d, d, d, d, d, d, d);
  ASSERT_EQ(system(cmd), 0);
  apns__certgen_free(&res);
}

TEST(certgen_alloc_failures) {
  apns__certgen_result res;
  long live = test_alloc_live();
  for (long i = 0;; i++) {
    test_alloc_fail_after(i);
    int ret = apns__certgen(NULL, &res, NULL, 0);
    test_alloc_reset();
    if (ret == 0) {
      ASSERT_GT(i, 4);
      apns__certgen_free(&res);
      ASSERT_EQ(test_alloc_live(), live);
      break;
    }
    ASSERT_ERR(ret, APNS_ENOMEM);
    ASSERT_NULL(res.ca_cert);
    ASSERT_EQ(test_alloc_live(), live);
    ASSERT_LT(i, 100);
  }
}

/* The support library's one generator: a forked child does not repeat its parent's numbers (it would, with the
 * parent's generator state copied into it, were it not seeded again there). */
TEST(certgen_rng_forked_child_differs) {
  unsigned char mine[32], theirs[32], before[32];
  int fds[2];
  ASSERT_EQ(apns__certgen_rng(NULL, before, sizeof before), 0); /* seeded here, before the fork */
  ASSERT_EQ(pipe(fds), 0);
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    if (apns__certgen_rng(NULL, theirs, sizeof theirs) != 0) _exit(3);
    _exit(write(fds[1], theirs, sizeof theirs) == (ssize_t)sizeof theirs ? 0 : 4);
  }
  close(fds[1]);
  ASSERT_EQ(read(fds[0], theirs, sizeof theirs), (ssize_t)sizeof theirs);
  close(fds[0]);
  int status;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  ASSERT_EQ(apns__certgen_rng(NULL, mine, sizeof mine), 0);
  ASSERT_TRUE(memcmp(mine, theirs, sizeof mine) != 0);
  ASSERT_TRUE(memcmp(mine, before, sizeof mine) != 0);
}

TEST_SUITE(certgen){
    TEST_ENTRY(certgen_chain_verifies),
    TEST_ENTRY(certgen_ca_is_a_ca),
    TEST_ENTRY(certgen_server_names),
    TEST_ENTRY(certgen_ip_san_matched_by_mbedtls3_only),
    TEST_ENTRY(certgen_ipv6_and_no_ip),
    TEST_ENTRY(certgen_client_is_apple_like),
    TEST_ENTRY(certgen_other_ca_and_expired),
    TEST_ENTRY(certgen_bad_options),
    TEST_ENTRY(certgen_write_dir),
    TEST_ENTRY(certgen_encrypted_key),
    TEST_ENTRY(certgen_openssl_agrees),
    TEST_ENTRY(certgen_alloc_failures),
    TEST_ENTRY(certgen_rng_forked_child_differs),
    TEST_SUITE_END,
};
