/* Security checks, over real sockets on 127.0.0.1: what the client refuses to talk to, what it refuses to send,
 * and what it never writes down.
 *
 * - TLS: a server that only speaks TLS 1.0 or 1.1, offers only a cipher suite RFC 9113 forbids (CBC), or agrees
 *   on no ALPN or on another protocol than h2 is refused; so are expired, not-yet-valid and untrusted server
 *   certificates and a host name mismatch. The protocol cases run against openssl s_server (what users meet in
 *   the wild), each with a control that the same server with sound settings is accepted; the certificate cases
 *   against the in-process apns-mock.
 * - Header injection: CR, LF, non-ASCII and upper case in every field of the C API that ends up in a header or
 *   the path are errors at the call, and nothing reaches the server (its request hook counts).
 * - Secrets: provider tokens, .p8 key text and passphrases never appear in apns-push's output (results, summary,
 *   progress, errors) nor in the library's error messages. */
#include "fixture.h"

#include "alloc.h"
#include "certgen.h"
#include "jwt_verify.h"
#include <apns.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecp.h>
#include <mbedtls/entropy.h>
#include <mbedtls/pk.h>
#include <mbedtls/version.h>
#include <mbedtls/x509_crt.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#define TOKEN "00fc13adff785122b4ad28809a3420982341241421348097878e577c991de8f0"

/* ------------------------------------------------------------------------------------------------------------------
 * openssl s_server
 * ------------------------------------------------------------------------------------------------------------------
 */
#define OPENSSL_BIN "/usr/bin/openssl"

static void need_openssl(void) {
  if (access(OPENSSL_BIN, X_OK) != 0) TEST_SKIP("%s is not installed (scripts/deps installs openssl)", OPENSSL_BIN);
}

/* A port the kernel had free a moment ago (openssl cannot take port 0 and tell us). */
static int free_port(uv_loop_t *loop) {
  uv_tcp_t t;
  struct sockaddr_in a;
  struct sockaddr_storage got;
  int len = sizeof got;
  ASSERT_EQ(uv_tcp_init(loop, &t), 0);
  ASSERT_EQ(uv_ip4_addr("127.0.0.1", 0, &a), 0);
  ASSERT_EQ(uv_tcp_bind(&t, (const struct sockaddr *)&a, 0), 0);
  ASSERT_EQ(uv_tcp_getsockname(&t, (struct sockaddr *)&got, &len), 0);
  int port = ntohs(((struct sockaddr_in *)&got)->sin_port);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(loop, UV_RUN_NOWAIT);
  return port;
}

typedef struct {
  fx_child c;
  int port;
} ossl;

/* Starts openssl s_server on 127.0.0.1 with the certificates in dir and the extra arguments, and waits until it
 * listens (it prints ACCEPT). */
static void ossl_start(ossl *s, uv_loop_t *loop, const char *dir, const char *const *extra) {
  static char accept_arg[64], cert[600], key[600];
  const char *argv[32];
  int n = 0;
  need_openssl();
  s->port = free_port(loop);
  snprintf(accept_arg, sizeof accept_arg, "127.0.0.1:%d", s->port);
  snprintf(cert, sizeof cert, "%s/server.pem", dir);
  snprintf(key, sizeof key, "%s/server-key.pem", dir);
  argv[n++] = OPENSSL_BIN;
  argv[n++] = "s_server";
  argv[n++] = "-accept";
  argv[n++] = accept_arg;
  argv[n++] = "-cert";
  argv[n++] = cert;
  argv[n++] = "-key";
  argv[n++] = key;
  argv[n++] = "-naccept";
  argv[n++] = "1";
  for (; *extra; extra++) argv[n++] = *extra;
  argv[n] = NULL;
  memset(&s->c, 0, sizeof s->c);
  s->c.keep_stdin = 1;
  fx_child_start(&s->c, loop, argv);
  while (strstr(fx_child_out(&s->c), "ACCEPT") == NULL) {
    if (s->c.exited) test__fail(__FILE__, __LINE__, "openssl s_server did not start:\n%s", fx_child_err(&s->c));
    ASSERT_NE(uv_run(loop, UV_RUN_ONCE), 0);
  }
}

static void ossl_stop(ossl *s, uv_loop_t *loop) {
  if (!s->c.exited) uv_process_kill(&s->c.proc, SIGTERM);
  fx_child_wait(&s->c, loop);
  fx_child_free(&s->c);
}

/* ------------------------------------------------------------------------------------------------------------------
 * One connection attempt and its outcome
 * ------------------------------------------------------------------------------------------------------------------
 */
typedef struct {
  int connected, status, closed;
  char error[512];
} attempt;

static void on_connect(apns_conn *conn, int status) {
  attempt *a = apns_conn_data(conn);
  a->connected = 1;
  a->status = status;
  snprintf(a->error, sizeof a->error, "%s", apns_conn_last_error(conn));
}

static void on_closed(apns_conn *conn) {
  attempt *a = apns_conn_data(conn);
  a->closed = 1;
}

/* Connects to 127.0.0.1:port trusting ca_pem and verifying verify_name; returns the connect status (error text in
 * a->error). */
static int try_connect(uv_loop_t *loop, int port, const char *ca_pem, const char *verify_name, attempt *a) {
  apns_conn_options o;
  apns_tls_options tlso = APNS_TLS_OPTIONS_INIT;
  apns_conn *conn = NULL;
  char err[256] = "";
  memset(a, 0, sizeof *a);
  apns_conn_options_init(&o);
  o.tls = &tlso;
  o.host = "127.0.0.1";
  o.port = (uint16_t)port;
  tlso.ca_pem = ca_pem;
  tlso.verify_name = verify_name;
  o.connect_timeout_ms = 10000 * (uint64_t)test_time_factor();
  o.on_connect = on_connect;
  o.data = a;
  int rv = apns_conn_open(loop, &conn, &o, err, sizeof err);
  if (rv != 0) test__fail(__FILE__, __LINE__, "apns_conn_open: %s (%s)", apns_strerror(rv), err);
  fx_run_until(loop, &a->connected);
  ASSERT_OK(apns_conn_close(conn, on_closed));
  fx_run_until(loop, &a->closed);
  printf("connect: %s: %s\n", apns_err_name(a->status), a->error);
  return a->status;
}

