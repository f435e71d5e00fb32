/* libapns internal: reading the structs a caller fills and writing the ones the library fills, so that a program
 * built against another version's header still works (the rule is in README.md, "ABI"). Pure: no I/O. */
#ifndef APNS_LIB_ABI_H
#define APNS_LIB_ABI_H

#include <stddef.h>

/* The smallest size a caller's struct may declare: its size field and its first member, the least any version
 * has ever published. */
#define APNS__ABI_MIN(type, first) (offsetof(type, first) + sizeof(((type *)0)->first))

/* Copies the caller's struct src (of type `type`, whose first member is size_t size) into dst, which has this
 * library's layout (dst_size bytes), in the manner of Linux's copy_struct_from_user:
 *   size 0                  APNS_EINVAL: never initialized (errbuf says to call the init function);
 *   size < min_size         APNS_EINVAL: no version had a layout that small;
 *   size <= dst_size        the first size bytes are copied, the rest of dst is zero (the defaults);
 *   size > dst_size         a newer program's: accepted when every byte past dst_size is zero (it left the newer
 *                           fields unset), else APNS_EINVAL naming the offset of the first byte set.
 * On success dst->size is dst_size, so dst can be handed on inside the library. type is the struct's name
 * ("apns_pool_options"); errbuf may be NULL. */
int apns__abi_read(void *dst, size_t dst_size, size_t min_size, const void *src, const char *type, char *errbuf,
                   size_t errlen);

/* apns__abi_read for a struct of type T whose first member after size is `first`. */
#define APNS__ABI_READ(T, first, dst, src, errbuf, errlen)                                                           \
  apns__abi_read((dst), sizeof(T), APNS__ABI_MIN(T, first), (src), #T, (errbuf), (errlen))

/* Writes src (the library's layout, src_size bytes) to a caller's buffer of out_size bytes: the first
 * min(out_size, src_size) bytes, nothing past out_size. */
void apns__abi_write(void *out, size_t out_size, const void *src, size_t src_size);

#endif
