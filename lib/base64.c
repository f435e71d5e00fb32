/* base64url without padding, strict on input. Layer 1: no I/O.
 *
 * Our own rather than mbedtls_base64_*: those speak the '+' '/' alphabet with padding, and translating both ways
 * would cost a copy and still leave the canonical-form checks to us. */
#include "base64.h"

#include <apns/common.h>

static const char apns__b64url_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t apns__base64url_encoded_len(size_t n) {
  return n / 3 * 4 + (n % 3 == 0 ? 0 : n % 3 + 1);
}

size_t apns__base64url_encode(char *out, const uint8_t *in, size_t n) {
  char *o = out;
  size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
    *o++ = apns__b64url_alphabet[v >> 18];
    *o++ = apns__b64url_alphabet[v >> 12 & 63];
    *o++ = apns__b64url_alphabet[v >> 6 & 63];
    *o++ = apns__b64url_alphabet[v & 63];
  }
  if (n - i == 1) {
    *o++ = apns__b64url_alphabet[in[i] >> 2];
    *o++ = apns__b64url_alphabet[(in[i] & 3) << 4];
  } else if (n - i == 2) {
    uint32_t v = (uint32_t)in[i] << 8 | in[i + 1];
    *o++ = apns__b64url_alphabet[v >> 10];
    *o++ = apns__b64url_alphabet[v >> 4 & 63];
    *o++ = apns__b64url_alphabet[(v & 15) << 2];
  }
  *o = '\0';
  return (size_t)(o - out);
}

size_t apns__base64url_decoded_max(size_t n) {
  return n / 4 * 3 + (n % 4 > 1 ? n % 4 - 1 : 0);
}

/* The 6-bit value of c, or -1 when c is outside the url-safe alphabet. */
static int apns__b64url_value(unsigned char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

int apns__base64url_decode(uint8_t *out, size_t cap, size_t *out_len, const char *in, size_t n) {
  if (n % 4 == 1) return APNS_EINVAL;
  if (apns__base64url_decoded_max(n) > cap) return APNS_EINVAL;
  uint32_t acc = 0;
  unsigned bits = 0;
  size_t len = 0;
  for (size_t i = 0; i < n; i++) {
    int v = apns__b64url_value((unsigned char)in[i]);
    if (v < 0) return APNS_EINVAL;
    acc = acc << 6 | (uint32_t)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[len++] = (uint8_t)(acc >> bits);
      acc &= (1u << bits) - 1;
    }
  }
  /* 2 or 4 bits may remain after the last character; a canonical encoder leaves them zero. */
  if (acc != 0) return APNS_EINVAL;
  *out_len = len;
  return 0;
}
