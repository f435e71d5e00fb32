/* The examples in examples/ (the aapns Quickstart, mid-level and low-level examples in C) run against apns-mock
 * as a user would run them, and say what they promise. */
#include "fixture.h"

#include <stdlib.h>

/* Runs examples/NAME against the mock until it exits; returns its exit status, its stdout in r (freed first: r
 * may hold a previous run's), its stderr on ours. */
static int run_example(uv_loop_t *loop, fx_child *r, const char *name, apns_mock *mock, const char *dir) {
  char bin[512], hostport[64], cert[512], key[512], ca[512];
  ASSERT_TRUE(APNS_EXAMPLES_DIR[0] != '\0'); /* built with -Dexamples=true */
  snprintf(bin, sizeof bin, "%s/%s", APNS_EXAMPLES_DIR, name);
  snprintf(hostport, sizeof hostport, "127.0.0.1:%d", apns_mock_port(mock));
  snprintf(cert, sizeof cert, "%s/client.pem", dir);
  snprintf(key, sizeof key, "%s/client-key.pem", dir);
  snprintf(ca, sizeof ca, "%s/ca.pem", dir);
  const char *const args[] = {bin, hostport, cert, key, "0123456789abcdef", ca, "localhost", NULL};
  fx_child_free(r);
  memset(r, 0, sizeof *r);
  r->stderr_fd = 2;
  fx_child_start(r, loop, args);
  fx_child_wait(r, loop);
  return (int)r->status;
}

TEST(examples_three_levels_against_the_mock) {
  uv_loop_t loop;
  apns__certgen_result certs;
  apns_mock_options mo;
  char err[256];
  fx_child r = {0};
  ASSERT_EQ(uv_loop_init(&loop), 0);
  fx_certs(&certs, 0);
  ASSERT_OK(apns__certgen_write_dir(test_tmpdir(), &certs, err, sizeof err));
  fx_mock_options(&mo, &certs, 1);
  apns_mock *mock = fx_mock_start(&loop, &mo);

  ASSERT_EQ(run_example(&loop, &r, "quickstart", mock, test_tmpdir()), 0);
  ASSERT_EQ(strncmp(fx_child_out(&r), "Sent push notification with ID ", 31), 0);
  ASSERT_EQ(r.out.len, 31 + 36 + 1); /* a UUID and a newline */

  ASSERT_EQ(run_example(&loop, &r, "pool", mock, test_tmpdir()), 0);
  ASSERT_TRUE(strstr(fx_child_out(&r), "accepted, apns-id ") != NULL);
  ASSERT_TRUE(strstr(fx_child_out(&r), "after 1 attempt(s)") != NULL);

  ASSERT_EQ(run_example(&loop, &r, "conn", mock, test_tmpdir()), 0);
  ASSERT_STREQ(fx_child_out(&r), "10 of 10 accepted on one connection\n");

  apns_mock_stats st;
  apns_mock_get_stats(mock, &st);
  ASSERT_EQ(st.status[200], 1 + 1 + 10);
  ASSERT_EQ(st.handshake_failures, 0);
  fx_child_free(&r);
  fx_mock_stop_and_close_loop(&loop, mock);
  apns__certgen_free(&certs);
}

TEST_SUITE(examples){
    TEST_ENTRY(examples_three_levels_against_the_mock),
    TEST_SUITE_END,
};
