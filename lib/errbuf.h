/* libapns internal: writing an error message into a caller's buffer, for the functions that take errbuf/errlen.
 * Layer 1: no I/O. */
#ifndef APNS_LIB_ERRBUF_H
#define APNS_LIB_ERRBUF_H

#include <stddef.h>

/* printf into buf (at most len bytes, NUL-terminated); does nothing when buf is NULL or len is 0. */
void apns__errbuf(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
