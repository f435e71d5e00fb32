/* apns-push: a cache of freed small blocks in front of malloc, for the library's allocations (apns_replace_allocator:
 * libapns, nghttp2, jansson).
 *
 * A bulk run allocates and frees in bursts: a refill posts hundreds of requests (a block each, nghttp2's stream and
 * frame records), a read ends hundreds of streams. glibc's per-thread cache holds 7 blocks of a size, so the rest of
 * each burst went through malloc's bins, splitting and merging chunks (_int_malloc, _int_free and unlink_chunk were
 * a fifth of apns-push's time at 8 connections). Here a freed block of up to BLOCK_MAX bytes waits on a list of its
 * size class and serves the next allocation of that class.
 *
 * The blocks stay malloc's own: a class is found from malloc_usable_size, nothing is prepended, so a block may be
 * freed by free() or by the cache whoever allocated it. apns-push calls the library from one thread (the loop's);
 * the cache is not thread-safe and is not used under AddressSanitizer (which must see every free). */
#include "push.h"

#include <stdlib.h>
#include <string.h>
#if defined(__GLIBC__)
#include <malloc.h>
#define BLOCKS_USABLE 1
#endif

#if defined(__SANITIZE_ADDRESS__)
#undef BLOCKS_USABLE
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#undef BLOCKS_USABLE
#endif
#endif

#ifdef BLOCKS_USABLE

#define BLOCK_MAX 2048               /* larger blocks go to malloc and free as they are */
#define CACHE_MAX ((size_t)32 << 20) /* bytes held at most, over all classes */
#define CLASSES (BLOCK_MAX / 16 + 1)

typedef struct block {
  struct block *next;
} block;

static block *lists[CLASSES];
static size_t cached_bytes;
static int enabled;

/* Class c holds blocks of at least 16c + 8 usable bytes (glibc's sizes: 24, 40, 56, ...). */
static size_t class_for_request(size_t n) {
  return n <= 24 ? 1 : (n - 8 + 15) / 16;
}

static void *b_malloc(size_t n) {
  if (n <= BLOCK_MAX) {
    size_t c = class_for_request(n);
    block *b = lists[c];
    if (b) {
      lists[c] = b->next;
      cached_bytes -= 16 * c + 8;
      return b;
    }
  }
  return malloc(n);
}

static void b_free(void *p) {
  if (p == NULL) return;
  size_t u = malloc_usable_size(p);
  if (enabled && u >= 24 && u <= BLOCK_MAX + 8 && cached_bytes < CACHE_MAX) {
    size_t c = (u - 8) / 16;
    if (c > CLASSES - 1) c = CLASSES - 1;
    block *b = p;
    b->next = lists[c];
    lists[c] = b;
    cached_bytes += 16 * c + 8;
    return;
  }
  free(p);
}

static void *b_calloc(size_t count, size_t size) {
  if (size != 0 && count > ((size_t)-1) / size) return NULL;
  size_t n = count * size;
  if (n > BLOCK_MAX) return calloc(count, size);
  void *p = b_malloc(n);
  if (p) memset(p, 0, n);
  return p;
}

static void *b_realloc(void *p, size_t n) {
  return realloc(p, n); /* every block is malloc's: realloc takes it as it is */
}

void push_blocks_install(void) {
  enabled = 1;
  apns_replace_allocator(b_malloc, b_realloc, b_calloc, b_free);
}

void push_blocks_release(void) {
  enabled = 0; /* what the library frees from now on goes straight back to malloc */
  for (size_t c = 0; c < CLASSES; c++) {
    while (lists[c]) {
      block *b = lists[c];
      lists[c] = b->next;
      free(b);
    }
  }
  cached_bytes = 0;
}

#else

void push_blocks_install(void) {}

void push_blocks_release(void) {}

#endif
