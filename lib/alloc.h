/* libapns internal: the one allocator every module goes through (see apns_replace_allocator). */
#ifndef APNS_LIB_ALLOC_H
#define APNS_LIB_ALLOC_H

#include <stddef.h>

void *apns__malloc(size_t size);
void *apns__calloc(size_t count, size_t size);
void *apns__realloc(void *ptr, size_t size);
void apns__free(void *ptr);
/* A NUL-terminated copy of len bytes of s; NULL on allocation failure. */
char *apns__strndup(const char *s, size_t len);
char *apns__strdup(const char *s);
/* Zero n bytes in a way the compiler may not remove (key material before it is freed). */
void apns__zero(void *ptr, size_t n);

#endif
