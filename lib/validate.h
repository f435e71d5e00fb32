/* libapns internal: checks shared by the payload builder and the request block. Layer 1: no I/O.
 *
 * The public validators are in include/apns/payload.h. The HTTP/2 header checks are here with the rest of the
 * validation; request.h includes this file, so the request block and the modules above it (h2.c, conn.c) get them
 * with it. */
#ifndef APNS_LIB_VALIDATE_H
#define APNS_LIB_VALIDATE_H

#include <apns/payload.h>
#include <stddef.h>

/* 1 when the len bytes at s are well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing above
 * U+10FFFF). NUL bytes are well-formed UTF-8; callers that must refuse them do so themselves. */
int apns__utf8_valid(const char *s, size_t len);

/* JSON number text from a printf "%g" rendering made in any locale: the locale's decimal point (however many bytes)
 * becomes '.', 'E' becomes 'e', and ".0" is added when there is neither a fraction nor an exponent, so that a real
 * stays a real when read back. out needs strlen(printed) + 3 bytes; it is NUL-terminated. Returns its length. */
size_t apns__json_number_text(const char *printed, char *out);

/* Deepest nesting apns__json_valid accepts: jansson's own parser limit (JSON_PARSER_MAX_DEPTH). */
#define APNS__JSON_MAX_DEPTH APNS_JSON_MAX_DEPTH

/* 1 when the len bytes at s are exactly one JSON value (RFC 8259), with optional whitespace around it, as
 * jansson's parser takes it: strings without raw control characters, \u0000 or unpaired surrogates; nesting at
 * most APNS__JSON_MAX_DEPTH. The value must be an object or an array unless any_top. Allocates nothing, so that a
 * failure of jansson's json_loadb on text this accepts can be told apart as an allocation failure (jansson itself
 * reports those as syntax errors). Does not check UTF-8 (apns__utf8_valid does), duplicate keys or numeric
 * overflow (jansson's error codes for those two are reliable). */
int apns__json_valid(const char *s, size_t len, int any_top);

/* HTTP/2 header checks, 1 when valid. A name: a non-empty lowercase token (RFC 9110 tchar, no uppercase), not a
 * pseudo-header, not one of the connection-specific headers HTTP/2 forbids (connection, keep-alive,
 * proxy-connection, transfer-encoding, upgrade, te). A value: no CR, LF or NUL, no leading or trailing space or tab
 * (NULL only with len 0). */
int apns__header_name_valid(const char *name, size_t len);
int apns__header_value_valid(const char *value, size_t len);

#endif
