/* The intrusive list: order and links against a reference under random pushes and removals at both ends and in
 * the middle, the container of a node, and a detached list worked through while nodes leave it and join the
 * original (the way the mock's dirty connections and the connection's unsent requests are served). */
#include "harness.h"

#include "../lib/list.h"

typedef struct {
  int key;
  apns__list node; /* not first: APNS__CONTAINER_OF must subtract the offset */
} item;

static item *item_of(apns__list *n) {
  return n ? APNS__CONTAINER_OF(n, item, node) : NULL;
}

static uint64_t rng = 0x2545F4914F6CDD1DULL;
static uint64_t next_rand(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

/* l holds exactly want[0..n) in order, read forwards and backwards, and every link agrees with its other end. */
static void check_list(const apns__list *l, item **want, size_t n) {
  size_t i = 0;
  for (apns__list *p = apns__list_head(l); p != NULL; p = apns__list_next(l, p), i++) {
    ASSERT_TRUE(i < n);
    ASSERT_TRUE(item_of(p) == want[i]);
    ASSERT_TRUE(p->next->prev == p);
    ASSERT_TRUE(apns__list_linked(p));
  }
  ASSERT_UEQ(i, n);
  for (apns__list *p = apns__list_tail(l); p != NULL; p = apns__list_prev(l, p)) ASSERT_TRUE(item_of(p) == want[--i]);
  ASSERT_UEQ(i, 0);
  ASSERT_EQ(apns__list_empty(l), n == 0);
}

TEST(list_order_ends_and_container) {
  item a = {1, {NULL, NULL}}, b = {2, {NULL, NULL}}, c = {3, {NULL, NULL}};
  apns__list l;
  apns__list_init(&l);
  ASSERT_TRUE(apns__list_empty(&l));
  ASSERT_NULL(apns__list_head(&l));
  ASSERT_NULL(apns__list_tail(&l));
  ASSERT_NULL(apns__list_pop_head(&l));
  apns__list_push_tail(&l, &b.node);
  apns__list_push_head(&l, &a.node);
  apns__list_push_tail(&l, &c.node);
  item *abc[] = {&a, &b, &c};
  check_list(&l, abc, 3);
  ASSERT_EQ(item_of(apns__list_head(&l))->key, 1);
  ASSERT_EQ(item_of(apns__list_tail(&l))->key, 3);
  /* From the middle: only the node is needed. */
  apns__list_remove(&b.node);
  ASSERT_TRUE(!apns__list_linked(&b.node));
  item *ac[] = {&a, &c};
  check_list(&l, ac, 2);
  /* A removed node points at itself: removing it again changes nothing. */
  apns__list_remove(&b.node);
  check_list(&l, ac, 2);
  ASSERT_TRUE(item_of(apns__list_pop_head(&l)) == &a);
  ASSERT_TRUE(item_of(apns__list_pop_head(&l)) == &c);
  ASSERT_NULL(apns__list_pop_head(&l));
  check_list(&l, NULL, 0);
  ASSERT_TRUE(!apns__list_linked(&a.node) && !apns__list_linked(&c.node));
}

TEST(list_random_against_reference) {
  enum { N = 200 };
  static item items[N];
  item *model[N];
  size_t n = 0;
  apns__list l;
  apns__list_init(&l);
  for (int i = 0; i < N; i++) {
    items[i].key = i;
    apns__list_init(&items[i].node);
  }
  for (int round = 0; round < 20000; round++) {
    item *it = &items[next_rand() % N];
    if (apns__list_linked(&it->node)) {
      size_t at = 0;
      while (model[at] != it) at++;
      memmove(&model[at], &model[at + 1], (n - at - 1) * sizeof model[0]);
      n--;
      apns__list_remove(&it->node);
    } else if (next_rand() & 1) {
      apns__list_push_tail(&l, &it->node);
      model[n++] = it;
    } else {
      apns__list_push_head(&l, &it->node);
      memmove(&model[1], &model[0], n * sizeof model[0]);
      model[0] = it;
      n++;
    }
    if (round % 101 == 0) check_list(&l, model, n);
  }
  check_list(&l, model, n);
  for (size_t i = 0; i < n; i++) ASSERT_TRUE(item_of(apns__list_pop_head(&l)) == model[i]);
  check_list(&l, NULL, 0);
}

/* A loop over a detached list while each visit takes another node off it and puts a new one on the original:
 * every node is visited once, the removed one never, and the newcomers wait on the original. */
TEST(list_move_then_work_through) {
  enum { N = 10 };
  item items[N + N];
  apns__list from, work;
  apns__list_init(&from);
  for (int i = 0; i < N + N; i++) {
    items[i].key = i;
    apns__list_init(&items[i].node);
  }
  for (int i = 0; i < N; i++) apns__list_push_tail(&from, &items[i].node);
  apns__list_move(&from, &work);
  ASSERT_TRUE(apns__list_empty(&from));
  int visited[N] = {0}, added = 0;
  apns__list *p;
  while ((p = apns__list_pop_head(&work)) != NULL) {
    item *it = item_of(p);
    ASSERT_LT(it->key, N);
    visited[it->key]++;
    if (it->key == 2) apns__list_remove(&items[7].node); /* taken off the detached list from outside the loop */
    apns__list_push_tail(&from, &items[N + added++].node);
  }
  for (int i = 0; i < N; i++) ASSERT_EQ(visited[i], i == 7 ? 0 : 1);
  ASSERT_EQ(added, N - 1);
  size_t count = 0;
  for (p = apns__list_head(&from); p != NULL; p = apns__list_next(&from, p))
    ASSERT_EQ(item_of(p)->key, N + (int)count++);
  ASSERT_UEQ(count, N - 1);
  /* Moving an empty list gives an empty one. */
  apns__list none;
  apns__list_move(&work, &none);
  ASSERT_TRUE(apns__list_empty(&none));
  ASSERT_TRUE(apns__list_empty(&work));
}

TEST_SUITE(list){
    TEST_ENTRY(list_order_ends_and_container),
    TEST_ENTRY(list_random_against_reference),
    TEST_ENTRY(list_move_then_work_through),
    TEST_SUITE_END,
};
