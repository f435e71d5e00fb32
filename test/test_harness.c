/* The runner itself: a test whose outside tool is missing is reported as skipped with its reason and counted
 * apart, and under APNS_TEST_NO_SKIP=1 (CI) the same skip is a failure. Runs this very binary on a test that needs
 * curl, with a PATH where nothing is found. */
#include "harness.h"

#include <limits.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Runs "apns-tests mock_cli_curl" with an empty PATH (and strict set or not); returns its exit status and output. */
static int run_self(int strict, char *out, size_t cap) {
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  ASSERT_GT(n, 0);
  self[n] = '\0';
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    dup2(fds[1], 1);
    dup2(fds[1], 2);
    close(fds[0]);
    char path[600];
    snprintf(path, sizeof path, "%s/empty", test_tmpdir());
    setenv("PATH", path, 1);
    if (strict)
      setenv("APNS_TEST_NO_SKIP", "1", 1);
    else
      unsetenv("APNS_TEST_NO_SKIP");
    execl(self, self, "-j", "1", "mock_cli_curl", (char *)NULL);
    _exit(127);
  }
  close(fds[1]);
  size_t len = 0;
  ssize_t r;
  while (len + 1 < cap && (r = read(fds[0], out + len, cap - 1 - len)) > 0) len += (size_t)r;
  out[len] = '\0';
  close(fds[0]);
  int status;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  return WEXITSTATUS(status);
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

TEST_SUITE(harness){
    TEST_ENTRY(harness_missing_tool_is_skipped),
    TEST_ENTRY(harness_skip_fails_when_strict),
    TEST_SUITE_END,
};
