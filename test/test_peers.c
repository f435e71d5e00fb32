/* bench/peers/run, the bench of libapns beside its peers on one apns-mock: with a few hundred notifications each,
 * h2load, the pool (apns-bench), apns-push and aioapns (Debian's python3-aioapns) all report every notification
 * answered 200; and a server that refuses them all makes every client's run fail instead of giving a figure. The
 * Node peers (@parse/node-apn and apns2 from npm) stay out of the suite: CI would have to fetch them. */
#include "fixture.h"
#include "harness.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PEERS_PYTHON "/usr/bin/python3" /* Debian's: python3-aioapns is installed for it */

/* The runner needs h2load, the bench and Debian's Python with aioapns; a missing one skips, saying which. */
static void need_peers(void) {
  test_need_program("h2load");
  if (APNS_BENCH_BIN_DEFAULT[0] == '\0')
    test__fail(__FILE__, __LINE__, "apns-bench is not built (configure -Dbench=true)");
  if (access(PEERS_PYTHON, X_OK) != 0) TEST_SKIP("%s is not installed (scripts/deps installs it)", PEERS_PYTHON);
  if (system(PEERS_PYTHON " -c 'import aioapns' 2>/dev/null") != 0)
    TEST_SKIP("python3-aioapns is not installed (scripts/deps installs it)");
}

/* Runs the runner with args (NULL-terminated) to its end, its JSON into DIR/peers.json; returns its exit status
 * (its output printed when it is not 0). Bounded: killed after limit_s seconds, which fails the test. */
static int run_peers(const char *const *args, int limit_s, char *json_path, size_t json_len) {
  char runner[512], build[512];
  snprintf(runner, sizeof runner, "%s/bench/peers/run", APNS_SOURCE_DIR);
  snprintf(build, sizeof build, "%s", APNS_BUILD_DIR);
  snprintf(json_path, json_len, "%s/peers.json", test_tmpdir());
  const char *argv[32];
  size_t na = 0;
  argv[na++] = PEERS_PYTHON;
  argv[na++] = runner;
  argv[na++] = "--build";
  argv[na++] = build;
  argv[na++] = "--json";
  argv[na++] = json_path;
  for (size_t i = 0; args[i] && na < 31; i++) argv[na++] = args[i];
  argv[na] = NULL;
  fx_child c;
  memset(&c, 0, sizeof c);
  c.kill_after_ms = (uint64_t)limit_s * 1000;
  int code = fx_child_run(&c, argv);
  if (code != 0) fprintf(stderr, "bench/peers/run exited %d:\n%s%s\n", code, fx_child_out(&c), fx_child_err(&c));
  fx_child_free(&c);
  return code;
}

static json_t *clients_row(json_t *root, const char *name) {
  size_t i;
  json_t *row;
  json_array_foreach(json_object_get(root, "clients"), i, row) {
    if (strcmp(json_string_value(json_object_get(row, "client")), name) == 0) return row;
  }
  return NULL;
}

static const char *const SMOKE_CLIENTS[] = {"h2load", "pool", "apns-push", "aioapns"};

TEST(peers_every_client_counts_its_200s) {
  need_peers();
  char json_path[600];
  const char *args[] = {
      "--n", "1000", "--slow-n", "200", "--runs", "1", "--only", "h2load,pool,apns-push,aioapns", "--require", NULL};
  ASSERT_EQ(run_peers(args, 120 * test_time_factor(), json_path, sizeof json_path), 0);
  json_error_t jerr;
  json_t *root = json_load_file(json_path, 0, &jerr);
  ASSERT_NOT_NULL(root);
  ASSERT_EQ(json_array_size(json_object_get(root, "failures")), 0);
  ASSERT_EQ(json_object_size(json_object_get(root, "missing")), 0);
  ASSERT_EQ(json_array_size(json_object_get(root, "clients")), 4);
  for (size_t i = 0; i < 4; i++) {
    json_t *row = clients_row(root, SMOKE_CLIENTS[i]);
    ASSERT_NOT_NULL(row);
    int n = strcmp(SMOKE_CLIENTS[i], "aioapns") == 0 ? 200 : 1000;
    ASSERT_EQ(json_integer_value(json_object_get(row, "n")), n);
    ASSERT_EQ(json_integer_value(json_object_get(row, "ok")), n); /* one run: every notification a 200 */
    ASSERT_EQ(json_integer_value(json_object_get(row, "connections")), 1);
    ASSERT_TRUE(json_number_value(json_object_get(row, "rate")) > 0);
    ASSERT_TRUE(json_number_value(json_object_get(row, "cpu_us")) > 0);
    ASSERT_TRUE(json_number_value(json_object_get(row, "rate_vs_h2load")) > 0);
  }
  ASSERT_TRUE(json_number_value(json_object_get(clients_row(root, "h2load"), "rate_vs_h2load")) == 1.0);
  json_decref(root);
}

TEST(peers_refused_notifications_fail_the_run) {
  need_peers();
  char json_path[600];
  /* The mock answers 400 BadDeviceToken to the bench's token: no client may report a rate. */
  const char *args[] = {"--n",
                        "200",
                        "--slow-n",
                        "50",
                        "--runs",
                        "1",
                        "--only",
                        "h2load,pool,apns-push,aioapns",
                        "--mock-arg=--bad-prefix",
                        "--mock-arg=4f",
                        NULL};
  ASSERT_EQ(run_peers(args, 120 * test_time_factor(), json_path, sizeof json_path), 1);
  json_error_t jerr;
  json_t *root = json_load_file(json_path, 0, &jerr);
  ASSERT_NOT_NULL(root);
  ASSERT_EQ(json_array_size(json_object_get(root, "clients")), 0);
  json_t *failures = json_object_get(root, "failures");
  ASSERT_EQ(json_array_size(failures), 4);
  for (size_t i = 0; i < 4; i++) {
    int seen = 0;
    size_t k;
    json_t *f;
    json_array_foreach(failures, k, f) {
      if (strcmp(json_string_value(json_object_get(f, "client")), SMOKE_CLIENTS[i]) == 0) seen = 1;
    }
    ASSERT_TRUE(seen);
  }
  json_decref(root);
}

TEST_SUITE(peers){
    TEST_ENTRY(peers_every_client_counts_its_200s),
    TEST_ENTRY(peers_refused_notifications_fail_the_run),
    TEST_SUITE_END,
};
