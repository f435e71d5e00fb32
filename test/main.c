/* libapns test runner.
 *
 *   apns-tests [-j N] [-v] [--list] [NAME | SUITE | PREFIX* ...]
 *
 * Runs each selected test in a child process of its own (so a crash, a leak report or a hang stays with its test),
 * at most N at once (default 2), each with a time limit (APNS_TEST_TIMEOUT seconds, default 120). A failing test's
 * output is printed; with -v every test's. A test whose outside tool is missing is skipped (TEST_SKIP) and counted
 * apart. The last line is "N passed, N failed", with ", N skipped" after it when any was; the exit status is 1 when
 * any failed.
 *
 * With APNS_TEST_SECRETS=1 (CI sets it), each test runs with APNS_TEST_SECRETS_FILE naming a file of its own, where
 * the test support library records every private key it makes and every provider token the mock verifies
 * (tools/support/secrets.h); a test whose output holds any of them fails, even if it passed otherwise. */
/* nftw (removing each test's temporary directory) is XSI; memmem (the secrets check) is GNU. */
#define _GNU_SOURCE
#include "harness.h"

#include <apns.h>
#include <errno.h>
#include <ftw.h>
#include <malloc.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SUITE(m) extern const test_case test_suite_##m[];
#include "suites.h"
#undef SUITE

static const struct {
  const char *name;
  const test_case *cases;
} suites[] = {
#define SUITE(m) {#m, test_suite_##m},
#include "suites.h"
#undef SUITE
};
#define NSUITES (sizeof(suites) / sizeof(suites[0]))

/* ---- assertion support ---- */
void test__fail(const char *file, int line, const char *fmt, ...) {
  va_list ap;
  fflush(stdout);
  fprintf(stderr, "%s:%d: assertion failed: ", file, line);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  fflush(stderr);
  abort();
}

/* ---- allocation counting and failure injection ---- */
static long alloc_budget = -1; /* -1: never fail */
static long alloc_count, alloc_live;
static size_t alloc_live_bytes; /* malloc_usable_size of each live block: what the block really holds */
static long alloc_fail_nth;     /* > 0: that many allocations from now, the last one fails */

static int alloc_allowed(void) {
  alloc_count++;
  if (alloc_fail_nth > 0 && --alloc_fail_nth == 0) return 0;
  if (alloc_budget < 0) return 1;
  if (alloc_budget == 0) return 0;
  alloc_budget--;
  return 1;
}
static void *counted(void *p) {
  if (p) alloc_live++, alloc_live_bytes += malloc_usable_size(p);
  return p;
}
static void *t_malloc(size_t n) {
  if (!alloc_allowed()) return NULL;
  return counted(malloc(n));
}
static void *t_calloc(size_t c, size_t n) {
  if (!alloc_allowed()) return NULL;
  return counted(calloc(c, n));
}
static void *t_realloc(void *old, size_t n) {
  if (!alloc_allowed()) return NULL;
  size_t was = old ? malloc_usable_size(old) : 0;
  void *p = realloc(old, n);
  if (p == NULL) {
    if (old && n == 0) alloc_live--, alloc_live_bytes -= was; /* glibc's realloc(p, 0) frees p */
    return NULL;
  }
  if (old) alloc_live--, alloc_live_bytes -= was;
  return counted(p);
}
static void t_free(void *p) {
  if (p) alloc_live--, alloc_live_bytes -= malloc_usable_size(p);
  free(p);
}

void test_alloc_fail_after(long n) {
  alloc_budget = n;
  alloc_count = 0;
}
void test_alloc_fail_nth(long n) {
  alloc_fail_nth = n;
}
void test_alloc_reset(void) {
  alloc_fail_nth = 0;
  alloc_budget = -1;
  alloc_count = 0;
}
long test_alloc_count(void) {
  return alloc_count;
}
long test_alloc_live(void) {
  return alloc_live;
}
size_t test_alloc_live_bytes(void) {
  return alloc_live_bytes;
}

int test_time_factor(void) {
  const char *f = getenv("APNS_TEST_TIME_FACTOR"), *preload = getenv("LD_PRELOAD");
  if (f && atoi(f) > 0) return atoi(f);
  if (preload && (strstr(preload, "vgpreload") || strstr(preload, "valgrind"))) return 20;
  return 1;
}

/* ---- skipping a test whose tool is missing ---- */
#define TEST__SKIP_STATUS 77

void test__skip(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  printf("skipped: ");
  vprintf(fmt, ap);
  printf("\n");
  va_end(ap);
  fflush(stdout);
  const char *strict = getenv("APNS_TEST_NO_SKIP");
  if (strict && strcmp(strict, "1") == 0) {
    printf("APNS_TEST_NO_SKIP=1: a skip is a failure here\n");
    fflush(stdout);
    exit(1);
  }
  exit(TEST__SKIP_STATUS);
}

