/* Test support: appends the secrets made during a run to $APNS_TEST_SECRETS_FILE (see secrets.h). */
#include "secrets.h"

#include <fcntl.h>
#include <mbedtls/base64.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void apns__secret_record(const char *kind, const char *text, size_t len) {
  const char *path = getenv("APNS_TEST_SECRETS_FILE");
  char line[1024];
  if (path == NULL || *path == '\0' || len == 0 || memchr(text, '\n', len) != NULL) return;
  int n = snprintf(line, sizeof line, "%s\t%.*s\n", kind, (int)len, text);
  if (n < 0 || (size_t)n >= sizeof line) return;
  int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return;
  if (write(fd, line, (size_t)n) != n) { /* best effort */
  }
  close(fd);
}

void apns__secret_record_pem(const char *kind, const char *pem) {
  const char *p = pem;
  while (p && *p) {
    const char *nl = strchr(p, '\n');
    size_t len = nl ? (size_t)(nl - p) : strlen(p);
    /* The armor lines and the short headers of an encrypted PEM are no secret; the base64 lines are. */
    if (len >= 16 && strncmp(p, "-----", 5) != 0 && memchr(p, ':', len) == NULL) apns__secret_record(kind, p, len);
    p = nl ? nl + 1 : NULL;
  }
}

void apns__secret_record_bytes(const char *kind, const unsigned char *b, size_t n) {
  char lo[129], up[129];
  unsigned char b64[100];
  size_t olen = 0;
  if (n == 0 || n > 64) return;
  for (size_t i = 0; i < n; i++) {
    snprintf(lo + 2 * i, 3, "%02x", b[i]);
    snprintf(up + 2 * i, 3, "%02X", b[i]);
  }
  apns__secret_record(kind, lo, 2 * n);
  apns__secret_record(kind, up, 2 * n);
  if (mbedtls_base64_encode(b64, sizeof b64, &olen, b, n) != 0) return;
  while (olen > 0 && b64[olen - 1] == '=') olen--; /* unpadded: it is found inside padded text too */
  apns__secret_record(kind, (const char *)b64, olen);
  for (size_t i = 0; i < olen; i++) b64[i] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : b64[i];
  apns__secret_record(kind, (const char *)b64, olen);
}