static void certs_in(apns__certgen_result *c, const apns__certgen_options *o, char *dir, size_t cap) {
  char err[256] = "";
  if (apns__certgen(o, c, err, sizeof err) != 0) test__fail(__FILE__, __LINE__, "certgen: %s", err);
  snprintf(dir, cap, "%s/certs", test_tmpdir());
  ASSERT_EQ(mkdir(dir, 0700), 0);
  ASSERT_OK(apns__certgen_write_dir(dir, c, err, sizeof err));
}

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

/* ---- protocol versions, cipher suites, ALPN (openssl s_server) ---- */

/* The control for the openssl cases: TLS 1.2, an AEAD suite, ALPN h2: accepted. */
TEST(sec_openssl_sound_server_accepted) {
  uv_loop_t loop;
  apns__certgen_result c;
  char dir[600];
  ossl s;
  attempt a;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  certs_in(&c, NULL, dir, sizeof dir);
  ossl_start(&s, &loop, dir, ARGS("-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256", "-alpn", "h2"));
  ASSERT_OK(try_connect(&loop, s.port, c.ca_cert, "localhost", &a));
  ossl_stop(&s, &loop);
  apns__certgen_free(&c);
  ASSERT_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
  ASSERT_EQ(uv_loop_close(&loop), 0);
}

TEST(sec_tls10_and_tls11_servers_refused) {
  static const char *const versions[] = {"-tls1", "-tls1_1"};
  uv_loop_t loop;
  apns__certgen_result c;
  char dir[600];
  ASSERT_EQ(uv_loop_init(&loop), 0);
  certs_in(&c, NULL, dir, sizeof dir);
  for (size_t i = 0; i < 2; i++) {
    ossl s;
    attempt a;
    /* SECLEVEL 0: OpenSSL 3 refuses these versions itself otherwise. */
    ossl_start(&s, &loop, dir, ARGS(versions[i], "-cipher", "DEFAULT:@SECLEVEL=0", "-alpn", "h2"));
    ASSERT_ERR(try_connect(&loop, s.port, c.ca_cert, "localhost", &a), APNS_ETLS);
    ASSERT_TRUE(a.error[0] != '\0');
    ossl_stop(&s, &loop);
  }
  apns__certgen_free(&c);
  ASSERT_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
  ASSERT_EQ(uv_loop_close(&loop), 0);
}

/* RFC 9113 9.2.2: HTTP/2 over TLS 1.2 must not use the suites of its Appendix A (all CBC and non-ephemeral ones).
 * A server that offers nothing else gets no handshake. */
TEST(sec_cbc_only_server_refused) {
  static const char *const suites[] = {"ECDHE-ECDSA-AES128-SHA256", "ECDHE-ECDSA-AES256-SHA",
                                       "ECDHE-ECDSA-AES128-SHA"};
  uv_loop_t loop;
  apns__certgen_result c;
  char dir[600];
  ASSERT_EQ(uv_loop_init(&loop), 0);
  certs_in(&c, NULL, dir, sizeof dir);
  for (size_t i = 0; i < sizeof suites / sizeof suites[0]; i++) {
    ossl s;
    attempt a;
    ossl_start(&s, &loop, dir, ARGS("-tls1_2", "-cipher", suites[i], "-alpn", "h2"));
    ASSERT_ERR(try_connect(&loop, s.port, c.ca_cert, "localhost", &a), APNS_ETLS);
    ossl_stop(&s, &loop);
  }
  apns__certgen_free(&c);
  ASSERT_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
  ASSERT_EQ(uv_loop_close(&loop), 0);
}

TEST(sec_no_h2_in_alpn_refused) {
  uv_loop_t loop;
  apns__certgen_result c;
  char dir[600];
  ossl s;
  attempt a;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  certs_in(&c, NULL, dir, sizeof dir);
  /* The server speaks only HTTP/1.1. */
  ossl_start(&s, &loop, dir, ARGS("-tls1_2", "-alpn", "http/1.1"));
  ASSERT_ERR(try_connect(&loop, s.port, c.ca_cert, "localhost", &a), APNS_EALPN);
  ossl_stop(&s, &loop);
  /* The server ignores ALPN altogether. */
  ossl_start(&s, &loop, dir, ARGS("-tls1_2"));
  ASSERT_ERR(try_connect(&loop, s.port, c.ca_cert, "localhost", &a), APNS_EALPN);
  ossl_stop(&s, &loop);
  apns__certgen_free(&c);
  ASSERT_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
  ASSERT_EQ(uv_loop_close(&loop), 0);
}

/* ---- server certificates (the in-process mock) ---- */

/* Starts the mock with cert and key, connects trusting ca and verifying name, and returns the status. */
static int cert_case(const char *cert, const char *key, const char *ca, const char *name, attempt *a) {
  uv_loop_t loop;
  apns_mock_options o;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  apns_mock_options_init(&o);
  o.cert_pem = cert;
  o.key_pem = key;
  apns_mock *m = fx_mock_start(&loop, &o);
  int rv = try_connect(&loop, apns_mock_port(m), ca, name, a);
  fx_mock_stop_and_close_loop(&loop, m);
  return rv;
}

TEST(sec_certificate_control_accepted) {
  apns__certgen_result c;
  attempt a;
  fx_certs(&c, 0);
  ASSERT_OK(cert_case(c.server_cert, c.server_key, c.ca_cert, "localhost", &a));
  apns__certgen_free(&c);
}

TEST(sec_expired_certificate_refused) {
  apns__certgen_options o;
  apns__certgen_result c;
  attempt a;
  char err[256];
  memset(&o, 0, sizeof o);
  o.server_expired = 1;
  ASSERT_OK(apns__certgen(&o, &c, err, sizeof err));
  ASSERT_ERR(cert_case(c.server_cert, c.server_key, c.ca_cert, "localhost", &a), APNS_ECERTVERIFY);
  ASSERT_TRUE(strstr(a.error, "expired") != NULL);
  apns__certgen_free(&c);
}