const char *test_need_program(const char *name) {
  static char found[1024];
  const char *path = getenv("PATH");
  char dirs[4096];
  snprintf(dirs, sizeof dirs, "%s:/usr/sbin:/sbin", path && *path ? path : "/usr/bin:/bin");
  for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
    snprintf(found, sizeof found, "%s/%s", *d ? d : ".", name);
    if (access(found, X_OK) == 0) return found;
  }
  test__skip("%s is not installed (scripts/deps installs it)", name);
}

/* ---- per-test temporary directory ---- */
static char tmpdir[256];
const char *test_tmpdir(void) {
  return tmpdir;
}
static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st, (void)flag, (void)ftw;
  return remove(path);
}

/* ---- secrets in the output ---- */
size_t test_secrets_scan(const char *secrets_path, const char *text, size_t len, char *kind, size_t kind_cap) {
  FILE *f = secrets_path ? fopen(secrets_path, "r") : NULL;
  char line[1100];
  size_t found = 0;
  if (f == NULL) return 0;
  while (fgets(line, sizeof line, f)) {
    line[strcspn(line, "\n")] = '\0';
    char *tab = strchr(line, '\t');
    if (tab == NULL || tab[1] == '\0') continue;
    *tab = '\0';
    if (memmem(text, len, tab + 1, strlen(tab + 1)) == NULL) continue;
    if (found++ == 0 && kind && kind_cap) snprintf(kind, kind_cap, "%s", line);
  }
  fclose(f);
  return found;
}

void test_secrets_assert_absent(const char *what, const char *text) {
  char kind[64] = "";
  size_t n = test_secrets_scan(getenv("APNS_TEST_SECRETS_FILE"), text, strlen(text), kind, sizeof kind);
  if (n > 0) test__fail(__FILE__, __LINE__, "%s holds %zu recorded secrets (the first a %s)", what, n, kind);
}

/* ---- the runner ---- */
static int secrets_check; /* APNS_TEST_SECRETS=1 */

typedef struct {
  const char *name;
  void (*fn)(void);
  pid_t pid;
  FILE *out;
  char dir[256];
  char secrets[272]; /* dir + ".secrets": the test's record of its secrets (beside its directory, not in it) */
  size_t leaked;     /* recorded secrets found in its output */
  char leak_kind[64];
  struct timeval start;
  int done, ok, skipped;
} job;

static int selected(const char *suite, const char *name, int argc, char **argv, int first) {
  if (first >= argc) return 1;
  for (int i = first; i < argc; i++) {
    size_t n = strlen(argv[i]);
    if (strcmp(argv[i], name) == 0 || strcmp(argv[i], suite) == 0) return 1;
    if (n > 0 && argv[i][n - 1] == '*' && strncmp(argv[i], name, n - 1) == 0) return 1;
  }
  return 0;
}

static void start_job(job *j, int timeout) {
  const char *base = getenv("TMPDIR");
  snprintf(j->dir, sizeof j->dir, "%s/apns-test-XXXXXX", base && *base ? base : "/tmp");
  if (mkdtemp(j->dir) == NULL) {
    perror("mkdtemp");
    exit(2);
  }
  snprintf(j->secrets, sizeof j->secrets, "%s.secrets", j->dir);
  j->out = tmpfile();
  if (j->out == NULL) {
    perror("tmpfile");
    exit(2);
  }
  fflush(stdout);
  fflush(stderr);
  gettimeofday(&j->start, NULL);
  j->pid = fork();
  if (j->pid < 0) {
    perror("fork");
    exit(2);
  }
  if (j->pid == 0) {
    int fd = fileno(j->out);
    dup2(fd, 1);
    dup2(fd, 2);
    setvbuf(stdout, NULL, _IOLBF, 0);
    snprintf(tmpdir, sizeof tmpdir, "%s", j->dir);
    if (secrets_check) setenv("APNS_TEST_SECRETS_FILE", j->secrets, 1);
    /* SIGPIPE stays at its default: a write of the library or the mock that raised it would kill the test. */
    signal(SIGPIPE, SIG_DFL);
    alarm((unsigned)timeout);
    apns_replace_allocator(t_malloc, t_realloc, t_calloc, t_free);
    j->fn();
    fflush(stdout);
    fflush(stderr);
    exit(0); /* exit, not _exit: LeakSanitizer checks at exit */
  }
}

