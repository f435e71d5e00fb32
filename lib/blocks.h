/* libapns internal: a cache of freed small blocks for one nghttp2 session, behind the nghttp2_mem it is given.
 *
 * nghttp2 allocates and frees several same-size blocks per stream (the stream, its outbound items, the header
 * copy, HPACK strings); a connection with a thousand streams in flight frees hundreds of them per read, far more
 * than glibc's per-size tcache keeps, so most went through malloc's bins. The cache keeps freed blocks of up to
 * APNS__BLOCKS_MAX bytes on per-size lists and hands them back before asking apns__malloc; every block it holds
 * came from apns__malloc (so apns_replace_allocator still sees each one) and goes back there in
 * apns__blocks_release.
 *
 * Bound: the bytes cached (plus a 16-byte header a block) never exceed the most bytes the session had in use at
 * once in cacheable blocks over its last one or two windows of APNS__BLOCKS_WINDOW allocations (its recent working
 * set; `bound` in the stats), and so never its all-time peak. A busy connection's working set with a thousand
 * streams in flight is about 0.4 MB; a read can end most of them before the pool refills them, which is why the
 * cache must be allowed about that much (a fixed 256 KiB cap measured 2.4 allocations a notification instead of
 * 1.1). When the session gets quieter the bound falls with the window and the cache is cut down to it.
 *
 * Not thread-safe: one session, one thread. Under AddressSanitizer (and under valgrind, when its headers were
 * found at build time) cached blocks are poisoned, so a use after free still faults. */
#ifndef APNS_LIB_BLOCKS_H
#define APNS_LIB_BLOCKS_H

#include <nghttp2/nghttp2.h>
#include <stddef.h>
#include <stdint.h>

#define APNS__BLOCKS_QUANTUM 32
#define APNS__BLOCKS_MAX 1024
#define APNS__BLOCKS_CLASSES (APNS__BLOCKS_MAX / APNS__BLOCKS_QUANTUM)
/* Allocations in a window of the bound (about 300 requests). */
#define APNS__BLOCKS_WINDOW 2048

typedef struct apns__block apns__block;

typedef struct apns__blocks_stats {
  uint64_t hits;      /* allocations served from the cache */
  uint64_t misses;    /* cacheable allocations that went to apns__malloc */
  uint64_t large;     /* allocations above APNS__BLOCKS_MAX, always apns__malloc */
  size_t cached;      /* bytes on the lists now (block sizes, headers excluded) */
  size_t cached_peak; /* the most they ever were */
  size_t in_use;      /* bytes of cacheable blocks given out and not yet freed */
  size_t in_use_peak; /* the most that ever were */
  size_t bound;       /* the most `cached` may be now: the most in use over the last window or two */
} apns__blocks_stats;

typedef struct apns__blocks {
  apns__block *lists[APNS__BLOCKS_CLASSES];
  apns__blocks_stats st;
  size_t peak_prev, peak_cur; /* the most in use in the last window and in this one */
  uint32_t ops;               /* allocations in this window */
  unsigned failed : 1;        /* an allocation failed since apns__blocks_clear_failed */
  unsigned poison : 1;        /* mark cached blocks inaccessible (running under valgrind) */
} apns__blocks;

/* An empty cache. */
void apns__blocks_init(apns__blocks *b);
/* The nghttp2_mem for a session over b; b must outlive the session (release it after nghttp2_session_del). */
void apns__blocks_mem(apns__blocks *b, nghttp2_mem *mem);
/* Returns every cached block to apns__free; b is empty again. Blocks still given out stay valid. */
void apns__blocks_release(apns__blocks *b);
/* Whether an allocation through b failed since the last clear: nghttp2 answers some failures (its HPACK coder's)
 * with GOAWAY(COMPRESSION_ERROR) rather than an error code, and the owner reports those as out of memory. */
int apns__blocks_failed(const apns__blocks *b);
void apns__blocks_clear_failed(apns__blocks *b);

#endif