/* A self-signed certificate for CN=localhost that becomes valid in 2035, trusted as its own anchor: mbedTLS checks
 * the dates of a locally trusted end-entity certificate too. lib/certgen makes no certificate from the future. */
static void future_cert(char *cert, size_t cert_cap, char *key, size_t key_cap) {
  mbedtls_entropy_context ent;
  mbedtls_ctr_drbg_context drbg;
  mbedtls_pk_context pk;
  mbedtls_x509write_cert w;
  mbedtls_mpi serial;
  mbedtls_entropy_init(&ent);
  mbedtls_ctr_drbg_init(&drbg);
  mbedtls_pk_init(&pk);
  mbedtls_x509write_crt_init(&w);
  mbedtls_mpi_init(&serial);
  ASSERT_EQ(mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &ent, NULL, 0), 0);
  ASSERT_EQ(mbedtls_pk_setup(&pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)), 0);
  ASSERT_EQ(mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(pk), mbedtls_ctr_drbg_random, &drbg), 0);
  mbedtls_x509write_crt_set_subject_key(&w, &pk);
  mbedtls_x509write_crt_set_issuer_key(&w, &pk);
  ASSERT_EQ(mbedtls_x509write_crt_set_subject_name(&w, "CN=localhost"), 0);
  ASSERT_EQ(mbedtls_x509write_crt_set_issuer_name(&w, "CN=localhost"), 0);
  mbedtls_x509write_crt_set_md_alg(&w, MBEDTLS_MD_SHA256);
#if MBEDTLS_VERSION_NUMBER >= 0x03040000 /* set_serial is deprecated from 3.4 on */
  static const unsigned char serial_raw[] = {7};
  ASSERT_EQ(mbedtls_x509write_crt_set_serial_raw(&w, (unsigned char *)serial_raw, sizeof serial_raw), 0);
#else
  ASSERT_EQ(mbedtls_mpi_lset(&serial, 7), 0);
  ASSERT_EQ(mbedtls_x509write_crt_set_serial(&w, &serial), 0);
#endif
  ASSERT_EQ(mbedtls_x509write_crt_set_validity(&w, "20350101000000", "20360101000000"), 0);
  ASSERT_EQ(mbedtls_x509write_crt_set_basic_constraints(&w, 1, 0), 0);
  ASSERT_EQ(mbedtls_x509write_crt_pem(&w, (unsigned char *)cert, cert_cap, mbedtls_ctr_drbg_random, &drbg), 0);
  ASSERT_EQ(mbedtls_pk_write_key_pem(&pk, (unsigned char *)key, key_cap), 0);
  mbedtls_mpi_free(&serial);
  mbedtls_x509write_crt_free(&w);
  mbedtls_pk_free(&pk);
  mbedtls_ctr_drbg_free(&drbg);
  mbedtls_entropy_free(&ent);
}

TEST(sec_not_yet_valid_certificate_refused) {
  char cert[4096], key[1024];
  attempt a;
  future_cert(cert, sizeof cert, key, sizeof key);
  ASSERT_ERR(cert_case(cert, key, cert, "localhost", &a), APNS_ECERTVERIFY);
  ASSERT_TRUE(strstr(a.error, "future") != NULL);
  apns__zero(key, sizeof key);
}

TEST(sec_untrusted_certificate_refused) {
  apns__certgen_result c;
  attempt a;
  fx_certs(&c, 1);
  ASSERT_ERR(cert_case(c.server_cert, c.server_key, c.other_ca_cert, "localhost", &a), APNS_ECERTVERIFY);
  ASSERT_TRUE(strstr(a.error, "not issued by a trusted CA") != NULL);
  apns__certgen_free(&c);
}

TEST(sec_host_name_mismatch_refused) {
  apns__certgen_options o;
  apns__certgen_result c;
  attempt a;
  char err[256];
  memset(&o, 0, sizeof o);
  o.server_host = "other.example";
  ASSERT_OK(apns__certgen(&o, &c, err, sizeof err));
  ASSERT_ERR(cert_case(c.server_cert, c.server_key, c.ca_cert, "localhost", &a), APNS_ECERTVERIFY);
  ASSERT_TRUE(strstr(a.error, "host name mismatch") != NULL);
  /* The right name with the same certificate is fine: the refusal was the name's. */
  ASSERT_OK(cert_case(c.server_cert, c.server_key, c.ca_cert, "other.example", &a));
  apns__certgen_free(&c);
}

/* ---- header injection ---- */

typedef struct {
  int requests;
  int injected; /* a request carried a header named as one of the injections */
} seen;

static void count_request(void *data, apns_mock_request *req) {
  seen *s = data;
  s->requests++;
  for (size_t i = 0; i < req->num_headers; i++)
    if (strncmp(req->headers[i].name, "x-injected", 10) == 0) s->injected++;
  if (strstr(req->path, "x-injected") != NULL) s->injected++;
}

static void never_called(int err, const apns_response *res, void *data) {
  (void)err, (void)res, (void)data;
  test__fail(__FILE__, __LINE__, "a refused request's callback ran");
}

/* Header names and values, paths and methods that must never leave the process. (Bytes above 0x7f pass in a path
 * by design, see request.c: they cannot end a header line.) */
static const char *const bad_names[] = {"x-a\r\nx-injected",  "x-a\nx-injected", "x-a\rx-injected", "X-Injected",
                                        "x-injected\xc3\xa9", "x-injected:",     "x-injected ",     "",
                                        ":x-injected",        "x-injected\x7f",  "connection",      "te"};
static const char *const bad_values[] = {
    "v\r\nx-injected: 1", "v\nx-injected: 1", "v\rx-injected: 1", " v", "v ", "\tv", "v\t"};
static const char *const bad_paths[] = {"/3/device/" TOKEN "\r\nx-injected: 1",
                                        "/3/device/" TOKEN "\nx-injected",
                                        "/3/device/" TOKEN " x-injected",
                                        "x-injected",
                                        "",
                                        "/3/device/\x01x-injected"};
