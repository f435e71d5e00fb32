/* The bench builds and runs: apns-bench (spawned, with apns-mock as its own child process) sends a few thousand
 * notifications, measures memory on a small queue, and its JSON report is sane. h2load is compared when installed. */
#include "harness.h"

#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static const char *bench_bin(void) {
  const char *b = getenv("APNS_BENCH_BIN");
  return b && *b ? b : APNS_BENCH_BIN_DEFAULT;
}

/* Runs argv with stdout captured into out (NUL-terminated); returns the exit status (128 + signal when killed).
 * Bounded: the child is killed after limit_s seconds. */
static int run_capture(char *const argv[], char *out, size_t cap, int limit_s) {
  int fds[2];
  pid_t pid;
  posix_spawn_file_actions_t fa;
  ASSERT_EQ(pipe(fds), 0);
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_addclose(&fa, fds[0]);
  posix_spawn_file_actions_addclose(&fa, fds[1]);
  int rv = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  close(fds[1]);
  ASSERT_EQ(rv, 0);
  size_t got = 0;
  time_t until = time(NULL) + limit_s;
  for (;;) {
    struct pollfd p = {fds[0], POLLIN, 0};
    if (time(NULL) > until) {
      kill(pid, SIGKILL);
      break;
    }
    if (poll(&p, 1, 500) <= 0) continue;
    ssize_t n = read(fds[0], out + got, cap - 1 - got);
    if (n <= 0) break;
    got += (size_t)n;
    if (got == cap - 1) break;
  }
  close(fds[0]);
  out[got] = '\0';
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static double num(json_t *obj, const char *path) {
  /* "a.b.c" */
  char buf[128], *save = NULL;
  snprintf(buf, sizeof buf, "%s", path);
  json_t *v = obj;
  for (char *k = strtok_r(buf, ".", &save); k; k = strtok_r(NULL, ".", &save)) v = json_object_get(v, k);
  if (!json_is_number(v)) test__fail(__FILE__, __LINE__, "JSON field %s missing or not a number", path);
  return json_number_value(v);
}

/* Built without the bench (-Dbench=false): a missing tool fails, as elsewhere in the suite. */
#define REQUIRE_BENCH()                                                                                              \
  do {                                                                                                               \
    if (bench_bin()[0] == '\0') test__fail(__FILE__, __LINE__, "apns-bench is not built (configure -Dbench=true)");  \
  } while (0)

TEST(bench_smoke_json) {
  static char out[1 << 16];
  REQUIRE_BENCH();
  char *argv[] = {(char *)bench_bin(), "-n", "2000",   "--runs", "1", "--mem-n", "20000",
                  "--deadline",        "20", "--json", NULL};
  int status = run_capture(argv, out, sizeof out, 60);
  if (status != 0) printf("apns-bench exit %d, stdout:\n%s\n", status, out);
  ASSERT_EQ(status, 0);
  json_error_t jerr;
  json_t *root = json_loads(out, 0, &jerr);
  if (root == NULL) printf("not JSON (%s):\n%s\n", jerr.text, out);
  ASSERT_NOT_NULL(root);

  ASSERT_EQ((int)num(root, "config.n"), 2000);
  json_t *main_cmp = json_object_get(root, "main");
  ASSERT_NOT_NULL(main_cmp);
  ASSERT_EQ((int)num(main_cmp, "ours.accepted"), 2000);
  ASSERT_EQ((int)num(main_cmp, "ours.failed"), 0);
  ASSERT_TRUE(num(main_cmp, "ours.rate") > 0);
  ASSERT_TRUE(num(main_cmp, "ours.cpu_us_per_notification") > 0);
  ASSERT_TRUE(num(main_cmp, "ours.latency_us.p50") > 0);
  ASSERT_TRUE(num(main_cmp, "ours.latency_us.p99") >= num(main_cmp, "ours.latency_us.p50"));
  ASSERT_TRUE(num(main_cmp, "ours.allocs_per_notification") > 0);
  ASSERT_TRUE(num(main_cmp, "ours.allocs_per_notification") < 50);
  ASSERT_TRUE(num(main_cmp, "ours.peak_rss_kb") > 0);

  json_t *h2 = json_object_get(main_cmp, "h2load");
  ASSERT_NOT_NULL(h2);
  if (json_is_true(json_object_get(h2, "ran"))) {
    ASSERT_TRUE(json_is_true(json_object_get(h2, "ok")));
    ASSERT_EQ((int)num(h2, "succeeded"), 2000);
    ASSERT_TRUE(num(h2, "rate") > 0);
    ASSERT_TRUE(num(main_cmp, "ratio.rate") > 0);
    ASSERT_TRUE(num(main_cmp, "ratio.cpu") > 0);
  } else {
    test__fail(__FILE__, __LINE__, "h2load did not run: %s (scripts/deps installs nghttp2-client)",
               json_string_value(json_object_get(h2, "reason")));
  }

  ASSERT_TRUE(num(root, "latency.half_rate") > 0);
  ASSERT_EQ(num(root, "latency.accepted"), num(root, "latency.n"));
  ASSERT_TRUE(num(root, "latency.p99_us") > 0);
  ASSERT_EQ((int)num(root, "memory.queued"), 20000);
  ASSERT_EQ((int)num(root, "memory.canceled"), 20000);
  ASSERT_TRUE(num(root, "memory.heap_bytes_per_notification") > num(root, "memory.payload_bytes"));
  ASSERT_TRUE(num(root, "memory.heap_bytes_per_notification") < 4096);
  json_decref(root);
}

TEST(bench_bad_option) {
  static char out[4096];
  REQUIRE_BENCH();
  char *argv[] = {(char *)bench_bin(), "-n", "zero", NULL};
  ASSERT_EQ(run_capture(argv, out, sizeof out, 10), 1);
  char *argv2[] = {(char *)bench_bin(), "--no-such-option", NULL};
  ASSERT_EQ(run_capture(argv2, out, sizeof out, 10), 2);
}

TEST_SUITE(bench){
    TEST_ENTRY(bench_smoke_json),
    TEST_ENTRY(bench_bad_option),
    TEST_SUITE_END,
};
