/* The replaceable allocator, and the harness's failure injection that other suites rely on. */
#include "harness.h"

#include "../lib/alloc.h"
#include <apns.h>
#include <jansson.h>

TEST(alloc_goes_through_replacement) {
  long before = test_alloc_count(), live = test_alloc_live();
  void *p = apns__malloc(10);
  ASSERT_NOT_NULL(p);
  ASSERT_EQ(test_alloc_count(), before + 1);
  ASSERT_EQ(test_alloc_live(), live + 1);
  p = apns__realloc(p, 100);
  ASSERT_NOT_NULL(p);
  apns__free(p);
  ASSERT_EQ(test_alloc_live(), live);
  char *s = apns__strndup("abcdef", 3);
  ASSERT_STREQ(s, "abc");
  apns__free(s);
  /* jansson follows the replacement too. */
  before = test_alloc_count();
  json_t *j = json_string("x");
  ASSERT_GT(test_alloc_count(), before);
  json_decref(j);
  ASSERT_EQ(test_alloc_live(), live);
}

TEST(alloc_failure_injection) {
  test_alloc_fail_after(1);
  void *a = apns__malloc(8);
  void *b = apns__malloc(8);
  ASSERT_NOT_NULL(a);
  ASSERT_NULL(b);
  ASSERT_NULL(apns__strdup("x"));
  ASSERT_NULL(json_object());
  test_alloc_reset();
  apns__free(a);
  apns__free(NULL);
}

TEST(alloc_rejects_null_functions) {
  ASSERT_ERR(apns_replace_allocator(NULL, realloc, calloc, free), APNS_EINVAL);
  ASSERT_ERR(apns_replace_allocator(malloc, realloc, calloc, NULL), APNS_EINVAL);
}

TEST(alloc_zero_size_is_not_failure) {
  void *p = apns__malloc(0);
  ASSERT_NOT_NULL(p);
  apns__free(p);
  p = apns__calloc(0, 4);
  ASSERT_NOT_NULL(p);
  apns__free(p);
}

TEST(alloc_zero_clears) {
  unsigned char key[32];
  memset(key, 0xAB, sizeof key);
  apns__zero(key, sizeof key);
  for (size_t i = 0; i < sizeof key; i++) ASSERT_EQ(key[i], 0);
}

TEST_SUITE(alloc){
    TEST_ENTRY(alloc_goes_through_replacement),
    TEST_ENTRY(alloc_failure_injection),
    TEST_ENTRY(alloc_rejects_null_functions),
    TEST_ENTRY(alloc_zero_size_is_not_failure),
    TEST_ENTRY(alloc_zero_clears),
    TEST_SUITE_END,
};
