/* The intrusive binary min-heap (see heap.h).
 *
 * Position k (1 for the root) of the complete tree has its children at 2k and 2k + 1, so the path from the root to
 * position k reads off k's binary digits after the leading 1: 0 goes left, 1 goes right. Inserting hangs the node
 * at position count + 1 and lets it rise; removing moves the node at the last position into the hole and lets it
 * sink or rise. Nodes are moved by relinking, never by copying what they carry. */
#include "heap.h"

void apns__heap_init(apns__heap *h, apns__heap_less less) {
  h->root = NULL;
  h->count = 0;
  h->less = less;
  h->steps = 0;
}

/* The node at position k (1 <= k <= count). */
static apns__heap_node *node_at(apns__heap *h, size_t k) {
  int top = 0;
  while ((k >> top) > 1) top++;
  apns__heap_node *n = h->root;
  for (int b = top - 1; b >= 0; b--) {
    n = (k >> b) & 1 ? n->right : n->left;
    h->steps++;
  }
  return n;
}

/* c trades places with its parent. */
static void swap_with_parent(apns__heap *h, apns__heap_node *c) {
  apns__heap_node *p = c->parent, *gp = p->parent, *cl = c->left, *cr = c->right, *sibling;
  if (p->left == c) {
    sibling = p->right;
    c->left = p;
    c->right = sibling;
  } else {
    sibling = p->left;
    c->left = sibling;
    c->right = p;
  }
  if (sibling) sibling->parent = c;
  c->parent = gp;
  if (gp == NULL)
    h->root = c;
  else if (gp->left == p)
    gp->left = c;
  else
    gp->right = c;
  p->parent = c;
  p->left = cl;
  p->right = cr;
  if (cl) cl->parent = p;
  if (cr) cr->parent = p;
  h->steps++;
}

static void sift_up(apns__heap *h, apns__heap_node *n) {
  while (n->parent && h->less(n, n->parent)) swap_with_parent(h, n);
}

static void sift_down(apns__heap *h, apns__heap_node *n) {
  for (;;) {
    apns__heap_node *c = n->left;
    if (c == NULL) return;
    if (n->right && h->less(n->right, c)) c = n->right;
    if (!h->less(c, n)) return;
    swap_with_parent(h, c);
  }
}

void apns__heap_insert(apns__heap *h, apns__heap_node *n) {
  n->left = n->right = n->parent = NULL;
  size_t k = ++h->count;
  if (k == 1) {
    h->root = n;
    return;
  }
  apns__heap_node *p = node_at(h, k / 2);
  if (k & 1)
    p->right = n;
  else
    p->left = n;
  n->parent = p;
  sift_up(h, n);
}

void apns__heap_remove(apns__heap *h, apns__heap_node *n) {
  apns__heap_node *last = node_at(h, h->count);
  h->count--;
  if (last->parent == NULL) {
    h->root = NULL; /* it was the only node, so n itself */
  } else {
    if (last->parent->left == last)
      last->parent->left = NULL;
    else
      last->parent->right = NULL;
    if (last != n) {
      /* The last node fills n's place, then finds its level. */
      last->left = n->left;
      last->right = n->right;
      last->parent = n->parent;
      if (last->left) last->left->parent = last;
      if (last->right) last->right->parent = last;
      if (n->parent == NULL)
        h->root = last;
      else if (n->parent->left == n)
        n->parent->left = last;
      else
        n->parent->right = last;
      sift_down(h, last);
      sift_up(h, last);
    }
  }
  n->left = n->right = n->parent = NULL;
}