static void finish_job(job *j, int status, int verbose) {
  struct timeval end;
  gettimeofday(&end, NULL);
  double ms = (double)(end.tv_sec - j->start.tv_sec) * 1e3 + (double)(end.tv_usec - j->start.tv_usec) / 1e3;
  j->done = 1;
  j->ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  j->skipped = WIFEXITED(status) && WEXITSTATUS(status) == TEST__SKIP_STATUS;
  if (secrets_check) {
    fflush(j->out);
    long size = ftell(j->out);
    char *text = size > 0 ? malloc((size_t)size) : NULL;
    rewind(j->out);
    if (text && fread(text, 1, (size_t)size, j->out) == (size_t)size)
      j->leaked = test_secrets_scan(j->secrets, text, (size_t)size, j->leak_kind, sizeof j->leak_kind);
    free(text);
    fseek(j->out, 0, SEEK_END);
    unlink(j->secrets);
    if (j->leaked) j->ok = j->skipped = 0;
  }
  if (j->skipped) {
    char line[512] = "";
    fflush(stdout);
    rewind(j->out);
    if (fgets(line, sizeof line, j->out) == NULL) line[0] = '\0';
    line[strcspn(line, "\n")] = '\0';
    printf("SKIP   %s: %s\n", j->name, strncmp(line, "skipped: ", 9) == 0 ? line + 9 : line);
    return;
  }
  if (j->leaked)
    printf("FAIL   %s: %zu recorded secrets in its output (the first a %s)\n", j->name, j->leaked, j->leak_kind);
  else if (j->ok)
    printf("ok     %s (%.0f ms)\n", j->name, ms);
  else if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)
    printf("FAIL   %s: timed out after %.0f ms\n", j->name, ms);
  else if (WIFSIGNALED(status))
    printf("FAIL   %s: killed by signal %d (%s)\n", j->name, WTERMSIG(status), strsignal(WTERMSIG(status)));
  else
    printf("FAIL   %s: exit status %d\n", j->name, WEXITSTATUS(status));
  if (!j->ok || verbose) {
    char buf[4096];
    size_t n;
    fflush(stdout);
    rewind(j->out);
    while ((n = fread(buf, 1, sizeof buf, j->out)) > 0) fwrite(buf, 1, n, stdout);
  }
  fclose(j->out);
  nftw(j->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  fflush(stdout);
}

int main(int argc, char **argv) {
  int jobs = 2, verbose = 0, list = 0, first = 1;
  int timeout = getenv("APNS_TEST_TIMEOUT") ? atoi(getenv("APNS_TEST_TIMEOUT")) : 120;
  /* Every server of the tests is on 127.0.0.1: a proxy named by the machine's environment must not carry the
   * commands they spawn (apns-push reads these as curl does). The proxy tests name their proxies themselves. */
  static const char *const proxy_vars[] = {"https_proxy", "HTTPS_PROXY", "all_proxy",  "ALL_PROXY",
                                           "no_proxy",    "NO_PROXY",    "http_proxy", "HTTP_PROXY"};
  for (size_t i = 0; i < sizeof proxy_vars / sizeof proxy_vars[0]; i++) unsetenv(proxy_vars[i]);
  while (first < argc && argv[first][0] == '-') {
    if (strcmp(argv[first], "-j") == 0 && first + 1 < argc) {
      jobs = atoi(argv[first + 1]);
      first += 2;
    } else if (strcmp(argv[first], "-v") == 0) {
      verbose = 1;
      first++;
    } else if (strcmp(argv[first], "--list") == 0) {
      list = 1;
      first++;
    } else {
      fprintf(stderr, "usage: %s [-j N] [-v] [--list] [NAME | SUITE | PREFIX* ...]\n", argv[0]);
      return 2;
    }
  }
  if (jobs < 1) jobs = 1;
  secrets_check = getenv("APNS_TEST_SECRETS") && strcmp(getenv("APNS_TEST_SECRETS"), "1") == 0;
  if (timeout < 1) timeout = 120;

  size_t total = 0;
  for (size_t s = 0; s < NSUITES; s++)
    for (const test_case *c = suites[s].cases; c->name; c++) total++;
  job *all = calloc(total ? total : 1, sizeof *all);
  size_t n = 0;
  for (size_t s = 0; s < NSUITES; s++)
    for (const test_case *c = suites[s].cases; c->name; c++)
      if (selected(suites[s].name, c->name, argc, argv, first)) {
        all[n].name = c->name;
        all[n].fn = c->fn;
        n++;
      }
  if (list) {
    for (size_t i = 0; i < n; i++) printf("%s\n", all[i].name);
    free(all);
    return 0;
  }
  if (n == 0) {
    fprintf(stderr, "no test matches\n");
    free(all);
    return 2;
  }

  size_t next = 0, running = 0, passed = 0, failed = 0, skipped = 0;
  while (next < n || running > 0) {
    while (next < n && running < (size_t)jobs) {
      start_job(&all[next++], timeout);
      running++;
    }
    int status;
    pid_t pid = waitpid(-1, &status, 0);
    if (pid < 0) {
      if (errno == EINTR) continue;
      perror("waitpid");
      return 2;
    }
    for (size_t i = 0; i < next; i++) {
      if (all[i].pid == pid && !all[i].done) {
        finish_job(&all[i], status, verbose);
        running--;
        if (all[i].ok)
          passed++;
        else if (all[i].skipped)
          skipped++;
        else
          failed++;
        break;
      }
    }
  }
  if (failed) {
    printf("\nfailed:");
    for (size_t i = 0; i < n; i++)
      if (!all[i].ok && !all[i].skipped) printf(" %s", all[i].name);
    printf("\n");
  }
  if (skipped)
    printf("%zu passed, %zu failed, %zu skipped\n", passed, failed, skipped);
  else
    printf("%zu passed, %zu failed\n", passed, failed);
  free(all);
  return failed ? 1 : 0;
}
