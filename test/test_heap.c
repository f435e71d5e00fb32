/* The intrusive min-heap: order against a reference under random inserts and removals, the tree's shape after
 * every step, and the cost of an operation in a heap of a million. */
#include "harness.h"

#include "../lib/heap.h"

typedef struct {
  apns__heap_node node; /* first: a node is its item */
  uint64_t key;
  int in;
} item;

static int item_less(const apns__heap_node *a, const apns__heap_node *b) {
  return ((const item *)a)->key < ((const item *)b)->key;
}

static uint64_t rng = 88172645463325252ULL;
static uint64_t next_rand(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

/* Every link agrees with its other end, every parent sorts no later than its children, and the tree holds count
 * nodes. Returns the number of nodes under n. */
static size_t check_tree(const apns__heap_node *n, const apns__heap_node *parent) {
  if (n == NULL) return 0;
  ASSERT_TRUE(n->parent == parent);
  if (parent) ASSERT_TRUE(!item_less(n, parent));
  return 1 + check_tree(n->left, n) + check_tree(n->right, n);
}

TEST(heap_random_against_reference) {
  enum { N = 500 };
  static item items[N];
  apns__heap h;
  apns__heap_init(&h, item_less);
  memset(items, 0, sizeof items);
  for (int round = 0; round < 20000; round++) {
    item *it = &items[next_rand() % N];
    if (it->in) {
      apns__heap_remove(&h, &it->node);
      it->in = 0;
      ASSERT_NULL(it->node.parent);
    } else {
      it->key = next_rand() % 100; /* many equal keys */
      apns__heap_insert(&h, &it->node);
      it->in = 1;
    }
    size_t in = 0;
    uint64_t min = UINT64_MAX;
    for (int i = 0; i < N; i++)
      if (items[i].in) {
        in++;
        if (items[i].key < min) min = items[i].key;
      }
    ASSERT_UEQ(h.count, in);
    if (round % 97 == 0) ASSERT_UEQ(check_tree(h.root, NULL), in);
    if (in)
      ASSERT_UEQ(((item *)apns__heap_min(&h))->key, min);
    else
      ASSERT_NULL(apns__heap_min(&h));
  }
  /* Draining by the minimum gives the keys in order. */
  uint64_t last = 0;
  while (apns__heap_min(&h)) {
    item *it = (item *)apns__heap_min(&h);
    ASSERT_GE(it->key, last);
    last = it->key;
    apns__heap_remove(&h, &it->node);
    it->in = 0;
  }
  ASSERT_UEQ(h.count, 0);
}

/* A million deadlines in post order, then a thousand retries: each takes out an early deadline and puts it back
 * (the pool's queue under retries). Each operation costs O(log n) steps, not O(n). */
TEST(heap_million_cost_per_operation) {
  enum { N = 1000000, R = 1000 };
  item *items = calloc(N, sizeof *items);
  ASSERT_NOT_NULL(items);
  apns__heap h;
  apns__heap_init(&h, item_less);
  for (int i = 0; i < N; i++) {
    items[i].key = 1000 + (uint64_t)i;
    apns__heap_insert(&h, &items[i].node);
  }
  ASSERT_LE(h.steps, (uint64_t)N * 25);
  uint64_t before = h.steps;
  for (int r = 0; r < R; r++) {
    item *it = &items[next_rand() % 1000];
    apns__heap_remove(&h, &it->node);
    apns__heap_insert(&h, &it->node);
  }
  /* log2(1e6) is 20: a removal walks to the last node and sifts, an insertion walks and rises. */
  ASSERT_LE(h.steps - before, (uint64_t)R * 4 * 21);
  ASSERT_UEQ(h.count, N);
  ASSERT_UEQ(check_tree(h.root, NULL), N);
  free(items);
}

TEST_SUITE(heap){
    TEST_ENTRY(heap_random_against_reference),
    TEST_ENTRY(heap_million_cost_per_operation),
    TEST_SUITE_END,
};
