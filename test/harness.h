/* libapns test harness: typed assertions that print both sides, one table of tests per suite.
 *
 * A test is a void function. An assertion that fails prints where and both values, then aborts the test's own
 * process: the runner (test/main.c) runs every test in a child of its own, with a time limit. */
#ifndef APNS_TEST_HARNESS_H
#define APNS_TEST_HARNESS_H

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  const char *name;
  void (*fn)(void);
} test_case;

#define TEST(name) static void test_##name(void)
#define TEST_ENTRY(name) {#name, test_##name}
/* Each test/test_*.c ends with TEST_SUITE(module) { TEST_ENTRY(a), TEST_ENTRY(b), TEST_SUITE_END }; and is
 * listed in test/suites.h. */
#define TEST_SUITE(module) const test_case test_suite_##module[] =
#define TEST_SUITE_END {NULL, NULL}

void test__fail(const char *file, int line, const char *fmt, ...) __attribute__((noreturn, format(printf, 3, 4)));

#define ASSERT_TRUE(e)                                                                                             \
  do {                                                                                                             \
    if (!(e)) test__fail(__FILE__, __LINE__, "ASSERT_TRUE(%s)", #e);                                               \
  } while (0)

#define ASSERT__INT(a, op, b)                                                                                      \
  do {                                                                                                             \
    intmax_t test__a = (intmax_t)(a), test__b = (intmax_t)(b);                                                     \
    if (!(test__a op test__b))                                                                                     \
      test__fail(__FILE__, __LINE__, "%s %s %s: %jd vs %jd", #a, #op, #b, test__a, test__b);                       \
  } while (0)

#define ASSERT_EQ(a, b) ASSERT__INT(a, ==, b)
#define ASSERT_NE(a, b) ASSERT__INT(a, !=, b)
#define ASSERT_LT(a, b) ASSERT__INT(a, <, b)
#define ASSERT_LE(a, b) ASSERT__INT(a, <=, b)
#define ASSERT_GT(a, b) ASSERT__INT(a, >, b)
#define ASSERT_GE(a, b) ASSERT__INT(a, >=, b)

#define ASSERT_UEQ(a, b)                                                                                           \
  do {                                                                                                             \
    uintmax_t test__a = (uintmax_t)(a), test__b = (uintmax_t)(b);                                                  \
    if (test__a != test__b) test__fail(__FILE__, __LINE__, "%s == %s: %ju vs %ju", #a, #b, test__a, test__b);      \
  } while (0)

/* An apns error code compared with its name printed: "APNS_EINVAL vs OK". */
#define ASSERT_ERR(a, b)                                                                                           \
  do {                                                                                                             \
    int test__a = (a), test__b = (b);                                                                              \
    if (test__a != test__b)                                                                                        \
      test__fail(__FILE__, __LINE__, "%s == %s: %s (%d) vs %s (%d)", #a, #b, apns_err_name(test__a), test__a,      \
                 apns_err_name(test__b), test__b);                                                                 \
  } while (0)

#define ASSERT_OK(a) ASSERT_ERR(a, 0)

#define ASSERT_STREQ(a, b)                                                                                         \
  do {                                                                                                             \
    const char *test__a = (a), *test__b = (b);                                                                     \
    if (test__a == NULL || test__b == NULL ? test__a != test__b : strcmp(test__a, test__b) != 0)                   \
      test__fail(__FILE__, __LINE__, "%s == %s:\n  \"%s\"\nvs\n  \"%s\"", #a, #b, test__a ? test__a : "(null)",    \
                 test__b ? test__b : "(null)");                                                                    \
  } while (0)

#define ASSERT_MEMEQ(a, b, n)                                                                                      \
  do {                                                                                                             \
    size_t test__n = (n);                                                                                          \
    if (memcmp((a), (b), test__n) != 0) test__fail(__FILE__, __LINE__, "%s == %s (%zu bytes)", #a, #b, test__n);   \
  } while (0)

#define ASSERT_NULL(a) ASSERT_TRUE((a) == NULL)
#define ASSERT_NOT_NULL(a) ASSERT_TRUE((a) != NULL)

/* Allocation-failure injection through apns_replace_allocator: after test_alloc_fail_after(n), the first n
 * allocations succeed and every later one fails until test_alloc_reset(). test_alloc_count() tells how many were
 * attempted since the last reset; test_alloc_live() how many are not yet freed (a leak check). */
void test_alloc_fail_after(long n);
/* Only the n-th allocation from now fails (n >= 1); the others succeed. */
void test_alloc_fail_nth(long n);
void test_alloc_reset(void);
long test_alloc_count(void);
long test_alloc_live(void);
/* The bytes those live allocations hold (malloc_usable_size): a memory measure that, unlike RSS, AddressSanitizer's
 * quarantine and valgrind's shadow memory leave alone. mbedTLS allocates outside it (its own calloc). */
size_t test_alloc_live_bytes(void);

/* How much slower than natively the tests run: 20 under valgrind, APNS_TEST_TIME_FACTOR when set, else 1. Upper
 * bounds of timing checks are multiplied by it ("within a wide margin after"); lower bounds never are. */
int test_time_factor(void);
/* Ends the test as skipped, with the reason printed: for a test whose outside tool (nginx, curl, h2load, openssl,
 * a proxy daemon) is not installed. The runner counts it apart ("N passed, N failed, N skipped"); with
 * APNS_TEST_NO_SKIP=1 in the environment (CI, which installs every tool) a skip is a failure. */
void test__skip(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
#define TEST_SKIP(...) test__skip(__VA_ARGS__)
/* The full path of the program name (searched in $PATH, then /usr/sbin and /sbin), or the test is skipped saying
 * which program is missing. The string is static: copy it before the next call. */
const char *test_need_program(const char *name);

/* The secrets recorded in secrets_path (tools/support/secrets.h: "kind<TAB>text" lines) that text holds: their
 * count, and the first one's kind in kind. The runner checks each test's output with it (APNS_TEST_SECRETS=1). */
size_t test_secrets_scan(const char *secrets_path, const char *text, size_t len, char *kind, size_t kind_cap);
/* Fails the test when text (a child's stderr, say) holds a secret recorded in $APNS_TEST_SECRETS_FILE. */
void test_secrets_assert_absent(const char *what, const char *text);

/* A fresh temporary directory for the test (removed by the runner when the test ends). Static string. */
const char *test_tmpdir(void);

#endif
