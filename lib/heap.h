/* libapns internal: an intrusive binary min-heap, for deadlines. Layer 1: pure, no I/O, no allocation.
 *
 * The heap links nodes embedded in the caller's structs (three pointers each) into a complete binary tree, so
 * insert and remove never allocate and never fail: O(log n) each, the minimum in O(1). Removal of any node, not
 * only the minimum, is what a deadline structure needs (a request answered or retried leaves it from anywhere).
 * The order is the caller's less function; among equal keys the order is unspecified. */
#ifndef APNS_LIB_HEAP_H
#define APNS_LIB_HEAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct apns__heap_node {
  struct apns__heap_node *left, *right, *parent;
} apns__heap_node;

/* Non-zero when a sorts before b. */
typedef int (*apns__heap_less)(const apns__heap_node *a, const apns__heap_node *b);

typedef struct apns__heap {
  apns__heap_node *root; /* the minimum, or NULL when empty */
  size_t count;
  apns__heap_less less;
  uint64_t steps; /* links followed and swaps made, all operations together: for tests of the cost */
} apns__heap;

void apns__heap_init(apns__heap *h, apns__heap_less less);

static inline apns__heap_node *apns__heap_min(const apns__heap *h) {
  return h->root;
}

/* Adds n, which must not be in a heap. */
void apns__heap_insert(apns__heap *h, apns__heap_node *n);
/* Removes n, which must be in h. n's links are cleared. */
void apns__heap_remove(apns__heap *h, apns__heap_node *n);

#endif