static const char *const bad_methods[] = {"POST\r\nx-injected: 1", "post", "POST ", "P\xc3\xa9ST"};

TEST(sec_header_injection_conn_refused) {
  uv_loop_t loop;
  apns__certgen_result c;
  apns_mock_options mo;
  seen s = {0, 0};
  attempt a;
  apns_conn_options o;
  apns_tls_options tlso = APNS_TLS_OPTIONS_INIT;
  apns_conn *conn = NULL;
  char err[256] = "";
  fx_rec good;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  fx_certs(&c, 0);
  fx_mock_options(&mo, &c, 0);
  mo.on_request = count_request;
  mo.data = &s;
  apns_mock *m = fx_mock_start(&loop, &mo);
  apns_conn_options_init(&o);
  memset(&a, 0, sizeof a);
  o.host = "127.0.0.1";
  o.port = (uint16_t)apns_mock_port(m);
  o.tls = fx_tls_client(&tlso, &c);
  o.on_connect = on_connect;
  o.data = &a;
  ASSERT_OK(apns_conn_open(&loop, &conn, &o, err, sizeof err));
  fx_run_until(&loop, &a.connected);
  ASSERT_OK(a.status);

  apns_request r;
  apns_header h[2] = {{"apns-topic", "com.example.app"}, {"x-ok", "fine"}};
  for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++) {
    fx_request(&r, TOKEN, 0);
    h[1].name = bad_names[i];
    h[1].value = "1";
    r.headers = h;
    r.num_headers = 2;
    int rv = apns_conn_post(conn, &r, never_called, NULL);
    if (rv != APNS_EBADHEADER) test__fail(__FILE__, __LINE__, "name \"%s\": %s", bad_names[i], apns_err_name(rv));
  }
  for (size_t i = 0; i < sizeof bad_values / sizeof bad_values[0]; i++) {
    fx_request(&r, TOKEN, 0);
    h[1].name = "x-ok";
    h[1].value = bad_values[i];
    r.headers = h;
    r.num_headers = 2;
    int rv = apns_conn_post(conn, &r, never_called, NULL);
    if (rv != APNS_EBADHEADER) test__fail(__FILE__, __LINE__, "value \"%s\": %s", bad_values[i], apns_err_name(rv));
  }
  for (size_t i = 0; i < sizeof bad_paths / sizeof bad_paths[0]; i++) {
    fx_request(&r, TOKEN, 0);
    r.path = bad_paths[i];
    int rv = apns_conn_post(conn, &r, never_called, NULL);
    if (rv != APNS_EINVAL) test__fail(__FILE__, __LINE__, "path \"%s\": %s", bad_paths[i], apns_err_name(rv));
  }
  for (size_t i = 0; i < sizeof bad_methods / sizeof bad_methods[0]; i++) {
    fx_request(&r, TOKEN, 0);
    r.method = bad_methods[i];
    int rv = apns_conn_post(conn, &r, never_called, NULL);
    if (rv != APNS_EINVAL) test__fail(__FILE__, __LINE__, "method \"%s\": %s", bad_methods[i], apns_err_name(rv));
  }
  /* The connection-wide authorization header. */
  for (size_t i = 0; i < sizeof bad_values / sizeof bad_values[0]; i++)
    ASSERT_ERR(apns_conn_set_authorization(conn, bad_values[i]), APNS_EBADHEADER);

  /* Nothing went out; the connection is as good as before. */
  memset(&good, 0, sizeof good);
  fx_request(&r, TOKEN, 0);
  ASSERT_OK(apns_conn_post(conn, &r, fx_record, &good));
  fx_run_until(&loop, &good.calls);
  ASSERT_OK(good.err);
  ASSERT_EQ(good.status, 200);
  ASSERT_EQ(s.requests, 1);
  ASSERT_EQ(s.injected, 0);
  ASSERT_OK(apns_conn_close(conn, on_closed));
  fx_run_until(&loop, &a.closed);
  fx_mock_stop_and_close_loop(&loop, m);
  apns__certgen_free(&c);
}

/* authority and verify_name reach the wire (the :authority header, SNI) or the name check: a CR or LF in them
 * must stop the connection before any request. */
TEST(sec_header_injection_authority_and_verify_name) {
  static const char *const bad[] = {"localhost\r\nx-injected: 1", "localhost\nx-injected", "local host"};
  uv_loop_t loop;
  apns__certgen_result c;
  apns_mock_options mo;
  seen s = {0, 0};
  ASSERT_EQ(uv_loop_init(&loop), 0);
  fx_certs(&c, 0);
  fx_mock_options(&mo, &c, 0);
  mo.on_request = count_request;
  mo.data = &s;
  apns_mock *m = fx_mock_start(&loop, &mo);
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    for (int field = 0; field < 2; field++) {
      apns_conn_options o;
      apns_tls_options tlso = APNS_TLS_OPTIONS_INIT;
      apns_conn *conn = NULL;
      attempt a;
      fx_rec rec;
      apns_request r;
      char err[256] = "";
      apns_conn_options_init(&o);
      memset(&a, 0, sizeof a);
      memset(&rec, 0, sizeof rec);
      o.host = "127.0.0.1";
      o.port = (uint16_t)apns_mock_port(m);
      o.tls = fx_tls_client(&tlso, &c);
      if (field == 0)
        o.authority = bad[i];
      else
        tlso.verify_name = bad[i];
      o.on_connect = on_connect;
      o.data = &a;
      int rv = apns_conn_open(&loop, &conn, &o, err, sizeof err);
      printf("%s \"%s\": open %s (%s)\n", field ? "verify_name" : "authority", bad[i], apns_err_name(rv), err);
      if (rv != 0) {
        /* conn.h names APNS_EINVAL for bad options; what comes is APNS_EBADHEADER: an error either way. */
        if (rv != APNS_EINVAL && rv != APNS_EBADHEADER) test__fail(__FILE__, __LINE__, "open: %s", apns_err_name(rv));
        continue;
      }
      /* Accepted at open: the connection must fail, or at least refuse to send. */
      fx_run_until(&loop, &a.connected);
      printf("  connect %s: %s\n", apns_err_name(a.status), a.error);
      if (a.status == 0) {
        fx_request(&r, TOKEN, 0);
        rv = apns_conn_post(conn, &r, fx_record, &rec);
        if (rv == 0) fx_run_until(&loop, &rec.calls);
        printf("  post %s, then %s\n", apns_err_name(rv), apns_err_name(rec.err));
      }
      ASSERT_OK(apns_conn_close(conn, on_closed));
      fx_run_until(&loop, &a.closed);
      if (s.requests != 0)
        test__fail(__FILE__, __LINE__, "%s \"%s\": a request reached the server", field ? "verify_name" : "authority",
                   bad[i]);
    }
  }
  ASSERT_EQ(s.injected, 0);
  fx_mock_stop_and_close_loop(&loop, m);
  apns__certgen_free(&c);
}

