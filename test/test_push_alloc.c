/* Memory runs out at every point of an apns-push bulk run in turn: for each n up to the allocations of a small run,
 * the n-th allocation and every later one fail (test_alloc_fail_after), apns-push's own (its pending records, the
 * input buffer, the result writer; its test build maps them onto libapns's allocator, tools/apns-push/meson.build)
 * and the library's alike. The command runs in this process (push_main) against apns-mock in a child of its own.
 *
 * Whatever fails, the run either stops before reading a line (exit 2, saying "out of memory" or APNS_ENOMEM on
 * stderr, no result line) or gives every non-blank input line exactly one result line, each valid JSON: a
 * response, or an error (APNS_ENOMEM among those allowed). Nothing leaks (the harness's live count is back where it
 * was), no handle is left on its loop (apns-push says "internal: handles left open" otherwise), and with no limit
 * every line is accepted. */
#include "fixture.h"

#include "push.h"
#include <apns.h>
#include <fcntl.h>
#include <jansson.h>
#include <sys/stat.h>
#include <unistd.h>

#define TOK "00fc13adff785122b4ad28809a3420982341241421348097878e577c991de8f0"
#define TOK2 "11fc13adff785122b4ad28809a3420982341241421348097878e577c991de8f0"

/* Six lines: four notifications (one with its own payload), a malformed one, a blank one (no result). */
static const char input[] = "{\"token\":\"" TOK "\"}\n"
                            "{\"token\":\"" TOK2 "\",\"payload\":{\"aps\":{\"alert\":\"own\"}}}\n"
                            "{oops\n"
                            "\n"
                            "{\"token\":\"" TOK "\",\"priority\":5}\n"
                            "{\"token\":\"" TOK2 "\"}\n";
static const int result_lines[] = {1, 2, 3, 5, 6};
#define NRESULTS 5
#define NSENDS 4

typedef struct {
  int rc;
  long allocs;
  int ok; /* lines answered 200 */
  int enomem;
  int results; /* result lines */
} push_run;

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  ASSERT_NOT_NULL(f);
  static char buf[1 << 16];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  buf[n] = '\0';
  fclose(f);
  return buf;
}

/* An error a line's result may carry when memory ran out somewhere (the deadline's when no connection could be
 * made in time, the cancellation of the give-up that follows). */
static int allowed_error(const char *e) {
  static const char *const ok[] = {"APNS_ENOMEM", "APNS_ETIMEDOUT", "APNS_ECLOSED", "APNS_ECANCELED",
                                   "APNS_ESTOPPED"};
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
    if (strcmp(e, ok[i]) == 0) return 1;
  return 0;
}

/* Checks the result file of a run that got past its setup: each expected line exactly once, each valid. */
static void check_results(long budget, const char *text, push_run *r) {
  int seen[8] = {0};
  const char *p = text;
  while (*p) {
    const char *nl = strchr(p, '\n');
    if (nl == NULL) test__fail(__FILE__, __LINE__, "budget %ld: a result line without its newline: %s", budget, p);
    json_error_t je;
    json_t *j = json_loadb(p, (size_t)(nl - p), 0, &je);
    if (j == NULL) test__fail(__FILE__, __LINE__, "budget %ld: not JSON: %.*s", budget, (int)(nl - p), p);
    json_int_t line = json_integer_value(json_object_get(j, "line"));
    const char *err = json_string_value(json_object_get(j, "error"));
    json_t *status = json_object_get(j, "status");
    if (line < 1 || line > 7) test__fail(__FILE__, __LINE__, "budget %ld: line %lld", budget, (long long)line);
    seen[line]++;
    if (line == 3) {
      /* The malformed line: a parse error, whatever else happened. */
      if (err == NULL) test__fail(__FILE__, __LINE__, "budget %ld: line 3 has no error", budget);
    } else if (err) {
      if (!allowed_error(err))
        test__fail(__FILE__, __LINE__, "budget %ld: line %lld: %s", budget, (long long)line, err);
      r->enomem += strcmp(err, "APNS_ENOMEM") == 0;
    } else {
      if (!json_is_integer(status)) test__fail(__FILE__, __LINE__, "budget %ld: no status nor error", budget);
      if (json_integer_value(status) == 200) r->ok++;
    }
    json_decref(j);
    r->results++;
    p = nl + 1;
  }
  for (int i = 0; i < NRESULTS; i++)
    if (seen[result_lines[i]] != 1)
      test__fail(__FILE__, __LINE__, "budget %ld: line %d has %d result lines:\n%s", budget, result_lines[i],
                 seen[result_lines[i]], text);
  ASSERT_EQ(r->results, NRESULTS);
}

/* One run of apns-push with the allocator limited to budget allocations (-1: no limit). Its stderr goes to a file
 * of its own, checked here. */
