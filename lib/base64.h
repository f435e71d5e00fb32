/* libapns internal: base64url without padding (RFC 4648 section 5, as JWS uses it). Layer 1: no I/O.
 *
 * The decoder is strict so that one byte string has one spelling: it refuses '=', '+', '/', whitespace, a length
 * of 1 mod 4 and non-zero bits left over in the last character. A JWT signature then cannot be re-encoded into a
 * second accepted form. */
#ifndef APNS_LIB_BASE64_H
#define APNS_LIB_BASE64_H

#include <stddef.h>
#include <stdint.h>

/* Characters needed for n bytes, without the NUL. */
size_t apns__base64url_encoded_len(size_t n);
/* Writes the encoding of in[0..n) and a NUL to out, which holds apns__base64url_encoded_len(n) + 1 bytes. Returns
 * the number of characters written (without the NUL). */
size_t apns__base64url_encode(char *out, const uint8_t *in, size_t n);
/* Bytes that n characters may decode to at most. */
size_t apns__base64url_decoded_max(size_t n);
/* Decodes in[0..n) into out (cap bytes); *out_len gets the byte count. 0, or APNS_EINVAL when the input is not
 * canonical unpadded base64url or does not fit in cap (out is then unspecified). An empty input decodes to 0 bytes.
 */
int apns__base64url_decode(uint8_t *out, size_t cap, size_t *out_len, const char *in, size_t n);

#endif