TEST(sec_header_injection_client_refused) {
  uv_loop_t loop;
  apns__certgen_result c;
  apns_mock_options mo;
  seen s = {0, 0};
  apns_client_options o;
  apns_tls_options tlso = APNS_TLS_OPTIONS_INIT;
  apns_client *cl = NULL;
  char err[256] = "";
  apns_notification *n = NULL;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  fx_certs(&c, 0);
  fx_mock_options(&mo, &c, 1);
  mo.on_request = count_request;
  mo.data = &s;
  apns_mock *m = fx_mock_start(&loop, &mo);
  apns_client_options_init(&o);
  o.endpoint = APNS_ENDPOINT_CUSTOM;
  o.host = "127.0.0.1";
  o.port = (uint16_t)apns_mock_port(m);
  o.tls = fx_tls_client(&tlso, &c);
  o.connections = 1;

  /* Options that become headers, refused at open. */
  static const char *const bad_topics[] = {"com.example.app\r\nx-injected: 1", "com.example.app\nx", "com example",
                                           "com.example.\xc3\xa9"};
  for (size_t i = 0; i < sizeof bad_topics / sizeof bad_topics[0]; i++) {
    o.topic = bad_topics[i];
    /* client.h says APNS_EINVAL for a bad default topic; the client answers APNS_EBADTOPIC. Either refuses. */
    int rv = apns_client_open(&loop, &cl, &o, err, sizeof err);
    if (rv != APNS_EINVAL && rv != APNS_EBADTOPIC)
      test__fail(__FILE__, __LINE__, "topic \"%s\": %s", bad_topics[i], apns_err_name(rv));
    ASSERT_NULL(cl);
  }
  apns_client_options t = o;
  apns_tls_options t_tls = APNS_TLS_OPTIONS_INIT;
  t.tls = &t_tls;
  t_tls.ca_pem = c.ca_cert;
  t_tls.verify_name = "localhost";
  t.topic = "com.example.app";
  t.token_key_pem = c.client_key;
  t.key_id = "ABC123DEF\n";
  t.team_id = "DEF123GHIJ";
  ASSERT_ERR(apns_client_open(&loop, &cl, &t, err, sizeof err), APNS_EINVAL);
  t.key_id = "ABC123DEFG";
  t.team_id = "DEF\r\n23GHI";
  ASSERT_ERR(apns_client_open(&loop, &cl, &t, err, sizeof err), APNS_EINVAL);

  o.topic = "com.example.app";
  ASSERT_OK(apns_client_open(&loop, &cl, &o, err, sizeof err));
  ASSERT_OK(apns_notification_new(&n));
  ASSERT_OK(apns_notification_set_alert_text(n, "hi"));

  /* Every per-send field that becomes a header or the path. */
  static const char *const bad_tokens[] = {TOKEN "\r\nx-injected: 1", TOKEN "\n", "ab cd", "ab\xc3\xa9"};
  for (size_t i = 0; i < sizeof bad_tokens / sizeof bad_tokens[0]; i++)
    ASSERT_ERR(apns_client_send(cl, bad_tokens[i], n, NULL, never_called, NULL), APNS_EBADTOKEN);
  apns_send_options so;
  for (size_t i = 0; i < sizeof bad_topics / sizeof bad_topics[0]; i++) {
    apns_send_options_init(&so);
    so.topic = bad_topics[i];
    ASSERT_ERR(apns_client_send(cl, TOKEN, n, &so, never_called, NULL), APNS_EBADTOPIC);
  }
  static const char *const bad_collapse[] = {"c\r\nx-injected: 1", "c\n", "c\r", " c", "c "};
  for (size_t i = 0; i < sizeof bad_collapse / sizeof bad_collapse[0]; i++) {
    apns_send_options_init(&so);
    so.collapse_id = bad_collapse[i];
    ASSERT_ERR(apns_client_send(cl, TOKEN, n, &so, never_called, NULL), APNS_EBADCOLLAPSEID);
  }
  static const char *const bad_ids[] = {"5e6d3b8a-1c2d-4e5f-8a9b-0c1d2e3f4a5b\r\nx-injected: 1",
                                        "5e6d3b8a-1c2d-4e5f-8a9b-0c1d2e3f4a5\n",
                                        "5e6d3b8a-1c2d-4e5f-8a9b-0c1d2e3f4a5\xc3"};
  for (size_t i = 0; i < sizeof bad_ids / sizeof bad_ids[0]; i++) {
    apns_send_options_init(&so);
    so.apns_id = bad_ids[i];
    ASSERT_ERR(apns_client_send(cl, TOKEN, n, &so, never_called, NULL), APNS_EBADAPNSID);
  }
  apns_send_options_init(&so);
  so.priority = 7;
  ASSERT_ERR(apns_client_send(cl, TOKEN, n, &so, never_called, NULL), APNS_EBADPRIORITY);
  apns_send_options_init(&so);
  so.push_type = (apns_push_type)99;
  ASSERT_NE(apns_client_send(cl, TOKEN, n, &so, never_called, NULL), 0);
  apns_send_options_init(&so);
  so.has_expiration = 1;
  so.expiration = -1;
  ASSERT_NE(apns_client_send(cl, TOKEN, n, &so, never_called, NULL), 0);

  /* Then one good send: the only request the server sees. */
  fx_rec good;
  memset(&good, 0, sizeof good);
  ASSERT_OK(apns_client_send(cl, TOKEN, n, NULL, fx_record, &good));
  fx_run_until(&loop, &good.calls);
  ASSERT_OK(good.err);
  ASSERT_EQ(good.status, 200);
  ASSERT_EQ(s.requests, 1);
  ASSERT_EQ(s.injected, 0);
  apns_notification_free(n);
  ASSERT_OK(apns_client_close(cl, 0, NULL));
  fx_mock_stop_and_close_loop(&loop, m);
  apns__certgen_free(&c);
}

