/* The provider-token key of the fuzz targets: made once per process (lib/certgen.h), as the repository commits no
 * private key; inputs never carry a valid signature themselves, the harnesses sign at run time when they need one. */
#ifndef APNS_FUZZ_KEYS_H
#define APNS_FUZZ_KEYS_H

#include "certgen.h"

#include <string.h>

#define FUZZ_KID "FUZZKEY001"
#define FUZZ_TEAM "FUZZTEAM01"
/* The wall clock the mock target runs at, and the iat of the tokens it signs. */
#define FUZZ_NOW 1700000000

/* The key's PEM text (NUL-terminated, kept for the life of the process), or NULL when it could not be made. */
static inline const char *fuzz_key(void) {
  static char *pem;
  if (pem == NULL && apns__certgen_p8_key(&pem, NULL, 0) != 0) pem = NULL;
  return pem;
}

#endif
