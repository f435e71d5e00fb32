/* apns-mock: the seeded fault mode's decisions and its option syntax (see mock_chaos.h). */
#include "mock_chaos.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const names[APNS_MOCK_CHAOS_COUNT] = {
    "drop",   "drop-write", "goaway-drop", "goaway-low", "silent", "garbage", "limit",
    "window", "refuse",     "500",         "503",        "429",    "hold",    "trickle",
};

const char *apns_mock_chaos_name(int fault) {
  return fault >= 0 && fault < APNS_MOCK_CHAOS_COUNT ? names[fault] : "?";
}

void apns_mock_chaos_defaults(apns_mock_chaos *ch, uint64_t seed) {
  memset(ch, 0, sizeof *ch);
  ch->enabled = 1;
  ch->seed = seed;
  for (int f = 0; f < APNS_MOCK_CHAOS_COUNT; f++) ch->rate[f] = f < APNS_MOCK_CHAOS_REFUSE ? 200 : 1000;
}

static uint64_t next(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t apns__mock_chaos_conn_seed(const apns_mock_chaos *ch, uint64_t conn_id) {
  uint64_t s = ch->seed ^ (conn_id * 0xd1b54a32d192ed03ULL);
  next(&s); /* decorrelate neighbouring connections */
  return s;
}

uint64_t apns__mock_chaos_below(uint64_t *state, uint64_t n) {
  return next(state) % n;
}

int apns__mock_chaos_pick(const apns_mock_chaos *ch, uint64_t *state) {
  uint64_t r = next(state) % 1000000u, acc = 0;
  for (int f = 0; f < APNS_MOCK_CHAOS_COUNT; f++) {
    acc += ch->rate[f];
    if (r < acc) return f;
  }
  return -1;
}

void apns__mock_chaos_bytes(uint64_t *state, uint8_t *buf, size_t n) {
  for (size_t i = 0; i < n; i++) buf[i] = (uint8_t)next(state);
}

static int number(const char *s, size_t len, uint64_t max, uint64_t *out) {
  char tmp[32];
  if (len == 0 || len >= sizeof tmp || s[0] == '-' || s[0] == '+') return -1;
  memcpy(tmp, s, len);
  tmp[len] = '\0';
  char *end;
  errno = 0;
  unsigned long long v = strtoull(tmp, &end, 10);
  if (errno != 0 || *end != '\0' || v > max) return -1;
  *out = v;
  return 0;
}

int apns_mock_chaos_parse(apns_mock_chaos *ch, const char *spec, char *err, size_t errlen) {
  uint64_t v;
  const char *p = spec, *comma = strchr(p, ',');
  size_t len = comma ? (size_t)(comma - p) : strlen(p);
  if (number(p, len, UINT64_MAX, &v) != 0) {
    snprintf(err, errlen, "--chaos: the seed is not a number: %.*s", (int)len, p);
    return -1;
  }
  apns_mock_chaos_defaults(ch, v);
  while (comma != NULL) {
    p = comma + 1;
    comma = strchr(p, ',');
    len = comma ? (size_t)(comma - p) : strlen(p);
    const char *eq = memchr(p, '=', len);
    if (eq == NULL) {
      if (number(p, len, 1000000u / APNS_MOCK_CHAOS_COUNT, &v) != 0) {
        snprintf(err, errlen, "--chaos: a rate is 0 to %u per million: %.*s", 1000000u / APNS_MOCK_CHAOS_COUNT,
                 (int)len, p);
        return -1;
      }
      for (int f = 0; f < APNS_MOCK_CHAOS_COUNT; f++) ch->rate[f] = (uint32_t)v;
      continue;
    }
    size_t nlen = (size_t)(eq - p);
    const char *val = eq + 1;
    size_t vlen = len - nlen - 1;
    if (nlen == 7 && memcmp(p, "hold-ms", 7) == 0) {
      if (number(val, vlen, UINT32_MAX, &v) != 0) {
        snprintf(err, errlen, "--chaos: hold-ms wants milliseconds: %.*s", (int)len, p);
        return -1;
      }
      ch->hold_ms = (uint32_t)v;
      continue;
    }
    int f;
    for (f = 0; f < APNS_MOCK_CHAOS_COUNT; f++)
      if (strlen(names[f]) == nlen && memcmp(names[f], p, nlen) == 0) break;
    if (f == APNS_MOCK_CHAOS_COUNT) {
      snprintf(err, errlen, "--chaos: no such fault: %.*s", (int)nlen, p);
      return -1;
    }
    if (number(val, vlen, 1000000u, &v) != 0) {
      snprintf(err, errlen, "--chaos: a rate is 0 to 1000000 per million: %.*s", (int)len, p);
      return -1;
    }
    ch->rate[f] = (uint32_t)v;
  }
  uint64_t sum = 0;
  for (int f = 0; f < APNS_MOCK_CHAOS_COUNT; f++) sum += ch->rate[f];
  if (sum > 1000000u) {
    snprintf(err, errlen, "--chaos: the rates add up to more than 1000000 per million");
    return -1;
  }
  return 0;
}
