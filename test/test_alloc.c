/* The replaceable allocator, and the harness's failure injection that other suites rely on. */
#include "harness.h"

#include "../lib/alloc.h"
#include "../lib/blocks.h"
#include <apns.h>
#include <jansson.h>
#include <stdint.h>
#include <string.h>
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define TEST_ASAN 1
#endif

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

/* ---- the per-session block cache (lib/blocks.c) ---- */

TEST(blocks_reuse_freed_blocks) {
  /* A freed block comes back for the next allocation of its class, with no call to the allocator. */
  apns__blocks b;
  nghttp2_mem m;
  void *p[100];
  long live = test_alloc_live(), before;
  apns__blocks_init(&b);
  apns__blocks_mem(&b, &m);
  for (int i = 0; i < 100; i++) ASSERT_NOT_NULL(p[i] = m.malloc(200, m.mem_user_data));
  ASSERT_EQ(test_alloc_live(), live + 100);
  for (int i = 0; i < 100; i++) {
    memset(p[i], i, 200);
    m.free(p[i], m.mem_user_data);
  }
  ASSERT_EQ(test_alloc_live(), live + 100); /* all kept */
  ASSERT_UEQ(b.st.cached, 100 * 224);
#ifdef TEST_ASAN
  ASSERT_TRUE(__asan_address_is_poisoned(p[0])); /* a use after free still faults */
#endif
  before = test_alloc_count();
  for (int i = 0; i < 100; i++) ASSERT_NOT_NULL(p[i] = m.malloc(193 + i % 32, m.mem_user_data)); /* same class */
  ASSERT_EQ(test_alloc_count(), before);
  ASSERT_EQ(b.st.hits, 100);
  ASSERT_EQ(b.st.misses, 100);
  ASSERT_UEQ(b.st.cached, 0);
  for (int i = 0; i < 100; i++) m.free(p[i], m.mem_user_data);
  apns__blocks_release(&b);
  ASSERT_EQ(test_alloc_live(), live);
  ASSERT_UEQ(b.st.cached, 0);
}

TEST(blocks_bounded_by_recent_peak) {
  /* The cache never holds more than the most that was in use at once lately: frees beyond it go back, and when
   * the session gets quieter for a window of allocations the cache is cut down to the new bound. */
  apns__blocks b;
  nghttp2_mem m;
  static void *p[100];
  size_t bytes = test_alloc_live_bytes();
  apns__blocks_init(&b);
  apns__blocks_mem(&b, &m);
  for (int i = 0; i < 100; i++) ASSERT_NOT_NULL(p[i] = m.malloc(64, m.mem_user_data));
  for (int i = 0; i < 100; i++) m.free(p[i], m.mem_user_data);
  ASSERT_UEQ(b.st.cached, 6400);
  /* The mix moves to 512-byte blocks: the 64-byte ones still held count against the bound. */
  for (int i = 0; i < 100; i++) ASSERT_NOT_NULL(p[i] = m.malloc(512, m.mem_user_data));
  ASSERT_UEQ(b.st.in_use_peak, 51200);
  ASSERT_UEQ(b.st.bound, 51200);
  long live = test_alloc_live();
  for (int i = 0; i < 100; i++) {
    m.free(p[i], m.mem_user_data);
    ASSERT_LE(b.st.cached, b.st.bound);
  }
  ASSERT_EQ(live - test_alloc_live(), 13); /* 6400 + 87 * 512 fit in 51200 */
  ASSERT_UEQ(b.st.cached, 6400 + 87 * 512);
  /* Two quiet windows (one block in use at a time): the bound falls to 64 bytes and the cache with it. */
  for (int i = 0; i < 2 * APNS__BLOCKS_WINDOW; i++) m.free(m.malloc(64, m.mem_user_data), m.mem_user_data);
  ASSERT_UEQ(b.st.bound, 64);
  ASSERT_LE(b.st.cached, 64);
  ASSERT_LE(b.st.cached_peak, b.st.in_use_peak);
  /* Larger than APNS__BLOCKS_MAX: never cached. */
  live = test_alloc_live();
  void *big = m.malloc(APNS__BLOCKS_MAX + 1, m.mem_user_data);
  ASSERT_NOT_NULL(big);
  m.free(big, m.mem_user_data);
  ASSERT_EQ(test_alloc_live(), live);
  ASSERT_EQ(b.st.large, 1);
  apns__blocks_release(&b);
  ASSERT_UEQ(b.st.cached, 0);
  ASSERT_UEQ(test_alloc_live_bytes(), bytes);
}

