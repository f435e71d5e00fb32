/* Bulk lines in, result lines out: the pure half of a bulk sender (apns-push today, a relay tomorrow, a fuzz
 * target always). No I/O, no allocation, no global state: bytes in, a struct out; a struct in, bytes out.
 *
 * A bulk line is one JSON object: {"token":"<hex>","payload":{...}} with optional "topic", "push_type",
 * "priority" (10, 5 or 1), "expiration" (UNIX seconds), "collapse_id" and "apns_id"; or, for a broadcast to a
 * channel, "channel":"<channel id>" in place of "token". It is scanned once, without a
 * tree: the members' strings are unescaped into the caller's scratch buffer; the payload is checked as the
 * library checks a raw payload (so it is validated once, here) and its bytes are kept as written (only the
 * whitespace outside its strings is dropped), to be posted as they are.
 *
 * A result line is one JSON object per notification. Every string in it is escaped so that the line is valid
 * JSON (RFC 8259) and valid UTF-8 whatever bytes a server sent: '"' and '\' as \" and \\, control characters
 * (C0, DEL and C1) and U+2028/U+2029 as \uXXXX, and every byte that is not part of a well-formed UTF-8 sequence as
 * \uFFFD (the replacement character, one per bad byte). bulk_escape_text does the same for text bound for a
 * terminal or a log, so that a server's bytes cannot move the cursor or forge a log line. */
#ifndef APNS_TOOLS_BULK_H
#define APNS_TOOLS_BULK_H

#include <apns.h>
#include <stddef.h>
#include <stdint.h>

/* One parsed bulk line. Strings are NUL-terminated, unescaped, in the scratch buffer given to bulk_line_parse
 * (payload may point into the line itself); NULL when the line does not have the member. */
typedef struct bulk_line {
  const char *token;
  const char *topic;
  const char *collapse_id;
  const char *apns_id;
  apns_push_type push_type; /* APNS_PUSH_TYPE_DEFAULT when absent */
  int has_push_type;
  int priority; /* 0 when absent */
  int has_expiration;
  int64_t expiration;
  const char *payload; /* the JSON object's bytes, not NUL-terminated; NULL when absent */
  size_t payload_len;
  /* With a payload: 1 when the scan made every check apns_notification_new_raw makes (grammar, UTF-8, no
   * duplicate keys, integers that fit, not empty, "aps" an object), so the bytes can be posted as they are; 0
   * when a rare case is left to the library (an escaped key, more than 256 keys open, a real with a 3-digit
   * exponent): then check with apns_notification_new_raw. The size against the push type's limit is the caller's. */
  int payload_checked;
  int payload_background; /* only content-available: 1 in aps (apns_notification_is_background) */
  /* A broadcast line: the channel id (apns_validate_channel_id checked), token NULL. NULL on a device line. */
  const char *channel;
} bulk_line;

/* The scratch a line of len bytes needs at most. */
#define BULK_SCRATCH(len) ((len) + 16)

/* Parses one line (without its newline) of len bytes. scratch must hold BULK_SCRATCH(len) bytes and stay as it is
 * while out is used. Returns 0, or an error with a sentence in why (NUL-terminated, truncated to whylen; the
 * line's own bytes in it are escaped as bulk_escape_text does):
 *   APNS_EBADJSON   the line is not one JSON value (a key given twice in an object, an integer that does not fit
 *                   64 bits, bytes that are not UTF-8 count as not JSON, as jansson has it); "aps" not an object
 *   APNS_EINVAL     not an object, an unknown member, a member of the wrong type, an unknown push type
 *   APNS_EBADPRIORITY, APNS_EBADTOKEN (no token, or not a hex token: apns_validate_device_token),
 *   APNS_EBADCHANNELID (a "channel" that is not a channel id), APNS_EINVAL also for "token" and "channel" both,
 *   APNS_EPAYLOADEMPTY ("payload":{}) */
int bulk_line_parse(const char *text, size_t len, bulk_line *out, char *scratch, size_t scratch_cap, char *why,
                    size_t whylen);

/* One result line's content. */
typedef struct bulk_result {
  uint64_t line;
  const char *token;    /* NULL: null */
  const char *apns_id;  /* any bytes (a server's header), NUL-terminated; NULL: null */
  int status;           /* 0: no response */
  const char *reason;   /* NULL: null */
  int64_t timestamp_ms; /* 0: null */
  unsigned attempts;
  double latency_ms; /* < 0: null */
  const char *error; /* an error's name: with it, "error" and "message" members; NULL: neither */
  const char *message;
  /* A broadcast's result: with channel set the line reads {"line","channel","status","reason",
   * "apns_request_id","apns_unique_id","attempts","latency_ms"} (no token, apns_id or timestamp, which a
   * broadcast has not); request_id and unique_id are the answer's headers (any bytes; NULL: null). */
  const char *channel;
  const char *request_id;
  const char *unique_id;
} bulk_result;

/* Writes the result line, newline included, into buf when it fits (cap > the length). Returns its length, as
 * snprintf does: when it is cap or more, nothing usable was written and the caller retries with more room. */
size_t bulk_result_format(const bulk_result *r, char *buf, size_t cap);

/* The same line with an "entry" member last (a stream entry's id, any bytes, escaped): apns-relay's results. */
size_t bulk_result_format_entry(const bulk_result *r, const char *entry, char *buf, size_t cap);

/* Writes s (len bytes) as a JSON string, quotes included, escaped as above. Returns the length, as snprintf
 * does (writes nothing past cap; NUL-terminates when it fits). s NULL writes null. */
size_t bulk_json_string(char *dst, size_t cap, const char *s, size_t len);

/* s (len bytes) made safe for a terminal or a log line: the escapes of a JSON string for controls and bad bytes,
 * without the quotes, '"' and '\' kept as they are (so that text escaped twice, a message that quotes an escaped
 * name, reads the same). Always NUL-terminated when cap > 0; truncated at cap - 1 bytes on a whole escape.
 * Returns the length written. */
size_t bulk_escape_text(char *dst, size_t cap, const char *s, size_t len);

#endif
