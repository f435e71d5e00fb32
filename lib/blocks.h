/* libapns internal: a cache of freed small blocks for one nghttp2 session, behind the nghttp2_mem it is given.
 *
 * nghttp2 allocates and frees several same-size blocks per stream (the stream, its outbound items, the header
 * copy, HPACK strings); a connection with a thousand streams in flight frees hundreds of them per read, far more
 * than glibc's per-size tcache keeps, so most went through malloc's bins. The cache keeps freed blocks of up to
 * APNS__BLOCKS_MAX bytes on per-size lists and hands them back before asking apns__malloc; every block it holds
 * came from apns__malloc (so apns_replace_allocator still sees each one) and goes back there in
 * apns__blocks_release.
 *
 * Bound: the bytes cached never exceed twice the most bytes the session had in use at once in cacheable blocks
 * (its working set at its busiest), plus a 16-byte header a block. Every class holds at most the most blocks it
 * ever had in use at once (a class only gets a new block when its list is empty), so in a steady workload the
 * cache is about one working set; the factor two leaves room for the mix of sizes moving (responses with other
 * headers) without the new sizes missing forever while the old ones sit there. Not thread-safe: one
 * session, one thread. Under AddressSanitizer (and under valgrind, when its headers were found at build time)
 * cached blocks are poisoned, so a use after free still faults. */
#ifndef APNS_LIB_BLOCKS_H
#define APNS_LIB_BLOCKS_H

#include <nghttp2/nghttp2.h>
#include <stddef.h>
#include <stdint.h>

#define APNS__BLOCKS_QUANTUM 32
#define APNS__BLOCKS_MAX 1024
#define APNS__BLOCKS_CLASSES (APNS__BLOCKS_MAX / APNS__BLOCKS_QUANTUM)

typedef struct apns__block apns__block;

typedef struct apns__blocks_stats {
  uint64_t hits;      /* allocations served from the cache */
  uint64_t misses;    /* cacheable allocations that went to apns__malloc */
  uint64_t large;     /* allocations above APNS__BLOCKS_MAX, always apns__malloc */
  size_t cached;      /* bytes on the lists now (block sizes, headers excluded) */
  size_t cached_peak; /* the most they ever were */
  size_t in_use;      /* bytes of cacheable blocks given out and not yet freed */
  size_t in_use_peak; /* the most that ever were */
  size_t bound;       /* 2 * in_use_peak: the most `cached` may be */
} apns__blocks_stats;

typedef struct apns__blocks {
  apns__block *lists[APNS__BLOCKS_CLASSES];
  apns__blocks_stats st;
  unsigned failed : 1; /* an allocation failed since apns__blocks_clear_failed */
  unsigned poison : 1; /* mark cached blocks inaccessible (running under valgrind) */
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
