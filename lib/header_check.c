/* TEMPORARY: the header checks of lib/request.h until lib/validate.c (another branch) provides them. The lead drops
 * this file at merge. Layer 1: no I/O. */
#include "request.h"

#include <string.h>

int apns__header_name_valid(const char *name, size_t len) {
  /* An HTTP token (RFC 9110 tchar) in lowercase, as HTTP/2 requires. */
  static const char extra[] = "!#$%&'*+-.^_`|~";
  if (name == NULL || len == 0) return 0;
  for (size_t i = 0; i < len; i++) {
    char c = name[i];
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) continue;
    if (c == '\0' || memchr(extra, c, sizeof extra - 1) == NULL) return 0;
  }
  return 1;
}

int apns__header_value_valid(const char *value, size_t len) {
  if (value == NULL) return 0;
  for (size_t i = 0; i < len; i++)
    if (value[i] == '\r' || value[i] == '\n' || value[i] == '\0') return 0;
  return 1;
}
