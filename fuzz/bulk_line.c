/* Fuzz target bulk_line: apns-push's bulk line parser and result writer (tools/common/bulk.h), as a relay would use
 * them too.
 *
 * Input: any bytes, taken as one bulk line. bulk_line_parse either refuses it with a documented code and a
 * NUL-terminated reason of valid UTF-8, or fills every member it names inside the line or its scratch; a payload it
 * checked itself must be one apns_validate_payload accepts (the bulk sender posts those bytes unchecked). Then every
 * string the line gave, and the raw input itself in the apns-id and reason members (as a hostile server's header
 * could be), is written as a result line: it must be one valid JSON object (jansson parses it back, the strings
 * decode as valid UTF-8) and end with exactly one newline. */
#include "fuzz.h"

#include "bulk.h"

#include <apns.h>
#include <jansson.h>
#include <string.h>

#define LINE_MAX_FUZZ 8192

static int inside(const char *p, const char *lo, size_t n) {
  return p >= lo && p <= lo + n;
}

static void check_result(const bulk_result *r) {
  static char buf[8 * LINE_MAX_FUZZ + 1024];
  size_t n = bulk_result_format(r, buf, sizeof buf);
  FUZZ_CHECK(n < sizeof buf);
  FUZZ_CHECK(n > 0 && buf[n - 1] == '\n');
  FUZZ_CHECK(memchr(buf, '\n', n - 1) == NULL);
  FUZZ_CHECK(apns_validate_utf8(buf, n) == 0);
  json_error_t jerr;
  json_t *j = json_loadb(buf, n - 1, JSON_REJECT_DUPLICATES, &jerr);
  if (j == NULL && json_error_code(&jerr) == json_error_out_of_memory) return;
  FUZZ_CHECK(j != NULL && json_is_object(j));
  json_decref(j);
}

int apns_fuzz_bulk_line(const uint8_t *data, size_t size) {
  static char scratch[BULK_SCRATCH(LINE_MAX_FUZZ)];
  char why[256];
  bulk_line line;
  if (size > LINE_MAX_FUZZ) size = LINE_MAX_FUZZ;
  const char *text = (const char *)data;
  memset(why, 0x55, sizeof why);
  int rv = bulk_line_parse(text, size, &line, scratch, sizeof scratch, why, sizeof why);
  bulk_result r;
  memset(&r, 0, sizeof r);
  r.line = 1;
  r.latency_ms = -1;
  if (rv != 0) {
    FUZZ_CHECK(rv == APNS_EBADJSON || rv == APNS_EINVAL || rv == APNS_EBADPRIORITY || rv == APNS_EBADTOKEN ||
               rv == APNS_EPAYLOADEMPTY || rv == APNS_EBADCHANNELID);
    FUZZ_CHECK(memchr(why, '\0', sizeof why) != NULL);
    FUZZ_CHECK(apns_validate_utf8(why, strlen(why)) == 0);
    r.error = apns_err_name(rv);
    r.message = why;
  } else {
    const char *strs[] = {line.token, line.channel, line.topic, line.collapse_id, line.apns_id};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
      if (strs[i] != NULL) FUZZ_CHECK(inside(strs[i], scratch, sizeof scratch) || inside(strs[i], text, size));
    /* A device line has a valid token, a broadcast line a valid channel id: exactly one of the two. */
    FUZZ_CHECK((line.token != NULL) != (line.channel != NULL));
    if (line.token) FUZZ_CHECK(apns_validate_device_token(line.token) == 0);
    if (line.channel) FUZZ_CHECK(apns_validate_channel_id(line.channel) == 0);
    if (line.priority != 0) FUZZ_CHECK(line.priority == 10 || line.priority == 5 || line.priority == 1);
    if (line.payload != NULL) {
      FUZZ_CHECK(inside(line.payload, text, size) || inside(line.payload, scratch, sizeof scratch));
      FUZZ_CHECK(line.payload_len <= size);
      if (line.payload_checked) {
        int v = apns_validate_payload(line.payload, line.payload_len, SIZE_MAX);
        FUZZ_CHECK(v == 0 || v == APNS_ENOMEM);
      }
    }
    r.token = line.token;
    r.channel = line.channel;
    r.status = 200;
    r.apns_id = line.apns_id;
    r.reason = line.topic;
    r.attempts = 1;
  }
  check_result(&r);
  /* The raw bytes, as a server might send them in its headers. */
  static char raw[LINE_MAX_FUZZ + 1];
  memcpy(raw, text, size);
  raw[size] = '\0';
  memset(&r, 0, sizeof r);
  r.line = 2;
  r.apns_id = raw;
  r.reason = raw;
  r.status = 400;
  r.latency_ms = 1.5;
  check_result(&r);
  /* And as text for a terminal: no control byte survives, and the result is valid UTF-8. */
  static char esc[8 * LINE_MAX_FUZZ + 8];
  size_t e = bulk_escape_text(esc, sizeof esc, text, size);
  FUZZ_CHECK(e < sizeof esc && apns_validate_utf8(esc, e) == 0);
  for (size_t i = 0; i < e; i++) FUZZ_CHECK((unsigned char)esc[i] >= 0x20 && esc[i] != 0x7f);
  return 0;
}

APNS_FUZZ_MAIN(bulk_line)
