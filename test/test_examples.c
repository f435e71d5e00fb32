/* The examples in examples/ (the aapns Quickstart, mid-level and low-level examples in C) run against apns-mock
 * as a user would run them, and say what they promise. */
#include "fixture.h"

#include <stdlib.h>

typedef struct {
  uv_process_t proc;
  uv_pipe_t out;
  char buf[4096];
  size_t len;
  int exited, closed;
  int64_t status;
} run;

static void on_alloc(uv_handle_t *h, size_t n, uv_buf_t *b) {
  run *r = h->data;
  (void)n;
  *b = uv_buf_init(r->buf + r->len, (unsigned)(sizeof r->buf - 1 - r->len));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  run *r = s->data;
  (void)b;
  if (n > 0) {
    r->len += (size_t)n;
    r->buf[r->len] = '\0';
  } else if (n < 0) {
    uv_close((uv_handle_t *)s, NULL);
    r->closed = 1;
  }
}

static void on_exit_cb(uv_process_t *p, int64_t status, int sig) {
  run *r = p->data;
  (void)sig;
  r->status = status;
  r->exited = 1;
  uv_close((uv_handle_t *)p, NULL);
}

/* Runs examples/NAME against the mock until it exits; returns its exit status, output in r->buf. */
static int run_example(uv_loop_t *loop, run *r, const char *name, apns_mock *mock, const char *dir) {
  char bin[512], hostport[64], cert[512], key[512], ca[512];
  ASSERT_TRUE(APNS_EXAMPLES_DIR[0] != '\0'); /* built with -Dexamples=true */
  snprintf(bin, sizeof bin, "%s/%s", APNS_EXAMPLES_DIR, name);
  snprintf(hostport, sizeof hostport, "127.0.0.1:%d", apns_mock_port(mock));
  snprintf(cert, sizeof cert, "%s/client.pem", dir);
  snprintf(key, sizeof key, "%s/client-key.pem", dir);
  snprintf(ca, sizeof ca, "%s/ca.pem", dir);
  char *args[] = {bin, hostport, cert, key, "0123456789abcdef", ca, "localhost", NULL};
  memset(r, 0, sizeof *r);
  uv_stdio_container_t stdio[3];
  ASSERT_EQ(uv_pipe_init(loop, &r->out, 0), 0);
  r->out.data = r->proc.data = r;
  stdio[0].flags = UV_IGNORE;
  stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
  stdio[1].data.stream = (uv_stream_t *)&r->out;
  stdio[2].flags = UV_INHERIT_FD;
  stdio[2].data.fd = 2;
  uv_process_options_t po;
  memset(&po, 0, sizeof po);
  po.file = bin;
  po.args = args;
  po.exit_cb = on_exit_cb;
  po.stdio = stdio;
  po.stdio_count = 3;
  ASSERT_EQ(uv_spawn(loop, &r->proc, &po), 0);
  ASSERT_EQ(uv_read_start((uv_stream_t *)&r->out, on_alloc, on_read), 0);
  while (!r->exited || !r->closed) ASSERT_NE(uv_run(loop, UV_RUN_ONCE), 0);
  return (int)r->status;
}

TEST(examples_three_levels_against_the_mock) {
  uv_loop_t loop;
  apns__certgen_result certs;
  apns_mock_options mo;
  char err[256];
  run r;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  fx_certs(&certs, 0);
  ASSERT_OK(apns__certgen_write_dir(test_tmpdir(), &certs, err, sizeof err));
  fx_mock_options(&mo, &certs, 1);
  apns_mock *mock = fx_mock_start(&loop, &mo);

  ASSERT_EQ(run_example(&loop, &r, "quickstart", mock, test_tmpdir()), 0);
  ASSERT_EQ(strncmp(r.buf, "Sent push notification with ID ", 31), 0);
  ASSERT_EQ(strlen(r.buf), 31 + 36 + 1); /* a UUID and a newline */

  ASSERT_EQ(run_example(&loop, &r, "pool", mock, test_tmpdir()), 0);
  ASSERT_TRUE(strstr(r.buf, "accepted, apns-id ") != NULL);
  ASSERT_TRUE(strstr(r.buf, "after 1 attempt(s)") != NULL);

  ASSERT_EQ(run_example(&loop, &r, "conn", mock, test_tmpdir()), 0);
  ASSERT_STREQ(r.buf, "10 of 10 accepted on one connection\n");

  apns_mock_stats st;
  apns_mock_get_stats(mock, &st);
  ASSERT_EQ(st.status[200], 1 + 1 + 10);
  ASSERT_EQ(st.handshake_failures, 0);
  fx_mock_stop_and_close_loop(&loop, mock);
  apns__certgen_free(&certs);
}

TEST_SUITE(examples){
    TEST_ENTRY(examples_three_levels_against_the_mock),
    TEST_SUITE_END,
};
