/* libapns internal: the one intrusive doubly linked list. Layer 1: pure, header only, no I/O, no allocation.
 *
 * A node (two pointers) is embedded in the caller's struct; the list's head is a node of the same type, and the
 * whole is circular: an empty list is a head pointing at itself. So no operation tests for an end, removal needs
 * only the node (never the list it is on), and a node removed while a loop walks a detached list (see
 * apns__list_move) leaves that list intact. Heads must not move in memory once initialized: they are pointed at.
 * A removed node points at itself, so removing it twice is harmless, and apns__list_linked tells whether it is on
 * a list. A node that was never initialized or pushed (zeroed memory) must not be removed. */
#ifndef APNS_LIB_LIST_H
#define APNS_LIB_LIST_H

#include <stddef.h>

typedef struct apns__list {
  struct apns__list *next, *prev;
} apns__list;

/* The struct of type `type` whose member `member` is at ptr. */
#define APNS__CONTAINER_OF(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* An empty list, or a node that is on none. */
static inline void apns__list_init(apns__list *l) {
  l->next = l->prev = l;
}

static inline int apns__list_empty(const apns__list *l) {
  return l->next == l;
}

/* Non-zero while the node (initialized, or pushed since) is on a list. */
static inline int apns__list_linked(const apns__list *n) {
  return n->next != n;
}

/* The first and last nodes of l, NULL when it is empty. */
static inline apns__list *apns__list_head(const apns__list *l) {
  return l->next == l ? NULL : l->next;
}

static inline apns__list *apns__list_tail(const apns__list *l) {
  return l->prev == l ? NULL : l->prev;
}

/* The node after (before) n on l, NULL at the end. */
static inline apns__list *apns__list_next(const apns__list *l, const apns__list *n) {
  return n->next == l ? NULL : n->next;
}

static inline apns__list *apns__list_prev(const apns__list *l, const apns__list *n) {
  return n->prev == l ? NULL : n->prev;
}

/* Adds n, which must be on no list, at the end (the start) of l. */
static inline void apns__list_push_tail(apns__list *l, apns__list *n) {
  n->next = l;
  n->prev = l->prev;
  l->prev->next = n;
  l->prev = n;
}

static inline void apns__list_push_head(apns__list *l, apns__list *n) {
  n->prev = l;
  n->next = l->next;
  l->next->prev = n;
  l->next = n;
}

/* Takes n off whatever list it is on. */
static inline void apns__list_remove(apns__list *n) {
  n->prev->next = n->next;
  n->next->prev = n->prev;
  n->next = n->prev = n;
}

/* Takes the first node off l and returns it, or NULL when l is empty. */
static inline apns__list *apns__list_pop_head(apns__list *l) {
  apns__list *n = apns__list_head(l);
  if (n != NULL) apns__list_remove(n);
  return n;
}

/* Moves every node of from, in order, onto the empty list to, and leaves from empty: a loop can then work through
 * to while its callbacks add to from. */
static inline void apns__list_move(apns__list *from, apns__list *to) {
  if (apns__list_empty(from)) {
    apns__list_init(to);
    return;
  }
  to->next = from->next;
  to->prev = from->prev;
  to->next->prev = to;
  to->prev->next = to;
  apns__list_init(from);
}

#endif
