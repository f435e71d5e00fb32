/* Fuzz target payload: the payload builder and the payload validators (include/apns/payload.h) on arbitrary JSON and
 * UTF-8.
 *
 * Input: a mode byte. Mode even: the rest is a raw payload. apns_validate_payload and apns_notification_new_raw must
 * agree on whether it is acceptable (their checks are the same but for size); a raw notification serializes to
 * exactly its input. Mode odd: the rest is a program for the builder, one operation per line ("<op byte><argument
 * text>"; two-argument setters take the next line too), after which the notification is serialized. Whatever the
 * setters accepted, a successful serialization must itself pass apns_validate_payload, load again as a raw
 * notification, fit the limit, and serialize the same bytes twice. */
#include "fuzz.h"

#include <apns.h>
#include <string.h>

#define ARG_MAX 512

/* One line as a NUL-terminated string (bytes after an inner NUL are ignored by the setters). */
static const char *arg(fuzz_in *in, char *buf) {
  size_t len;
  const uint8_t *p = fuzz_line(in, &len);
  if (len >= ARG_MAX) len = ARG_MAX - 1;
  memcpy(buf, p, len);
  buf[len] = '\0';
  return buf;
}

static int is_code(int rv) {
  return rv == 0 || (rv < 0 && apns_err_name(rv) != NULL);
}

static void raw_mode(const uint8_t *data, size_t size) {
  apns_notification *n = NULL;
  const char *out;
  size_t len;
  int v = apns_validate_payload((const char *)data, size, SIZE_MAX);
  int r = apns_notification_new_raw(&n, (const char *)data, size);
  FUZZ_CHECK(is_code(v) && is_code(r));
  if (v == APNS_ENOMEM || r == APNS_ENOMEM) goto done;
  FUZZ_CHECK((v == 0) == (r == 0));
  if (r != 0) {
    FUZZ_CHECK(n == NULL);
    goto done;
  }
  (void)apns_notification_is_background(n);
  FUZZ_CHECK(apns_notification_set_badge(n, 1) == APNS_EINVAL); /* setters refuse a raw notification */
  r = apns_notification_serialize(n, SIZE_MAX, &out, &len);
  FUZZ_CHECK(r == 0 || r == APNS_ENOMEM);
  if (r == 0) FUZZ_CHECK(len == size && memcmp(out, data, size) == 0 && out[len] == '\0');
  r = apns_notification_serialize(n, 0, &out, &len);
  if (size > APNS_PAYLOAD_MAX) FUZZ_CHECK(r == APNS_EPAYLOADTOOLARGE && len == size);
  v = apns_validate_payload((const char *)data, size, 0);
  if (size > APNS_PAYLOAD_MAX) FUZZ_CHECK(v == APNS_EPAYLOADTOOLARGE);
done:
  apns_notification_free(n);
}

