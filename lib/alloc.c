/* The replaceable allocator. Layer 1: no I/O.
 *
 * One set of function pointers for the whole process, in the spirit of uv_replace_allocator(): a per-object
 * allocator would have to be threaded through jansson (whose hooks are process-wide anyway) and every module. */
#include "alloc.h"

#include <apns/common.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static struct {
  apns_malloc_func malloc;
  apns_realloc_func realloc;
  apns_calloc_func calloc;
  apns_free_func free;
} apns__allocator = {malloc, realloc, calloc, free};

int apns_replace_allocator(apns_malloc_func malloc_func, apns_realloc_func realloc_func, apns_calloc_func calloc_func,
                           apns_free_func free_func) {
  if (malloc_func == NULL || realloc_func == NULL || calloc_func == NULL || free_func == NULL) return APNS_EINVAL;
  apns__allocator.malloc = malloc_func;
  apns__allocator.realloc = realloc_func;
  apns__allocator.calloc = calloc_func;
  apns__allocator.free = free_func;
  json_set_alloc_funcs(malloc_func, free_func);
  return 0;
}

void *apns__malloc(size_t size) {
  /* malloc(0) may return NULL, which callers would take for failure. */
  return apns__allocator.malloc(size ? size : 1);
}

void *apns__calloc(size_t count, size_t size) {
  if (count == 0 || size == 0) count = size = 1;
  return apns__allocator.calloc(count, size);
}

void *apns__realloc(void *ptr, size_t size) {
  return apns__allocator.realloc(ptr, size ? size : 1);
}

void apns__free(void *ptr) {
  if (ptr != NULL) apns__allocator.free(ptr);
}

char *apns__strndup(const char *s, size_t len) {
  char *copy = apns__malloc(len + 1);
  if (copy == NULL) return NULL;
  memcpy(copy, s, len);
  copy[len] = '\0';
  return copy;
}

char *apns__strdup(const char *s) {
  return apns__strndup(s, strlen(s));
}

void apns__zero(void *ptr, size_t n) {
  /* A volatile pointer keeps the stores: memset before free is a dead store the optimizer may drop. */
  volatile unsigned char *p = ptr;
  while (n--) *p++ = 0;
}
