/* The runner itself: a test whose outside tool is missing is reported as skipped with its reason and counted
 * apart, and under APNS_TEST_NO_SKIP=1 (CI) the same skip is a failure. Runs this very binary on a test that needs
 * curl, with a PATH where nothing is found. */
#include "fixture.h"
#include "harness.h"

#include <signal.h>
#include <string.h>

/* Runs "apns-tests mock_cli_curl" with an empty PATH (and strict set or not); returns its exit status and output. */
static int run_self(int strict, char *out, size_t cap) {
  char path[600];
  snprintf(path, sizeof path, "PATH=%s/empty", test_tmpdir());
  const char *set[] = {path, strict ? "APNS_TEST_NO_SKIP=1" : NULL, NULL};
  const char *unset[] = {strict ? NULL : "APNS_TEST_NO_SKIP", NULL};
  return fx_run_self("mock_cli_curl", set, unset, out, cap);
}

TEST(harness_missing_tool_is_skipped) {
  static char out[65536];
  ASSERT_EQ(run_self(0, out, sizeof out), 0);
  if (strstr(out, "SKIP   mock_cli_curl: curl is not installed") == NULL) test__fail(__FILE__, __LINE__, "%s", out);
  ASSERT_TRUE(strstr(out, "\n0 passed, 0 failed, 1 skipped\n") != NULL);
}

TEST(harness_skip_fails_when_strict) {
  static char out[65536];
  ASSERT_EQ(run_self(1, out, sizeof out), 1);
  ASSERT_TRUE(strstr(out, "curl is not installed") != NULL);
  ASSERT_TRUE(strstr(out, "\n0 passed, 1 failed\n") != NULL);
}

/* fixture.c's child process: stdin written from input then closed, stdout and stderr collected apart, the exit
 * status; a program that is not there is an error from the start, and its handles still close; kill_after_ms
 * bounds one that hangs. */
TEST(harness_fx_child_collects_and_reports) {
  fx_child c = {0};
  c.input = "hello\n";
  ASSERT_EQ(fx_child_run(&c, (const char *const[]){"/bin/sh", "-c", "cat; echo oops >&2; exit 3", NULL}), 3);
  ASSERT_STREQ(fx_child_out(&c), "hello\n");
  ASSERT_STREQ(fx_child_err(&c), "oops\n");
  ASSERT_TRUE(c.done);
  fx_child_free(&c);

  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  memset(&c, 0, sizeof c);
  ASSERT_EQ(fx_child_try_start(&c, &loop, (const char *const[]){"/nonexistent/program", NULL}), UV_ENOENT);
  fx_child_wait(&c, &loop);
  ASSERT_STREQ(fx_child_out(&c), "");
  /* A child that would hang is killed at its bound, and says so. */
  memset(&c, 0, sizeof c);
  c.kill_after_ms = 50;
  fx_child_start(&c, &loop, (const char *const[]){"/bin/sleep", "600", NULL});
  fx_child_wait(&c, &loop);
  ASSERT_TRUE(c.killed);
  ASSERT_EQ(c.term_signal, SIGKILL);
  ASSERT_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
  ASSERT_EQ(uv_loop_close(&loop), 0);
  fx_child_free(&c);
}

TEST_SUITE(harness){
    TEST_ENTRY(harness_missing_tool_is_skipped),
    TEST_ENTRY(harness_skip_fails_when_strict),
    TEST_ENTRY(harness_fx_child_collects_and_reports),
    TEST_SUITE_END,
};
