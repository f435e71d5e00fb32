/* The per-session block cache behind nghttp2_mem (see blocks.h). Layer 1: no I/O.
 *
 * Each block carries a 16-byte header in front of what nghttp2 sees: its size class (0 for a block too large to
 * cache), and, while it is cached, the next block of its list. nghttp2's free tells us only the pointer, and the
 * replaceable allocator offers no malloc_usable_size, so the class has to travel with the block. */
#include "blocks.h"

#include "alloc.h"

#include <stdalign.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#define APNS__BLOCKS_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define APNS__BLOCKS_ASAN 1
#endif
#endif
#ifdef APNS__BLOCKS_ASAN
#include <sanitizer/asan_interface.h>
#define ASAN_HIDE(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define ASAN_SHOW(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define ASAN_HIDE(p, n) ((void)(p), (void)(n))
#define ASAN_SHOW(p, n) ((void)(p), (void)(n))
#endif

#if defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#define APNS__BLOCKS_VALGRIND 1
#endif
#endif

struct apns__block {
  alignas(max_align_t) union {
    size_t size;       /* a large block: its size */
    apns__block *next; /* a cached block: the next on its list */
  } u;
  unsigned cls; /* class index + 1, or 0 for a large block */
};

static size_t class_bytes(size_t idx) {
  return (idx + 1) * APNS__BLOCKS_QUANTUM;
}

/* A cached block's payload is off limits to everyone until it is handed out again. */
static void hide(apns__blocks *b, apns__block *h, size_t bytes) {
  ASAN_HIDE(h + 1, bytes);
#ifdef APNS__BLOCKS_VALGRIND
  if (b->poison) VALGRIND_MAKE_MEM_NOACCESS(h + 1, bytes);
#else
  (void)b;
#endif
}

static void show(apns__blocks *b, apns__block *h, size_t bytes) {
  ASAN_SHOW(h + 1, bytes);
#ifdef APNS__BLOCKS_VALGRIND
  if (b->poison) VALGRIND_MAKE_MEM_UNDEFINED(h + 1, bytes);
#else
  (void)b;
#endif
}

/* A block of a class going back to the allocator. Its bytes past what nghttp2 asked for were never written (a class
 * rounds up to 32 bytes), and a block handed out again was marked undefined: to an allocator that reads what it is
 * given back (a test's scan of freed memory for secrets), the whole block is made defined, as malloc's exact-size
 * blocks were. */
static void give_back(apns__blocks *b, apns__block *h, size_t bytes) {
  ASAN_SHOW(h + 1, bytes);
#ifdef APNS__BLOCKS_VALGRIND
  if (b->poison) VALGRIND_MAKE_MEM_DEFINED(h + 1, bytes);
#else
  (void)b;
#endif
  apns__free(h);
}

static void *large_alloc(apns__blocks *b, size_t size) {
  apns__block *h = size <= SIZE_MAX - sizeof *h ? apns__malloc(sizeof *h + size) : NULL;
  if (h == NULL) {
    b->failed = 1;
    return NULL;
  }
  h->u.size = size;
  h->cls = 0;
  b->st.large++;
  return h + 1;
}

static void drop_head(apns__blocks *b, size_t idx) {
  apns__block *h = b->lists[idx];
  b->lists[idx] = h->u.next;
  b->st.cached -= class_bytes(idx);
  give_back(b, h, class_bytes(idx));
}

/* The bound follows the most in use over the last one or two windows of APNS__BLOCKS_WINDOW allocations, so a
 * session that was busier once does not keep that burst's blocks for its life: when it falls, the cache is cut
 * down to it at once, the largest classes first (those cost the most to keep). */
static void next_window(apns__blocks *b) {
  b->ops = 0;
  b->peak_prev = b->peak_cur;
  b->peak_cur = b->st.in_use;
  b->st.bound = b->peak_prev > b->peak_cur ? b->peak_prev : b->peak_cur;
  for (size_t i = APNS__BLOCKS_CLASSES; i-- > 0 && b->st.cached > b->st.bound;)
    while (b->lists[i] != NULL && b->st.cached > b->st.bound) drop_head(b, i);
}

