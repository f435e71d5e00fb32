/* The bench builds and runs: apns-bench (spawned, with apns-mock as its own child process) sends a few thousand
 * notifications, measures memory on a small queue, and its JSON report is sane. h2load is compared when installed. */
#include "fixture.h"
#include "harness.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static const char *bench_bin(void) {
  const char *b = getenv("APNS_BENCH_BIN");
  return b && *b ? b : APNS_BENCH_BIN_DEFAULT;
}

/* Runs argv with stdout captured into out (NUL-terminated, cut at cap), stderr on ours; returns the exit status.
 * Bounded: the child is killed after limit_s seconds, and the test fails. */
static int run_capture(char *const argv[], char *out, size_t cap, int limit_s) {
  fx_child c = {0};
  c.stderr_fd = 2;
  c.kill_after_ms = (uint64_t)limit_s * 1000;
  int status = fx_child_run(&c, (const char *const *)argv);
  snprintf(out, cap, "%s", fx_child_out(&c));
  fx_child_free(&c);
  return status;
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