static const char *push_bin(void);

/* apns-push's flags and bulk lines: the same fields, from the command line and from JSON (where \r and \n are
 * easy to write). Every bad one is refused; only the good line reaches the server. */
TEST(sec_header_injection_push_refused) {
  uv_loop_t loop;
  apns__certgen_result c;
  apns_mock_options mo;
  seen s = {0, 0};
  char port[32], dir[600];
  ASSERT_EQ(uv_loop_init(&loop), 0);
  certs_in(&c, NULL, dir, sizeof dir);
  fx_mock_options(&mo, &c, 1);
  mo.on_request = count_request;
  mo.data = &s;
  apns_mock *m = fx_mock_start(&loop, &mo);
  snprintf(port, sizeof port, "127.0.0.1:%d", apns_mock_port(m));
  char ca[700], cert[700], key[700];
  snprintf(ca, sizeof ca, "%s/ca.pem", dir);
  snprintf(cert, sizeof cert, "%s/client.pem", dir);
  snprintf(key, sizeof key, "%s/client-key.pem", dir);
  char *env[] = {"PATH=/usr/bin:/bin", NULL};
  static const char *const flags[][2] = {
      {"--topic", "com.example.app\r\nx-injected: 1"},
      {"--topic", "com.example.app\nx-injected"},
      {"--collapse-id", "c\r\nx-injected: 1"},
      {"--collapse-id", "c\n"},
      {"--apns-id", "5e6d3b8a-1c2d-4e5f-8a9b-0c1d2e3f4a5b\r\nx-injected: 1"},
      {"--push-type", "alert\r\nx-injected: 1"},
      {"--priority", "10\r\nx-injected: 1"},
      {"--expiration", "0\r\nx-injected: 1"},
  };
  for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
    fx_child ch = {.env = env};
    const char *topic = strcmp(flags[i][0], "--topic") == 0 ? flags[i][1] : "com.example.app";
    const char *const argv[] = {push_bin(),  "--host",  port,    "--ca", ca,        "--verify-name", "localhost",
                                "--cert",    cert,      "--key", key,    "--topic", topic,           flags[i][0],
                                flags[i][1], "--alert", "x",     TOKEN,  NULL};
    fx_child_start(&ch, &loop, argv);
    fx_child_wait(&ch, &loop);
    printf("%s %s: exit %d: %s", flags[i][0], flags[i][1], (int)ch.status, fx_child_err(&ch));
    ASSERT_EQ(ch.term_signal, 0);
    ASSERT_NE(ch.status, 0);
    fx_child_free(&ch);
  }
  /* A device token with a line break, as the positional argument. */
  {
    fx_child ch = {.env = env};
    const char *const argv[] = {push_bin(),
                                "--host",
                                port,
                                "--ca",
                                ca,
                                "--verify-name",
                                "localhost",
                                "--cert",
                                cert,
                                "--key",
                                key,
                                "--topic",
                                "com.example.app",
                                "--alert",
                                "x",
                                TOKEN "\r\nx-injected: 1",
                                NULL};
    fx_child_start(&ch, &loop, argv);
    fx_child_wait(&ch, &loop);
    ASSERT_NE(ch.status, 0);
    fx_child_free(&ch);
  }
  ASSERT_EQ(s.requests, 0);
  /* Bulk lines: each bad field refused on its own line; the good line goes. */
  const char *bulk =
      fx_tmp_file("inject.jsonl", "{\"token\":\"" TOKEN "\",\"topic\":\"com.example.app\\r\\nx-injected: 1\"}\n"
                                  "{\"token\":\"" TOKEN "\",\"collapse_id\":\"c\\r\\nx-injected: 1\"}\n"
                                  "{\"token\":\"" TOKEN "\\r\\nx-injected: 1\"}\n"
                                  "{\"token\":\"" TOKEN "\",\"apns_id\":\"x\\r\\nx-injected: 1\"}\n"
                                  "{\"token\":\"" TOKEN "\",\"push_type\":\"alert\\nx-injected\"}\n"
                                  "{\"token\":\"" TOKEN "\",\"topic\":\"com.example.app\\u0000x-injected\"}\n"
                                  "{\"token\":\"" TOKEN "\"}\n");
  {
    fx_child ch = {.env = env};
    const char *const argv[] = {push_bin(),        "--host",  port, "--ca",   ca,   "--verify-name",
                                "localhost",       "--cert",  cert, "--key",  key,  "--topic",
                                "com.example.app", "--alert", "x",  "--bulk", bulk, NULL};
    fx_child_start(&ch, &loop, argv);
    fx_child_wait(&ch, &loop);
    printf("bulk: exit %d\n%s\n%s", (int)ch.status, fx_child_out(&ch), fx_child_err(&ch));
    ASSERT_EQ(ch.term_signal, 0);
    ASSERT_EQ(ch.status, 1); /* bad lines */
    ASSERT_TRUE(strstr(fx_child_out(&ch), "\"status\":200") != NULL);
    /* The message names the cause (it said "longer than 64 bytes" of a 17-byte value with CR LF). */
    ASSERT_TRUE(strstr(fx_child_out(&ch), "\"error\":\"APNS_EBADCOLLAPSEID\",\"message\":\"") != NULL);
    ASSERT_TRUE(strstr(fx_child_out(&ch), "longer than 64") == NULL);
    fx_child_free(&ch);
  }
  ASSERT_EQ(s.requests, 1);
  ASSERT_EQ(s.injected, 0);
  fx_mock_stop_and_close_loop(&loop, m);
  apns__certgen_free(&c);
}