static void *blk_malloc(size_t size, void *ud) {
  apns__blocks *b = ud;
  apns__block *h;
  size_t idx, bytes;
  if (size > APNS__BLOCKS_MAX) return large_alloc(b, size);
  idx = size ? (size - 1) / APNS__BLOCKS_QUANTUM : 0;
  bytes = class_bytes(idx);
  h = b->lists[idx];
  if (h != NULL) {
    b->lists[idx] = h->u.next;
    b->st.cached -= bytes;
    b->st.hits++;
    show(b, h, bytes);
  } else {
    h = apns__malloc(sizeof *h + bytes);
    if (h == NULL) {
      b->failed = 1;
      return NULL;
    }
    b->st.misses++;
  }
  h->cls = (unsigned)idx + 1;
  b->st.in_use += bytes;
  if (b->st.in_use > b->st.in_use_peak) b->st.in_use_peak = b->st.in_use;
  if (b->st.in_use > b->peak_cur) {
    b->peak_cur = b->st.in_use;
    if (b->peak_cur > b->st.bound) b->st.bound = b->peak_cur;
  }
  if (++b->ops == APNS__BLOCKS_WINDOW) next_window(b);
  return h + 1;
}

static void blk_free(void *ptr, void *ud) {
  apns__blocks *b = ud;
  apns__block *h;
  size_t idx, bytes;
  if (ptr == NULL) return;
  h = (apns__block *)ptr - 1;
  if (h->cls == 0) {
    apns__free(h);
    return;
  }
  idx = h->cls - 1;
  bytes = class_bytes(idx);
  b->st.in_use -= bytes;
  /* Beyond the session's recent working set: not needed again soon. */
  if (b->st.cached + bytes > b->st.bound) {
    give_back(b, h, bytes);
    return;
  }
  hide(b, h, bytes);
  h->u.next = b->lists[idx];
  b->lists[idx] = h;
  b->st.cached += bytes;
  if (b->st.cached > b->st.cached_peak) b->st.cached_peak = b->st.cached;
}

static void *blk_calloc(size_t n, size_t size, void *ud) {
  void *p;
  if (size != 0 && n > SIZE_MAX / size) {
    ((apns__blocks *)ud)->failed = 1;
    return NULL;
  }
  p = blk_malloc(n * size, ud);
  if (p != NULL) memset(p, 0, n * size);
  return p;
}

static void *blk_realloc(void *ptr, size_t size, void *ud) {
  apns__blocks *b = ud;
  apns__block *h, *nh;
  size_t bytes;
  void *p;
  if (ptr == NULL) return blk_malloc(size, ud);
  h = (apns__block *)ptr - 1;
  if (h->cls == 0) {
    /* A large block stays one whatever its new size: growing buffers are what nghttp2 reallocates. */
    nh = size <= SIZE_MAX - sizeof *h ? apns__realloc(h, sizeof *h + size) : NULL;
    if (nh == NULL) {
      b->failed = 1;
      return NULL;
    }
    nh->u.size = size;
    return nh + 1;
  }
  bytes = class_bytes(h->cls - 1);
  if (size <= bytes) return ptr;
  if ((p = blk_malloc(size, ud)) == NULL) return NULL;
  memcpy(p, ptr, size < bytes ? size : bytes);
  blk_free(ptr, ud);
  return p;
}

void apns__blocks_init(apns__blocks *b) {
  memset(b, 0, sizeof *b);
#ifdef APNS__BLOCKS_VALGRIND
  b->poison = RUNNING_ON_VALGRIND ? 1 : 0;
#endif
}

void apns__blocks_mem(apns__blocks *b, nghttp2_mem *mem) {
  mem->mem_user_data = b;
  mem->malloc = blk_malloc;
  mem->free = blk_free;
  mem->calloc = blk_calloc;
  mem->realloc = blk_realloc;
}

void apns__blocks_release(apns__blocks *b) {
  for (size_t i = 0; i < APNS__BLOCKS_CLASSES; i++)
    while (b->lists[i] != NULL) drop_head(b, i);
}

int apns__blocks_failed(const apns__blocks *b) {
  return b->failed;
}

void apns__blocks_clear_failed(apns__blocks *b) {
  b->failed = 0;
}
