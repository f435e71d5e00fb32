/* Saturating arithmetic for deadlines: "no timeout" is UINT64_MAX, and now + UINT64_MAX must stay UINT64_MAX
 * rather than wrap into the past. */
#ifndef APNS_SAT_H
#define APNS_SAT_H

#include <stdint.h>

static inline uint64_t apns__add_sat(uint64_t a, uint64_t b) {
  return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

#endif