static void builder_mode(fuzz_in *in) {
  static const char *levels[] = {"passive", "active", "time-sensitive", "critical", "urgent"};
  apns_notification *n = NULL;
  char a[ARG_MAX], b[ARG_MAX];
  const char *out, *out2;
  size_t len, len2, limit;
  if (apns_notification_new(&n) != 0) return;
  limit = (in->n & 1) ? APNS_PAYLOAD_MAX_VOIP : 0;
  for (int ops = 0; in->n > 0 && ops < 64; ops++) {
    uint8_t op = fuzz_u8(in);
    int rv = 0;
    switch (op % 26) {
    case 0:
      rv = apns_notification_set_alert_text(n, arg(in, a));
      break;
    case 1:
      rv = apns_notification_set_alert_title(n, arg(in, a));
      break;
    case 2:
      rv = apns_notification_set_alert_body(n, arg(in, a));
      break;
    case 3:
      rv = apns_notification_set_alert_subtitle(n, arg(in, a));
      break;
    case 4: {
      const char *args[2] = {arg(in, a), arg(in, b)};
      rv = apns_notification_set_alert_loc_args(n, args, op & 0x80 ? 2 : 1);
      break;
    }
    case 5:
      rv = apns_notification_set_badge(n, (int)(int16_t)fuzz_u16(in));
      break;
    case 6:
      rv = apns_notification_set_sound(n, arg(in, a));
      break;
    case 7:
      rv = apns_notification_set_critical_sound(n, arg(in, a), (double)fuzz_u8(in) / 200.0);
      break;
    case 8:
      rv = apns_notification_set_thread_id(n, arg(in, a));
      break;
    case 9:
      rv = apns_notification_set_category(n, arg(in, a));
      break;
    case 10:
      rv = apns_notification_set_content_available(n, op & 0x80);
      break;
    case 11:
      rv = apns_notification_set_mutable_content(n, op & 0x80);
      break;
    case 12:
      rv = apns_notification_set_interruption_level(n, levels[fuzz_u8(in) % 5]);
      break;
    case 13:
      rv = apns_notification_set_relevance_score(n, (double)fuzz_u8(in) / 200.0);
      break;
    case 14:
      rv = apns_notification_set_timestamp(n, (int64_t)(int32_t)(fuzz_u16(in) << 15));
      break;
    case 15:
      rv = apns_notification_set_event(n, arg(in, a));
      break;
    case 16:
      rv = apns_notification_set_content_state(n, arg(in, a));
      break;
    case 17:
      rv = apns_notification_set_content_state_value(n, arg(in, a), arg(in, b));
      break;
    case 18:
      rv = apns_notification_set_attributes_type(n, arg(in, a));
      break;
    case 19:
      rv = apns_notification_set_attributes(n, arg(in, a));
      break;
    case 20:
      rv = apns_notification_unset(n, arg(in, a));
      break;
    case 21:
      rv = apns_notification_set_custom(n, arg(in, a), arg(in, b));
      break;
    case 22:
      rv = apns_notification_set_custom_string(n, arg(in, a), arg(in, b));
      break;
    case 23:
      rv = apns_notification_set_custom_int(n, arg(in, a), (int64_t)fuzz_u16(in) * 1000003);
      break;
    case 24:
      rv = apns_notification_set_filter_criteria(n, arg(in, a));
      break;
    default:
      rv = apns_notification_set_input_push_channel(n, arg(in, a));
      break;
    }
    FUZZ_CHECK(is_code(rv));
    if (rv == 0 && (op & 0x40)) {
      /* Serializing between changes must not leave stale bytes behind. */
      (void)apns_notification_serialize(n, limit, &out, &len);
    }
  }
  int rv = apns_notification_serialize(n, limit, &out, &len);
  FUZZ_CHECK(is_code(rv));
  if (rv == 0) {
    apns_notification *raw = NULL;
    FUZZ_CHECK(out != NULL && out[len] == '\0');
    FUZZ_CHECK(len <= (limit ? limit : APNS_PAYLOAD_MAX));
    rv = apns_validate_payload(out, len, limit);
    FUZZ_CHECK(rv == 0 || rv == APNS_ENOMEM);
    rv = apns_notification_new_raw(&raw, out, len);
    FUZZ_CHECK(rv == 0 || rv == APNS_ENOMEM);
    if (rv == 0) FUZZ_CHECK(apns_notification_is_background(raw) == apns_notification_is_background(n));
    apns_notification_free(raw);
    rv = apns_notification_serialize(n, limit, &out2, &len2);
    FUZZ_CHECK(rv == 0 && out2 == out && len2 == len);
  } else {
    FUZZ_CHECK(out == NULL);
    FUZZ_CHECK(rv == APNS_EPAYLOADTOOLARGE || rv == APNS_EPAYLOADEMPTY || rv == APNS_ENOMEM);
  }
  apns_notification_free(n);
}

int apns_fuzz_payload(const uint8_t *data, size_t size) {
  fuzz_in in = {data, size};
  uint8_t mode = fuzz_u8(&in);
  if (mode & 1)
    builder_mode(&in);
  else
    raw_mode(in.p, in.n);
  return 0;
}

APNS_FUZZ_MAIN(payload)