/* ---- secrets never written down ---- */

/* Fails when text holds needle (named what), showing where. */
static void assert_absent(const char *text, const char *needle, const char *what) {
  const char *hit = strstr(text, needle);
  if (hit != NULL)
    test__fail(__FILE__, __LINE__, "%s \"%.40s...\" appears in:\n%.*s", what, needle,
               (int)(strlen(hit) < 200 ? strlen(hit) : 200), hit);
}

/* A piece of pem's body (16 base64 characters at a multiple of 8 into one of its lines) that text holds, copied
 * into piece; NULL when text holds none. Every line and every such window is tried, so a key that leaked whole or
 * cut anywhere is found. */
static const char *find_key_text(const char *text, const char *pem, char piece[17]) {
  const char *p = pem;
  while (*p) {
    const char *end = strchr(p, '\n');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    if (len >= 16 && strncmp(p, "-----", 5) != 0) {
      for (size_t i = 0; i + 16 <= len; i += 8) {
        memcpy(piece, p + i, 16);
        piece[16] = '\0';
        if (strstr(text, piece) != NULL) return piece;
      }
    }
    p = end ? end + 1 : p + len;
  }
  return NULL;
}

static void assert_no_key_text(const char *text, const char *pem) {
  char piece[17];
  /* The finder itself works: it finds the key in the key. */
  ASSERT_NOT_NULL(find_key_text(pem, pem, piece));
  if (find_key_text(text, pem, piece) != NULL) assert_absent(text, piece, "key text");
}

typedef struct {
  int requests;
  char tokens[8][1024]; /* the bearer tokens seen (distinct) */
  int ntokens;
} tokens_seen;

static void record_token(void *data, apns_mock_request *req) {
  tokens_seen *t = data;
  t->requests++;
  for (size_t i = 0; i < req->num_headers; i++) {
    if (strcmp(req->headers[i].name, "authorization") != 0 || strncmp(req->headers[i].value, "bearer ", 7) != 0)
      continue;
    const char *tok = req->headers[i].value + 7;
    int dup = 0;
    for (int j = 0; j < t->ntokens; j++) dup |= strcmp(t->tokens[j], tok) == 0;
    if (!dup && t->ntokens < 8) snprintf(t->tokens[t->ntokens++], sizeof t->tokens[0], "%s", tok);
  }
}

static const char *push_bin(void) {
  const char *b = getenv("APNS_PUSH_BIN");
  return b && *b ? b : APNS_PUSH_BIN_DEFAULT;
}

/* Token auth through apns-push, with progress on, accepted and refused sends, a bad line and a bad key: the output
 * has none of the tokens the server saw, no piece of the .p8, and no signature. */
TEST(sec_push_output_has_no_token_or_key) {
  uv_loop_t loop;
  apns__certgen_result c;
  apns__certgen_options co;
  apns_mock_options mo;
  tokens_seen ts;
  char err[256] = "", port[32], dir[600];
  memset(&ts, 0, sizeof ts);
  memset(&co, 0, sizeof co);
  co.token_key = 1;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  certs_in(&c, &co, dir, sizeof dir);
  apns_mock_token_key k = {"ABC123DEFG", c.token_key, NULL};
  apns_mock_options_init(&mo);
  mo.cert_pem = c.server_cert;
  mo.key_pem = c.server_key;
  mo.token_keys = &k;
  mo.num_token_keys = 1;
  mo.unregistered_prefix = "0bad";
  mo.on_request = record_token;
  mo.data = &ts;
  apns_mock *m = fx_mock_start(&loop, &mo);
  snprintf(port, sizeof port, "127.0.0.1:%d", apns_mock_port(m));
  const char *ca = fx_tmp_file("ca.pem", c.ca_cert);
  const char *p8 = fx_tmp_file("AuthKey_ABC123DEFG.p8", c.token_key);
  const char *bulk = fx_tmp_file("in.jsonl", "{\"token\":\"" TOKEN "\"}\n"
                                             "{\"token\":\"0bad" TOKEN "\"}\n"
                                             "not json at all\n"
                                             "{\"token\":\"" TOKEN "\",\"priority\":7}\n"
                                             "{\"token\":\"" TOKEN "\"}\n");
  char *env[] = {"PATH=/usr/bin:/bin", NULL};
  fx_buf all = {0};
  static const char *const key_ids[] = {"ABC123DEFG", "ZZZ123DEFG"}; /* the second: refused by the server */
  for (int run = 0; run < 2; run++) {
    fx_child ch = {.env = env};
    const char *const argv[] = {push_bin(),    "--host",     port,
                                "--ca",        ca,           "--verify-name",
                                "localhost",   "--p8",       p8,
                                "--key-id",    key_ids[run], "--team-id",
                                "DEF123GHIJ",  "--topic",    "com.example.app",
                                "--alert",     "hello",      "--progress",
                                "--list-dead", "10",         "--bulk",
                                bulk,          NULL};
    fx_child_start(&ch, &loop, argv);
    fx_child_wait(&ch, &loop);
    printf("run %d: exit %d\nstdout:\n%s\nstderr:\n%s\n", run, (int)ch.status, fx_child_out(&ch), fx_child_err(&ch));
    ASSERT_EQ(ch.term_signal, 0);
    ASSERT_EQ(ch.status, 1); /* rejected lines in both runs */
    fx_buf_add(&all, fx_child_out(&ch), ch.out.len);
    fx_buf_add(&all, fx_child_err(&ch), ch.err.len);
    fx_child_free(&ch);
  }
  /* A damaged key: refused at start; the message names the file, not its content. */
  char damaged[2048];
  snprintf(damaged, sizeof damaged, "%s", c.token_key);
  char *mid = strchr(damaged, '\n');
  ASSERT_NOT_NULL(mid);
  mid[10] = mid[10] == 'A' ? 'B' : 'A';
  const char *bad_p8 = fx_tmp_file("damaged.p8", damaged);
  {
    fx_child ch = {.env = env};
    const char *const argv[] = {push_bin(),      "--host",    port,         "--ca",    ca,
                                "--verify-name", "localhost", "--p8",       bad_p8,    "--key-id",
                                "ABC123DEFG",    "--team-id", "DEF123GHIJ", "--topic", "com.example.app",
                                "--alert",       "x",         TOKEN,        NULL};
    fx_child_start(&ch, &loop, argv);
    fx_child_wait(&ch, &loop);
    printf("damaged key: exit %d\n%s\n", (int)ch.status, fx_child_err(&ch));
    fx_buf_add(&all, fx_child_out(&ch), ch.out.len);
    fx_buf_add(&all, fx_child_err(&ch), ch.err.len);
    fx_child_free(&ch);
    assert_no_key_text(fx_buf_text(&all), damaged);
  }

  ASSERT_GE(ts.ntokens, 2); /* one per run at least: the check below looks at real tokens */
  for (int i = 0; i < ts.ntokens; i++) {
    const char *sig = strrchr(ts.tokens[i], '.');
    ASSERT_NOT_NULL(sig);
    assert_absent(fx_buf_text(&all), ts.tokens[i], "a provider token");
    assert_absent(fx_buf_text(&all), sig + 1, "a token's signature");
  }
  assert_no_key_text(fx_buf_text(&all), c.token_key);
  free(all.p);
  fx_mock_stop_and_close_loop(&loop, m);
  apns__certgen_free(&c);
  (void)err;
}

