/* Reading caller-filled structs by their declared size, and writing library-filled ones no further than the
 * caller's size (see abi.h). Pure: no I/O. */
#include "abi.h"

#include <apns/common.h>
#include <ctype.h>
#include <string.h>

#include "errbuf.h"

int apns__abi_read(void *dst, size_t dst_size, size_t min_size, const void *src, const char *type, char *errbuf,
                   size_t errlen) {
  size_t size;
  memcpy(&size, src, sizeof size);
  if (size == 0) {
    char upper[64];
    size_t i;
    for (i = 0; type[i] && i + 1 < sizeof upper; i++) upper[i] = (char)toupper((unsigned char)type[i]);
    upper[i] = '\0';
    apns__errbuf(errbuf, errlen, "%s.size is 0: initialize it with %s_init() or %s_INIT", type, type, upper);
    return APNS_EINVAL;
  }
  if (size < min_size) {
    apns__errbuf(errbuf, errlen, "%s.size is %zu, less than any layout of it (at least %zu bytes)", type, size,
                 min_size);
    return APNS_EINVAL;
  }
  if (size > dst_size) {
    const unsigned char *tail = (const unsigned char *)src;
    for (size_t i = dst_size; i < size; i++) {
      if (tail[i] != 0) {
        apns__errbuf(errbuf, errlen,
                     "%s from a newer libapns (field at offset %zu set): this library knows its first %zu bytes",
                     type, i, dst_size);
        return APNS_EINVAL;
      }
    }
    size = dst_size;
  }
  memset(dst, 0, dst_size);
  memcpy(dst, src, size);
  memcpy(dst, &dst_size, sizeof dst_size);
  return 0;
}

void apns__abi_write(void *out, size_t out_size, const void *src, size_t src_size) {
  memcpy(out, src, out_size < src_size ? out_size : src_size);
}