static push_run one_run(const char *dir, int port, long budget, const char *timeout) {
  char hostport[32], ca[600], cert[600], key[600], in[600], out[600], errf[600];
  push_run r;
  memset(&r, 0, sizeof r);
  snprintf(hostport, sizeof hostport, "127.0.0.1:%d", port);
  snprintf(ca, sizeof ca, "%s/ca.pem", dir);
  snprintf(cert, sizeof cert, "%s/client.pem", dir);
  snprintf(key, sizeof key, "%s/client-key.pem", dir);
  snprintf(in, sizeof in, "%s/in.jsonl", test_tmpdir());
  snprintf(out, sizeof out, "%s/results.jsonl", test_tmpdir());
  snprintf(errf, sizeof errf, "%s/stderr.txt", test_tmpdir());
  /* getopt permutes argv: a fresh copy each run. */
  char *argv[] = {"apns-push",
                  "--host",
                  hostport,
                  "--verify-name",
                  "localhost",
                  "--ca",
                  ca,
                  "--cert",
                  cert,
                  "--key",
                  key,
                  "--topic",
                  "com.example.app",
                  "--alert",
                  "hello",
                  "--bulk",
                  in,
                  "--results",
                  out,
                  "--timeout",
                  (char *)timeout,
                  "--connections",
                  "1",
                  "--no-progress",
                  NULL};
  int argc = (int)(sizeof argv / sizeof argv[0]) - 1;
  fflush(stderr);
  int saved = dup(2), fd = open(errf, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  ASSERT_GE(saved, 0);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(dup2(fd, 2), 2);
  close(fd);
  if (budget >= 0)
    test_alloc_fail_after(budget);
  else
    test_alloc_reset();
  r.rc = push_main(argc, argv);
  r.allocs = test_alloc_count();
  test_alloc_reset();
  fflush(stderr);
  ASSERT_EQ(dup2(saved, 2), 2);
  close(saved);
  char *err = strdup(slurp(errf));
  ASSERT_NOT_NULL(err);
  test_secrets_assert_absent("apns-push's stderr", err); /* APNS_TEST_SECRETS=1: the keys are recorded */
  if (strstr(err, "internal:") != NULL) test__fail(__FILE__, __LINE__, "budget %ld:\n%s", budget, err);
  const char *text = slurp(out);
  if (r.rc == PUSH_EXIT_USAGE) {
    /* Stopped at its setup: nothing read, nothing written, and it said why. */
    if (text[0] != '\0') test__fail(__FILE__, __LINE__, "budget %ld: exit 2 with results:\n%s", budget, text);
    if (strstr(err, "out of memory") == NULL && strstr(err, "APNS_ENOMEM") == NULL &&
        strstr(err, "not enough memory") == NULL)
      test__fail(__FILE__, __LINE__, "budget %ld: exit 2 without saying memory ran out:\n%s", budget, err);
  } else {
    if (r.rc != PUSH_EXIT_OK && r.rc != PUSH_EXIT_FAILED)
      test__fail(__FILE__, __LINE__, "budget %ld: exit %d:\n%s", budget, r.rc, err);
    check_results(budget, text, &r);
  }
  free(err);
  return r;
}

TEST(push_allocation_failures) {
  apns__certgen_result certs;
  apns_mock_options mo;
  char dir[600], why[256] = "";
  pid_t pid;
  snprintf(dir, sizeof dir, "%s/certs", test_tmpdir());
  ASSERT_EQ(mkdir(dir, 0700), 0);
  fx_certs(&certs, 0);
  if (apns__certgen_write_dir(dir, &certs, why, sizeof why) != 0) test__fail(__FILE__, __LINE__, "%s", why);
  char in[600];
  snprintf(in, sizeof in, "%s/in.jsonl", test_tmpdir());
  FILE *f = fopen(in, "w");
  ASSERT_NOT_NULL(f);
  ASSERT_EQ(fwrite(input, 1, sizeof input - 1, f), sizeof input - 1);
  ASSERT_EQ(fclose(f), 0);
  fx_mock_options(&mo, &certs, 1);
  int port = fx_mock_fork(&mo, &pid);
  long base = test_alloc_live();

  /* Without a limit every line goes through; the count tells how far to sweep. */
  uint64_t t0 = uv_hrtime();
  push_run full = one_run(dir, port, -1, "20");
  ASSERT_EQ(full.rc, PUSH_EXIT_FAILED); /* the malformed line */
  ASSERT_EQ(full.ok, NSENDS);
  ASSERT_EQ(test_alloc_live(), base);
  ASSERT_GT(full.allocs, 50);
  /* The sweep's deadline: a line stuck behind a connection that could not be made ends soon, yet a run that can
   * go through has time to (twice the full run, which is slow under the sanitizers). */
  double deadline = 2.0 * (double)(uv_hrtime() - t0) / 1e9;
  if (deadline < 0.06) deadline = 0.06;
  if (deadline > 2) deadline = 2;
  char timeout[32];
  snprintf(timeout, sizeof timeout, "%.3f", deadline);
  printf("a run makes %ld allocations; deadline %s s\n", full.allocs, timeout);

  /* Every n under native speed; under valgrind every 7th, so the test stays in its time. */
  long step = test_time_factor() > 1 ? 7 : 1;
  int runs = 0, setup_failed = 0, enomem_lines = 0, complete = 0;
  for (long n = 0; n <= full.allocs; n += step) {
    push_run r = one_run(dir, port, n, timeout);
    if (test_alloc_live() != base)
      test__fail(__FILE__, __LINE__, "budget %ld: %ld allocations leaked", n, test_alloc_live() - base);
    runs++;
    setup_failed += r.rc == PUSH_EXIT_USAGE;
    enomem_lines += r.enomem;
    complete += r.ok == NSENDS;
  }
  printf("%d runs: %d stopped at setup, %d result lines with APNS_ENOMEM, %d went through whole\n", runs,
         setup_failed, enomem_lines, complete);
  /* The sweep reached both the setup and the lines. */
  ASSERT_GT(setup_failed, 0);
  ASSERT_GT(runs - setup_failed, 0);
  ASSERT_GT(enomem_lines, 0);
  fx_mock_kill(pid);
  apns__certgen_free(&certs);
}

TEST_SUITE(push_alloc){
    TEST_ENTRY(push_allocation_failures),
    TEST_SUITE_END,
};