/* The library's own error messages: a damaged .p8 given as text, an encrypted client key with the wrong
 * passphrase, a client key that is not a key. None quotes the key or the passphrase. */
TEST(sec_error_messages_have_no_key_or_passphrase) {
  uv_loop_t loop;
  apns__certgen_options co;
  apns__certgen_result c;
  apns_client_options o;
  apns_tls_options tlso = APNS_TLS_OPTIONS_INIT;
  apns_client *cl = NULL;
  char err[1024], gen_err[256], *enc = NULL;
  static const char pass[] = "Tr0ub4dor&3-correct-horse";
  memset(&co, 0, sizeof co);
  co.token_key = 1;
  ASSERT_OK(apns__certgen(&co, &c, gen_err, sizeof gen_err));
  ASSERT_EQ(uv_loop_init(&loop), 0);

  char damaged[2048];
  snprintf(damaged, sizeof damaged, "%s", c.token_key);
  char *mid = strchr(damaged, '\n');
  mid[12] = mid[12] == 'Q' ? 'R' : 'Q';
  apns_client_options_init(&o);
  o.tls = &tlso;
  o.endpoint = APNS_ENDPOINT_CUSTOM;
  o.host = "127.0.0.1";
  o.port = 9;
  o.topic = "com.example.app";
  o.token_key_pem = damaged;
  o.key_id = "ABC123DEFG";
  o.team_id = "DEF123GHIJ";
  err[0] = '\0';
  ASSERT_ERR(apns_client_open(&loop, &cl, &o, err, sizeof err), APNS_EBADKEY);
  printf("damaged .p8: %s\n", err);
  ASSERT_TRUE(err[0] != '\0');
  assert_no_key_text(err, damaged);

  ASSERT_OK(apns__certgen_encrypt_key(c.client_key, pass, &enc, gen_err, sizeof gen_err));
  apns_client_options_init(&o);
  o.tls = &tlso;
  o.endpoint = APNS_ENDPOINT_CUSTOM;
  o.host = "127.0.0.1";
  o.port = 9;
  o.topic = "com.example.app";
  tlso.cert_pem = c.client_cert;
  tlso.key_pem = enc;
  tlso.key_passphrase = "not-the-passphrase-at-all";
  err[0] = '\0';
  ASSERT_ERR(apns_client_open(&loop, &cl, &o, err, sizeof err), APNS_EBADKEY);
  printf("wrong passphrase: %s\n", err);
  assert_absent(err, "not-the-passphrase-at-all", "the passphrase given");
  assert_absent(err, pass, "the passphrase");
  assert_no_key_text(err, enc);

  tlso.key_pem =
      "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIKeyBytesThatAreNotAKeyAtAllButLookLikeOne0123456789ab\n-----END EC "
      "PRIVATE KEY-----\n";
  tlso.key_passphrase = NULL;
  err[0] = '\0';
  ASSERT_NE(apns_client_open(&loop, &cl, &o, err, sizeof err), 0);
  printf("junk key: %s\n", err);
  assert_no_key_text(err, tlso.key_pem);

  apns__zero(enc, strlen(enc));
  apns__free(enc);
  apns__certgen_free(&c);
  ASSERT_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
  ASSERT_EQ(uv_loop_close(&loop), 0);
}

TEST_SUITE(security){
    TEST_ENTRY(sec_openssl_sound_server_accepted),
    TEST_ENTRY(sec_tls10_and_tls11_servers_refused),
    TEST_ENTRY(sec_cbc_only_server_refused),
    TEST_ENTRY(sec_no_h2_in_alpn_refused),
    TEST_ENTRY(sec_certificate_control_accepted),
    TEST_ENTRY(sec_expired_certificate_refused),
    TEST_ENTRY(sec_not_yet_valid_certificate_refused),
    TEST_ENTRY(sec_untrusted_certificate_refused),
    TEST_ENTRY(sec_host_name_mismatch_refused),
    TEST_ENTRY(sec_header_injection_conn_refused),
    TEST_ENTRY(sec_header_injection_authority_and_verify_name),
    TEST_ENTRY(sec_header_injection_client_refused),
    TEST_ENTRY(sec_header_injection_push_refused),
    TEST_ENTRY(sec_push_output_has_no_token_or_key),
    TEST_ENTRY(sec_error_messages_have_no_key_or_passphrase),
    TEST_SUITE_END,
};
