/* libapns fuzz targets: what they share.
 *
 * Each fuzz/NAME.c defines apns_fuzz_NAME(data, size), which takes any bytes and checks the target's invariants,
 * aborting (with a line naming the broken one) when one fails. APNS_FUZZ_MAIN(NAME) at the end of the file makes it
 * libFuzzer's entry point in the fuzz build; the normal test binary compiles the same files with
 * APNS_FUZZ_NO_MAIN and replays the committed corpus and regression inputs through them (test/test_fuzz.c). */
#ifndef APNS_FUZZ_H
#define APNS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define FUZZ_CHECK(cond)                                                                                             \
  do {                                                                                                               \
    if (!(cond)) {                                                                                                   \
      fprintf(stderr, "%s:%d: fuzz invariant broken: %s\n", __FILE__, __LINE__, #cond);                              \
      abort();                                                                                                       \
    }                                                                                                                \
  } while (0)

/* Every target, for the replay test and scripts/fuzz --list (which reads this table's names from fuzz/). */
#define APNS_FUZZ_TARGETS(XX)                                                                                        \
  XX(h2_client)                                                                                                      \
  XX(h2_response)                                                                                                    \
  XX(tls_client)                                                                                                     \
  XX(payload)                                                                                                        \
  XX(jwt)                                                                                                            \
  XX(mock_request)                                                                                                   \
  XX(mock_conn)                                                                                                      \
  XX(bulk_line)

#define APNS__FUZZ_DECL(name) int apns_fuzz_##name(const uint8_t *data, size_t size);
APNS_FUZZ_TARGETS(APNS__FUZZ_DECL)
#undef APNS__FUZZ_DECL

#ifdef APNS_FUZZ_NO_MAIN
#define APNS_FUZZ_MAIN(name)
#else
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
#define APNS_FUZZ_MAIN(name)                                                                                         \
  int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {                                                     \
    return apns_fuzz_##name(data, size);                                                                             \
  }
#endif

/* A reader over the fuzz input: takes bytes from the front; past the end it yields zeros and empty spans. */
typedef struct fuzz_in {
  const uint8_t *p;
  size_t n;
} fuzz_in;

static inline uint8_t fuzz_u8(fuzz_in *in) {
  if (in->n == 0) return 0;
  in->n--;
  return *in->p++;
}

static inline uint16_t fuzz_u16(fuzz_in *in) {
  uint16_t hi = fuzz_u8(in);
  return (uint16_t)(hi << 8 | fuzz_u8(in));
}

/* Up to max bytes from the front (fewer when the input ends). */
static inline const uint8_t *fuzz_take(fuzz_in *in, size_t max, size_t *len) {
  const uint8_t *p = in->p;
  *len = max < in->n ? max : in->n;
  in->p += *len;
  in->n -= *len;
  return p;
}

/* The bytes up to the next '\n' (not included; skipped), or up to the end. */
static inline const uint8_t *fuzz_line(fuzz_in *in, size_t *len) {
  const uint8_t *p = in->p;
  size_t i = 0;
  while (i < in->n && p[i] != '\n') i++;
  *len = i;
  if (i < in->n) i++;
  in->p += i;
  in->n -= i;
  return p;
}

#endif