TEST(blocks_calloc_and_realloc) {
  apns__blocks b;
  nghttp2_mem m;
  long live = test_alloc_live();
  apns__blocks_init(&b);
  apns__blocks_mem(&b, &m);
  unsigned char *p = m.malloc(40, m.mem_user_data);
  memset(p, 0xAB, 40);
  m.free(p, m.mem_user_data);
  unsigned char *z = m.calloc(5, 8, m.mem_user_data); /* the cached block comes back zeroed */
  ASSERT_TRUE(z == p);
  for (int i = 0; i < 40; i++) ASSERT_EQ(z[i], 0);
  ASSERT_NULL(m.calloc(SIZE_MAX / 2, 4, m.mem_user_data));
  ASSERT_TRUE(apns__blocks_failed(&b));
  apns__blocks_clear_failed(&b);
  /* Within its class a block stays put; beyond it, and past the largest class, its bytes move along. */
  for (int i = 0; i < 40; i++) z[i] = (unsigned char)i;
  ASSERT_TRUE(m.realloc(z, 64, m.mem_user_data) == z);
  unsigned char *r = m.realloc(z, 600, m.mem_user_data);
  ASSERT_NOT_NULL(r);
  r = m.realloc(r, 5000, m.mem_user_data);
  ASSERT_NOT_NULL(r);
  r = m.realloc(r, 70000, m.mem_user_data);
  ASSERT_NOT_NULL(r);
  for (int i = 0; i < 40; i++) ASSERT_EQ(r[i], i);
  ASSERT_TRUE(!apns__blocks_failed(&b));
  m.free(r, m.mem_user_data);
  m.free(NULL, m.mem_user_data);
  ASSERT_NOT_NULL(r = m.realloc(NULL, 10, m.mem_user_data));
  m.free(r, m.mem_user_data);
  apns__blocks_release(&b);
  ASSERT_EQ(test_alloc_live(), live);
}

TEST(blocks_failure_is_reported) {
  /* A miss that the allocator refuses is NULL and leaves the flag the session owner reads; a hit cannot fail. */
  apns__blocks b;
  nghttp2_mem m;
  apns__blocks_init(&b);
  apns__blocks_mem(&b, &m);
  void *p = m.malloc(100, m.mem_user_data);
  m.free(p, m.mem_user_data);
  test_alloc_fail_after(0);
  ASSERT_TRUE(m.malloc(100, m.mem_user_data) == p);
  ASSERT_TRUE(!apns__blocks_failed(&b));
  ASSERT_NULL(m.malloc(100, m.mem_user_data));
  ASSERT_TRUE(apns__blocks_failed(&b));
  apns__blocks_clear_failed(&b);
  ASSERT_NULL(m.malloc(5000, m.mem_user_data));
  ASSERT_TRUE(apns__blocks_failed(&b));
  apns__blocks_clear_failed(&b);
  ASSERT_NULL(m.realloc(p, 2000, m.mem_user_data)); /* p stays as it was */
  ASSERT_TRUE(apns__blocks_failed(&b));
  test_alloc_reset();
  m.free(p, m.mem_user_data);
  m.free(m.realloc(NULL, 0, m.mem_user_data), m.mem_user_data);
  apns__blocks_release(&b);
}

TEST_SUITE(alloc){
    TEST_ENTRY(alloc_goes_through_replacement),
    TEST_ENTRY(alloc_failure_injection),
    TEST_ENTRY(alloc_rejects_null_functions),
    TEST_ENTRY(alloc_zero_size_is_not_failure),
    TEST_ENTRY(alloc_zero_clears),
    TEST_ENTRY(blocks_reuse_freed_blocks),
    TEST_ENTRY(blocks_bounded_by_recent_peak),
    TEST_ENTRY(blocks_calloc_and_realloc),
    TEST_ENTRY(blocks_failure_is_reported),
    TEST_SUITE_END,
};
