/* The payload builder: exact JSON bytes, size limits, raw JSON, hostile strings, allocation failures. */
#include "harness.h"

#include <apns.h>
#include <jansson.h>
#include <math.h>

/* Serializes n with limit and asserts it succeeds with exactly want. */
#define ASSERT_JSON(n, limit, want)                                                                                  \
  do {                                                                                                               \
    const char *json_ = NULL;                                                                                        \
    size_t len_ = 0;                                                                                                 \
    ASSERT_OK(apns_notification_serialize((n), (limit), &json_, &len_));                                             \
    ASSERT_STREQ(json_, (want));                                                                                     \
    ASSERT_UEQ(len_, strlen(want));                                                                                  \
  } while (0)

static apns_notification *new_notification(void) {
  apns_notification *n = NULL;
  ASSERT_OK(apns_notification_new(&n));
  ASSERT_NOT_NULL(n);
  return n;
}

TEST(payload_quickstart) {
  /* aapns's Quickstart: Alert(body=Localized(key='Hello World!', args=['foo', 'bar'])), badge=42. */
  static const char want[] =
      "{\"aps\":{\"alert\":{\"loc-key\":\"Hello World!\",\"loc-args\":[\"foo\",\"bar\"]},\"badge\":42}}";
  const char *args[] = {"foo", "bar"};
  apns_notification *n = new_notification();
  ASSERT_OK(apns_notification_set_alert_loc_key(n, "Hello World!"));
  ASSERT_OK(apns_notification_set_alert_loc_args(n, args, 2));
  ASSERT_OK(apns_notification_set_badge(n, 42));
  ASSERT_JSON(n, 0, want);
  apns_notification_free(n);

  /* The order of the calls does not change the bytes. */
  n = new_notification();
  ASSERT_OK(apns_notification_set_badge(n, 42));
  ASSERT_OK(apns_notification_set_alert_loc_args(n, args, 2));
  ASSERT_OK(apns_notification_set_alert_loc_key(n, "Hello World!"));
  ASSERT_JSON(n, 0, want);
  ASSERT_TRUE(!apns_notification_is_background(n));
  apns_notification_free(n);
}

TEST(payload_badge_zero) {
  apns_notification *n = new_notification();
  ASSERT_OK(apns_notification_set_badge(n, 0));
  ASSERT_JSON(n, 0, "{\"aps\":{\"badge\":0}}");
  ASSERT_OK(apns_notification_set_badge(n, 2147483647));
  ASSERT_JSON(n, 0, "{\"aps\":{\"badge\":2147483647}}");
  ASSERT_ERR(apns_notification_set_badge(n, -1), APNS_EINVAL);
  ASSERT_JSON(n, 0, "{\"aps\":{\"badge\":2147483647}}");
  apns_notification_free(n);
}

TEST(payload_critical_sound) {
  apns_notification *n = new_notification();
  ASSERT_OK(apns_notification_set_critical_sound(n, "alarm.caf", 0.8));
  ASSERT_OK(apns_notification_set_interruption_level(n, "critical"));
  ASSERT_JSON(n, 0,
              "{\"aps\":{\"sound\":{\"critical\":1,\"name\":\"alarm.caf\",\"volume\":0.8},"
              "\"interruption-level\":\"critical\"}}");
  ASSERT_OK(apns_notification_set_critical_sound(n, "default", 1.0));
  ASSERT_JSON(n, 0,
              "{\"aps\":{\"sound\":{\"critical\":1,\"name\":\"default\",\"volume\":1.0},"
              "\"interruption-level\":\"critical\"}}");
  ASSERT_OK(apns_notification_set_critical_sound(n, "default", 0.0));
  ASSERT_ERR(apns_notification_set_critical_sound(n, "default", 1.0000001), APNS_EINVAL);
  ASSERT_ERR(apns_notification_set_critical_sound(n, "default", -0.1), APNS_EINVAL);
  ASSERT_ERR(apns_notification_set_critical_sound(n, "default", NAN), APNS_EINVAL);
  ASSERT_ERR(apns_notification_set_critical_sound(n, "default", INFINITY), APNS_EINVAL);
  ASSERT_ERR(apns_notification_set_critical_sound(n, NULL, 0.5), APNS_EINVAL);
  ASSERT_ERR(apns_notification_set_critical_sound(n, "bad\xff", 0.5), APNS_EBADUTF8);
  /* A plain sound replaces the critical one, and the interruption level is independent. */
  ASSERT_OK(apns_notification_set_sound(n, "ping.aiff"));
  ASSERT_OK(apns_notification_set_interruption_level(n, NULL));
  ASSERT_JSON(n, 0, "{\"aps\":{\"sound\":\"ping.aiff\"}}");
  apns_notification_free(n);
}

TEST(payload_live_activity_update) {
  apns_notification *n = new_notification();
  ASSERT_OK(apns_notification_set_event(n, "update"));
  ASSERT_OK(apns_notification_set_timestamp(n, 1700000000));
  ASSERT_OK(apns_notification_set_content_state(
      n, "{ \"currentHealthLevel\": 0.941,\n  \"eventDescription\": \"Power Panel has been destroyed!\" }"));
  ASSERT_OK(apns_notification_set_stale_date(n, 1700003600));
  ASSERT_OK(apns_notification_set_alert_title(n, "Power Warning"));
  ASSERT_OK(apns_notification_set_alert_body(n, "The power panel was destroyed."));
  ASSERT_JSON(n, 0,
              "{\"aps\":{\"alert\":{\"title\":\"Power Warning\",\"body\":\"The power panel was destroyed.\"},"
              "\"timestamp\":1700000000,\"event\":\"update\",\"content-state\":{\"currentHealthLevel\":0.941,"
              "\"eventDescription\":\"Power Panel has been destroyed!\"},\"stale-date\":1700003600}}");
  /* One key of the state changes: it keeps its place; a new key goes last; a removed one disappears. */
  ASSERT_OK(apns_notification_set_content_state_value(n, "currentHealthLevel", "0.5"));
  ASSERT_OK(apns_notification_set_content_state_value(n, "eta", "{\"min\":5}"));
  ASSERT_OK(apns_notification_set_content_state_value(n, "eventDescription", NULL));
  ASSERT_OK(apns_notification_set_content_state_value(n, "never-there", NULL));
  ASSERT_OK(apns_notification_unset(n, "alert"));
  ASSERT_OK(apns_notification_unset(n, "stale-date"));
  ASSERT_JSON(n, 0,
              "{\"aps\":{\"timestamp\":1700000000,\"event\":\"update\","
              "\"content-state\":{\"currentHealthLevel\":0.5,\"eta\":{\"min\":5}}}}");
  ASSERT_OK(apns_notification_set_event(n, "end"));
  ASSERT_OK(apns_notification_set_dismissal_date(n, 0));
  ASSERT_OK(apns_notification_set_content_state(n, NULL));
  ASSERT_JSON(n, 0, "{\"aps\":{\"timestamp\":1700000000,\"event\":\"end\",\"dismissal-date\":0}}");

  /* Content state built key by key from nothing. */
  ASSERT_OK(apns_notification_set_content_state_value(n, "score", "3"));
  ASSERT_OK(apns_notification_set_content_state_value(n, "team", "\"caf\xc3\xa9\""));
  ASSERT_JSON(n, 0,
              "{\"aps\":{\"timestamp\":1700000000,\"event\":\"end\",\"content-state\":{\"score\":3,"
              "\"team\":\"caf\xc3\xa9\"},\"dismissal-date\":0}}");

  ASSERT_ERR(apns_notification_set_event(n, "stop"), APNS_EINVAL);
  ASSERT_ERR(apns_notification_set_event(n, "Update"), APNS_EINVAL);
  ASSERT_ERR(apns_notification_set_timestamp(n, -1), APNS_EINVAL);
  ASSERT_ERR(apns_notification_set_stale_date(n, INT64_MIN), APNS_EINVAL);
  ASSERT_ERR(apns_notification_set_content_state(n, "[1,2]"), APNS_EBADJSON);
  ASSERT_ERR(apns_notification_set_content_state(n, "\"text\""), APNS_EBADJSON);
  ASSERT_ERR(apns_notification_set_content_state(n, "{\"a\":1,\"a\":2}"), APNS_EBADJSON);
  ASSERT_ERR(apns_notification_set_content_state(n, "{\"a\":1} {}"), APNS_EBADJSON);
  ASSERT_ERR(apns_notification_set_content_state(n, ""), APNS_EBADJSON);
  ASSERT_ERR(apns_notification_set_content_state_value(n, "k", "nope"), APNS_EBADJSON);
  ASSERT_ERR(apns_notification_set_content_state_value(n, NULL, "1"), APNS_EINVAL);
  ASSERT_ERR(apns_notification_set_content_state_value(n, "\xc3", "1"), APNS_EBADUTF8);
  ASSERT_JSON(n, 0,
              "{\"aps\":{\"timestamp\":1700000000,\"event\":\"end\",\"content-state\":{\"score\":3,"
              "\"team\":\"caf\xc3\xa9\"},\"dismissal-date\":0}}");
  apns_notification_free(n);
}

TEST(payload_live_activity_start) {
  apns_notification *n = new_notification();
  ASSERT_OK(apns_notification_set_input_push_token(n, 1));
  ASSERT_OK(apns_notification_set_attributes(n, "{\"matchId\":\"m-1\"}"));
  ASSERT_OK(apns_notification_set_attributes_type(n, "MatchAttributes"));
  ASSERT_OK(apns_notification_set_content_state(n, "{\"home\":0,\"away\":0}"));
  ASSERT_OK(apns_notification_set_event(n, "start"));
  ASSERT_OK(apns_notification_set_timestamp(n, 1700000000));
  ASSERT_OK(apns_notification_set_alert_title(n, "Kick-off"));
  ASSERT_JSON(n, 0,
              "{\"aps\":{\"alert\":{\"title\":\"Kick-off\"},\"timestamp\":1700000000,\"event\":\"start\","
              "\"content-state\":{\"home\":0,\"away\":0},\"attributes-type\":\"MatchAttributes\","
              "\"attributes\":{\"matchId\":\"m-1\"},\"input-push-token\":1}}");
  ASSERT_OK(apns_notification_set_input_push_token(n, 0));
  ASSERT_OK(apns_notification_set_input_push_channel(n, "dHN0LTIxLWNoYW5uZWw="));
  ASSERT_OK(apns_notification_set_attributes(n, NULL));
  ASSERT_OK(apns_notification_set_attributes_type(n, NULL));
  ASSERT_JSON(n, 0,
              "{\"aps\":{\"alert\":{\"title\":\"Kick-off\"},\"timestamp\":1700000000,\"event\":\"start\","
              "\"content-state\":{\"home\":0,\"away\":0},\"input-push-channel\":\"dHN0LTIxLWNoYW5uZWw=\"}}");
  ASSERT_ERR(apns_notification_set_attributes(n, "42"), APNS_EBADJSON);
  apns_notification_free(n);
}

TEST(payload_every_aps_key_in_order) {
  /* Set in the reverse of the output order: the output order is the documented one regardless. */
  const char *ta[] = {"a"}, *sa[] = {"b", "c"}, *none[] = {NULL};
  apns_notification *n = new_notification();
  ASSERT_OK(apns_notification_set_input_push_channel(n, "chan"));
  ASSERT_OK(apns_notification_set_input_push_token(n, 7)); /* any non-zero is 1 */
  ASSERT_OK(apns_notification_set_attributes(n, "{\"name\":\"n\"}"));
  ASSERT_OK(apns_notification_set_attributes_type(n, "AT"));
  ASSERT_OK(apns_notification_set_dismissal_date(n, 1700007200));
  ASSERT_OK(apns_notification_set_stale_date(n, 1700003600));
  ASSERT_OK(apns_notification_set_content_state(n, "{\"x\":1}"));
  ASSERT_OK(apns_notification_set_event(n, "start"));
  ASSERT_OK(apns_notification_set_timestamp(n, 1700000000));
  ASSERT_OK(apns_notification_set_filter_criteria(n, "fc"));
  ASSERT_OK(apns_notification_set_relevance_score(n, 0.5));
  ASSERT_OK(apns_notification_set_interruption_level(n, "time-sensitive"));
  ASSERT_OK(apns_notification_set_target_content_id(n, "tc"));
  ASSERT_OK(apns_notification_set_mutable_content(n, 1));
  ASSERT_OK(apns_notification_set_content_available(n, 1));
  ASSERT_OK(apns_notification_set_category(n, "cat"));
  ASSERT_OK(apns_notification_set_thread_id(n, "th"));
  ASSERT_OK(apns_notification_set_sound(n, "default"));
  ASSERT_OK(apns_notification_set_badge(n, 1));
  ASSERT_OK(apns_notification_set_alert_loc_args(n, none, 0)); /* non-NULL, count 0: [] */
  ASSERT_OK(apns_notification_set_alert_loc_key(n, "K"));
  ASSERT_OK(apns_notification_set_alert_subtitle_loc_args(n, sa, 2));
  ASSERT_OK(apns_notification_set_alert_subtitle_loc_key(n, "SK"));
  ASSERT_OK(apns_notification_set_alert_title_loc_args(n, ta, 1));
  ASSERT_OK(apns_notification_set_alert_title_loc_key(n, "TK"));
  ASSERT_OK(apns_notification_set_alert_launch_image(n, "L.png"));
  ASSERT_OK(apns_notification_set_alert_body(n, "B"));
  ASSERT_OK(apns_notification_set_alert_subtitle(n, "S"));
  ASSERT_OK(apns_notification_set_alert_title(n, "T"));
  ASSERT_JSON(n, 0,
              "{\"aps\":{\"alert\":{\"title\":\"T\",\"subtitle\":\"S\",\"body\":\"B\",\"launch-image\":\"L.png\","
              "\"title-loc-key\":\"TK\",\"title-loc-args\":[\"a\"],\"subtitle-loc-key\":\"SK\","
              "\"subtitle-loc-args\":[\"b\",\"c\"],\"loc-key\":\"K\",\"loc-args\":[]},\"badge\":1,"
              "\"sound\":\"default\",\"thread-id\":\"th\",\"category\":\"cat\",\"content-available\":1,"
              "\"mutable-content\":1,\"target-content-id\":\"tc\",\"interruption-level\":\"time-sensitive\","
              "\"relevance-score\":0.5,\"filter-criteria\":\"fc\",\"timestamp\":1700000000,\"event\":\"start\","
              "\"content-state\":{\"x\":1},\"stale-date\":1700003600,\"dismissal-date\":1700007200,"
              "\"attributes-type\":\"AT\",\"attributes\":{\"name\":\"n\"},\"input-push-token\":1,"
              "\"input-push-channel\":\"chan\"}}");

  /* Every key can be removed by its name; what is left is empty. */
  const char *keys[] = {"alert",
                        "badge",
                        "sound",
                        "thread-id",
                        "category",
                        "content-available",
                        "mutable-content",
                        "target-content-id",
                        "interruption-level",
                        "relevance-score",
                        "filter-criteria",
                        "timestamp",
                        "event",
                        "content-state",
                        "stale-date",
                        "dismissal-date",
                        "attributes-type",
                        "attributes",
                        "input-push-token",
                        "input-push-channel"};
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) ASSERT_OK(apns_notification_unset(n, keys[i]));
  ASSERT_OK(apns_notification_unset(n, "badge")); /* again: not an error */
  ASSERT_ERR(apns_notification_unset(n, "title"), APNS_EINVAL);
  ASSERT_ERR(apns_notification_unset(n, "aps"), APNS_EINVAL);
  ASSERT_ERR(apns_notification_unset(n, NULL), APNS_EINVAL);
  const char *json = "x";
  size_t len = 99;
  ASSERT_ERR(apns_notification_serialize(n, 0, &json, &len), APNS_EPAYLOADEMPTY);
  ASSERT_NULL(json);
  ASSERT_UEQ(len, 0);
  apns_notification_free(n);
}

TEST(payload_alert_text_or_fields) {
  apns_notification *n = new_notification();
  ASSERT_OK(apns_notification_set_alert_text(n, "Wakey-wakey, ham and bakey!"));
  ASSERT_JSON(n, 0, "{\"aps\":{\"alert\":\"Wakey-wakey, ham and bakey!\"}}");
  /* A field replaces the text... */
  ASSERT_OK(apns_notification_set_alert_body(n, "b"));
  ASSERT_JSON(n, 0, "{\"aps\":{\"alert\":{\"body\":\"b\"}}}");
  /* ...and the text replaces every field. */
  ASSERT_OK(apns_notification_set_alert_title(n, "t"));
  ASSERT_OK(apns_notification_set_alert_text(n, "plain"));
  ASSERT_JSON(n, 0, "{\"aps\":{\"alert\":\"plain\"}}");
  /* Removing a field that is not set keeps the text. */
  ASSERT_OK(apns_notification_set_alert_title(n, NULL));
  ASSERT_JSON(n, 0, "{\"aps\":{\"alert\":\"plain\"}}");
  ASSERT_OK(apns_notification_set_alert_text(n, NULL));
  ASSERT_OK(apns_notification_set_sound(n, "default"));
  ASSERT_JSON(n, 0, "{\"aps\":{\"sound\":\"default\"}}");
  /* Removing the last field removes the alert. */
  ASSERT_OK(apns_notification_set_alert_body(n, "b"));
  ASSERT_OK(apns_notification_set_alert_body(n, NULL));
  ASSERT_JSON(n, 0, "{\"aps\":{\"sound\":\"default\"}}");
  const char *args[] = {"x", NULL};
  ASSERT_ERR(apns_notification_set_alert_loc_args(n, args, 2), APNS_EINVAL);
  ASSERT_ERR(apns_notification_set_alert_loc_args(n, NULL, 1), APNS_EINVAL);
  ASSERT_OK(apns_notification_set_alert_loc_args(n, NULL, 0));
  ASSERT_JSON(n, 0, "{\"aps\":{\"sound\":\"default\"}}");
  apns_notification_free(n);
}

TEST(payload_custom_keys) {
  apns_notification *n = new_notification();
  ASSERT_OK(apns_notification_set_custom(n, "acme", "{\"order\":17, \"items\": [1, 2.5, true, null, \"x\"]}"));
  ASSERT_OK(apns_notification_set_alert_text(n, "hi"));
  ASSERT_OK(apns_notification_set_custom_string(n, "b", "beta"));
  ASSERT_OK(apns_notification_set_custom_int(n, "a", -42));
  ASSERT_JSON(n, 0,
              "{\"aps\":{\"alert\":\"hi\"},\"acme\":{\"order\":17,\"items\":[1,2.5,true,null,\"x\"]},"
              "\"b\":\"beta\",\"a\":-42}");
  /* Replacing keeps the place (jansson's insertion order, pinned here); removing and adding again goes last. */
  ASSERT_OK(apns_notification_set_custom(n, "acme", "false"));
  ASSERT_OK(apns_notification_set_custom_string(n, "b", NULL));
  ASSERT_OK(apns_notification_set_custom_int(n, "b", INT64_MAX));
  ASSERT_OK(apns_notification_set_custom(n, "absent", NULL));
  ASSERT_JSON(n, 0, "{\"aps\":{\"alert\":\"hi\"},\"acme\":false,\"a\":-42,\"b\":9223372036854775807}");
  /* aps belongs to the setters, whatever the way in. */
  ASSERT_ERR(apns_notification_set_custom(n, "aps", "{\"badge\":1}"), APNS_EINVAL);
  ASSERT_ERR(apns_notification_set_custom_string(n, "aps", "x"), APNS_EINVAL);
  ASSERT_ERR(apns_notification_set_custom_int(n, "aps", 1), APNS_EINVAL);
  ASSERT_ERR(apns_notification_set_custom(n, "aps", NULL), APNS_EINVAL);
  ASSERT_ERR(apns_notification_set_custom(n, NULL, "1"), APNS_EINVAL);
  ASSERT_ERR(apns_notification_set_custom(n, "k", "{\"a\":1,\"a\":2}"), APNS_EBADJSON);
  ASSERT_ERR(apns_notification_set_custom(n, "k", "1 2"), APNS_EBADJSON);
  ASSERT_ERR(apns_notification_set_custom(n, "k", "'single'"), APNS_EBADJSON);
  ASSERT_ERR(apns_notification_set_custom(n, "k", "\"\\u0000\""), APNS_EBADJSON); /* NUL inside a string */
  ASSERT_ERR(apns_notification_set_custom(n, "k", "\"\\ud800\""), APNS_EBADJSON); /* lone surrogate */
  ASSERT_ERR(apns_notification_set_custom(n, "k", "1e400"), APNS_EBADJSON);
  ASSERT_ERR(apns_notification_set_custom(n, "k", "99999999999999999999"), APNS_EBADJSON);
  ASSERT_ERR(apns_notification_set_custom(n, "k", "\"\xff\""), APNS_EBADUTF8);
  ASSERT_ERR(apns_notification_set_custom(n, "\xed\xa0\x80", "1"), APNS_EBADUTF8);
  ASSERT_ERR(apns_notification_set_custom_string(n, "k", "\xc0\xaf"), APNS_EBADUTF8);
  ASSERT_JSON(n, 0, "{\"aps\":{\"alert\":\"hi\"},\"acme\":false,\"a\":-42,\"b\":9223372036854775807}");

  /* Custom keys alone (an MDM push has no aps); an empty key is a key. */
  apns_notification *mdm = new_notification();
  ASSERT_OK(apns_notification_set_custom_string(mdm, "mdm", "5c5dc1f4-3d3e-4d7b-b4a1-000000000000"));
  ASSERT_OK(apns_notification_set_custom(mdm, "", "{}"));
  ASSERT_JSON(mdm, 0, "{\"mdm\":\"5c5dc1f4-3d3e-4d7b-b4a1-000000000000\",\"\":{}}");
  ASSERT_OK(apns_notification_set_custom(mdm, "mdm", NULL));
  ASSERT_OK(apns_notification_set_custom(mdm, "", NULL));
  const char *json;
  size_t len;
  ASSERT_ERR(apns_notification_serialize(mdm, 0, &json, &len), APNS_EPAYLOADEMPTY);
  apns_notification_free(mdm);
  apns_notification_free(n);
}

TEST(payload_utf8_kept_and_escapes) {
  apns_notification *n = new_notification();
  /* é, €, 日本, an emoji, U+2028: all written as their UTF-8 bytes, not \u escapes. */
  ASSERT_OK(apns_notification_set_alert_title(n, "Caf\xc3\xa9 \xe2\x82\xac 5"));
  ASSERT_OK(apns_notification_set_alert_body(n, "\xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x8e\x89 \xe2\x80\xa8"));
  ASSERT_OK(apns_notification_set_custom_string(n, "\xc3\xbc", "\xc3\xbc"));
  ASSERT_JSON(n, 0,
              "{\"aps\":{\"alert\":{\"title\":\"Caf\xc3\xa9 \xe2\x82\xac 5\",\"body\":\"\xe6\x97\xa5\xe6\x9c\xac "
              "\xf0\x9f\x8e\x89 \xe2\x80\xa8\"}},\"\xc3\xbc\":\"\xc3\xbc\"}");
  /* Only quote, backslash and control characters are escaped; CR/LF in a payload string are data, not a
   * header injection. DEL and '/' pass as they are. */
  ASSERT_OK(apns_notification_set_alert_text(n, "q\" b\\ \r\n\t\b\f \x01\x1f \x7f /"));
  ASSERT_OK(apns_notification_set_custom_string(n, "\xc3\xbc", NULL));
  ASSERT_JSON(n, 0, "{\"aps\":{\"alert\":\"q\\\" b\\\\ \\r\\n\\t\\b\\f \\u0001\\u001f \x7f /\"}}");
  /* The output is JSON that jansson reads back to the same text. */
  const char *json;
  size_t len;
  ASSERT_OK(apns_notification_serialize(n, 0, &json, &len));
  json_t *root = json_loadb(json, len, 0, NULL);
  ASSERT_NOT_NULL(root);
  ASSERT_STREQ(json_string_value(json_object_get(json_object_get(root, "aps"), "alert")),
               "q\" b\\ \r\n\t\b\f \x01\x1f \x7f /");
  json_decref(root);
  apns_notification_free(n);
}

TEST(payload_bad_utf8_refused) {
  static const char *bad[] = {"\xff", "ab\x80", "\xc3", "\xed\xa0\x80", "\xc0\x80", "\xf4\x90\x80\x80"};
  const char *args[] = {"ok", NULL};
  apns_notification *n = new_notification();
  ASSERT_OK(apns_notification_set_badge(n, 3));
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    const char *s = bad[i];
    args[1] = s;
    ASSERT_ERR(apns_notification_set_alert_text(n, s), APNS_EBADUTF8);
    ASSERT_ERR(apns_notification_set_alert_title(n, s), APNS_EBADUTF8);
    ASSERT_ERR(apns_notification_set_alert_subtitle(n, s), APNS_EBADUTF8);
    ASSERT_ERR(apns_notification_set_alert_body(n, s), APNS_EBADUTF8);
    ASSERT_ERR(apns_notification_set_alert_launch_image(n, s), APNS_EBADUTF8);
    ASSERT_ERR(apns_notification_set_alert_title_loc_key(n, s), APNS_EBADUTF8);
    ASSERT_ERR(apns_notification_set_alert_subtitle_loc_key(n, s), APNS_EBADUTF8);
    ASSERT_ERR(apns_notification_set_alert_loc_key(n, s), APNS_EBADUTF8);
    ASSERT_ERR(apns_notification_set_alert_title_loc_args(n, args, 2), APNS_EBADUTF8);
    ASSERT_ERR(apns_notification_set_alert_subtitle_loc_args(n, args, 2), APNS_EBADUTF8);
    ASSERT_ERR(apns_notification_set_alert_loc_args(n, args, 2), APNS_EBADUTF8);
    ASSERT_ERR(apns_notification_set_sound(n, s), APNS_EBADUTF8);
    ASSERT_ERR(apns_notification_set_critical_sound(n, s, 1), APNS_EBADUTF8);
    ASSERT_ERR(apns_notification_set_thread_id(n, s), APNS_EBADUTF8);
    ASSERT_ERR(apns_notification_set_category(n, s), APNS_EBADUTF8);
    ASSERT_ERR(apns_notification_set_target_content_id(n, s), APNS_EBADUTF8);
    ASSERT_ERR(apns_notification_set_filter_criteria(n, s), APNS_EBADUTF8);
    ASSERT_ERR(apns_notification_set_attributes_type(n, s), APNS_EBADUTF8);
    ASSERT_ERR(apns_notification_set_input_push_channel(n, s), APNS_EBADUTF8);
    ASSERT_ERR(apns_notification_set_custom_string(n, "k", s), APNS_EBADUTF8);
    ASSERT_ERR(apns_notification_set_custom_string(n, s, "v"), APNS_EBADUTF8);
    ASSERT_ERR(apns_notification_set_custom_int(n, s, 1), APNS_EBADUTF8);
  }
  /* Nothing was changed by any of them. */
  ASSERT_JSON(n, 0, "{\"aps\":{\"badge\":3}}");
  apns_notification_free(n);
}

TEST(payload_word_values) {
  apns_notification *n = new_notification();
  const char *levels[] = {"passive", "active", "time-sensitive", "critical"};
  for (size_t i = 0; i < 4; i++) ASSERT_OK(apns_notification_set_interruption_level(n, levels[i]));
  const char *bad[] = {"", "Passive", "timeSensitive", "time-sensitive ", "urgent"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    ASSERT_ERR(apns_notification_set_interruption_level(n, bad[i]), APNS_EINVAL);
  ASSERT_OK(apns_notification_set_relevance_score(n, 0.0));
  ASSERT_OK(apns_notification_set_relevance_score(n, 1.0));
  ASSERT_ERR(apns_notification_set_relevance_score(n, 1.5), APNS_EINVAL);
  ASSERT_ERR(apns_notification_set_relevance_score(n, -0.01), APNS_EINVAL);
  ASSERT_ERR(apns_notification_set_relevance_score(n, NAN), APNS_EINVAL);
  ASSERT_JSON(n, 0, "{\"aps\":{\"interruption-level\":\"critical\",\"relevance-score\":1.0}}");
  ASSERT_OK(apns_notification_set_content_available(n, 1));
  ASSERT_OK(apns_notification_set_content_available(n, 0));
  ASSERT_OK(apns_notification_set_mutable_content(n, 0));
  ASSERT_JSON(n, 0, "{\"aps\":{\"interruption-level\":\"critical\",\"relevance-score\":1.0}}");
  apns_notification_free(n);
}

TEST(payload_numbers_shortest_exact) {
  apns_notification *n = new_notification();
  ASSERT_OK(apns_notification_set_relevance_score(n, 0.1));
  ASSERT_OK(apns_notification_set_custom(n, "pi", "3.141592653589793"));
  ASSERT_OK(apns_notification_set_custom(n, "third", "0.3333333333333333"));
  ASSERT_OK(apns_notification_set_custom(n, "big", "1e300"));
  ASSERT_OK(apns_notification_set_custom(n, "tiny", "-2.5E-7"));
  ASSERT_OK(apns_notification_set_custom(n, "whole", "2.0"));
  ASSERT_OK(apns_notification_set_custom(n, "int", "-0"));
  ASSERT_OK(apns_notification_set_custom(n, "tenth", "0.30000000000000004")); /* 0.1 + 0.2: needs 17 digits */
  ASSERT_JSON(n, 0,
              "{\"aps\":{\"relevance-score\":0.1},\"pi\":3.141592653589793,\"third\":0.3333333333333333,"
              "\"big\":1e+300,\"tiny\":-2.5e-07,\"whole\":2.0,\"int\":0,\"tenth\":0.30000000000000004}");
  /* Every number reads back as the same double. */
  const char *json;
  size_t len;
  ASSERT_OK(apns_notification_serialize(n, 0, &json, &len));
  json_t *root = json_loadb(json, len, 0, NULL);
  ASSERT_NOT_NULL(root);
  ASSERT_TRUE(json_real_value(json_object_get(root, "pi")) == 3.141592653589793);
  ASSERT_TRUE(json_real_value(json_object_get(root, "tenth")) == 0.1 + 0.2);
  ASSERT_TRUE(json_real_value(json_object_get(root, "tiny")) == -2.5e-7);
  ASSERT_TRUE(json_is_real(json_object_get(root, "whole")));
  json_decref(root);
  apns_notification_free(n);
}

/* {"aps":{"alert":"aaa..."}}: 20 bytes of frame around the text. */
static apns_notification *sized(size_t total) {
  char *text = malloc(total - 20 + 1);
  ASSERT_NOT_NULL(text);
  memset(text, 'a', total - 20);
  text[total - 20] = '\0';
  apns_notification *n = new_notification();
  ASSERT_OK(apns_notification_set_alert_text(n, text));
  free(text);
  return n;
}

TEST(payload_size_limits) {
  const char *json;
  size_t len;
  apns_notification *n = sized(4096);
  ASSERT_OK(apns_notification_serialize(n, 0, &json, &len));
  ASSERT_UEQ(len, 4096);
  ASSERT_UEQ(strlen(json), 4096);
  ASSERT_OK(apns_notification_serialize(n, apns_payload_limit(APNS_PUSH_TYPE_ALERT), &json, &len));
  ASSERT_ERR(apns_notification_serialize(n, 4095, &json, &len), APNS_EPAYLOADTOOLARGE);
  ASSERT_NULL(json);
  ASSERT_UEQ(len, 4096);
  apns_notification_free(n);

  n = sized(4097);
  ASSERT_ERR(apns_notification_serialize(n, 0, &json, &len), APNS_EPAYLOADTOOLARGE);
  ASSERT_UEQ(len, 4097);
  ASSERT_NULL(json);
  ASSERT_ERR(apns_notification_serialize(n, apns_payload_limit(APNS_PUSH_TYPE_LIVEACTIVITY), &json, &len),
             APNS_EPAYLOADTOOLARGE);
  ASSERT_UEQ(len, 4097);
  /* voip (and broadcast) allow 5120. */
  ASSERT_OK(apns_notification_serialize(n, apns_payload_limit(APNS_PUSH_TYPE_VOIP), &json, &len));
  ASSERT_UEQ(len, 4097);
  apns_notification_free(n);

  n = sized(5120);
  ASSERT_OK(apns_notification_serialize(n, apns_payload_limit(APNS_PUSH_TYPE_VOIP), &json, &len));
  ASSERT_OK(apns_notification_serialize(n, APNS_PAYLOAD_MAX_BROADCAST, &json, &len));
  ASSERT_UEQ(len, 5120);
  apns_notification_free(n);
  n = sized(5121);
  ASSERT_ERR(apns_notification_serialize(n, apns_payload_limit(APNS_PUSH_TYPE_VOIP), &json, &len),
             APNS_EPAYLOADTOOLARGE);
  ASSERT_UEQ(len, 5121);
  apns_notification_free(n);

  /* Bytes are counted, not characters: 2 048 "é" are 4 096 bytes of text. */
  char *text = malloc(4096 + 1);
  for (size_t i = 0; i < 4096; i += 2) memcpy(text + i, "\xc3\xa9", 2);
  text[4096] = '\0';
  n = new_notification();
  ASSERT_OK(apns_notification_set_alert_text(n, text));
  ASSERT_ERR(apns_notification_serialize(n, 0, &json, &len), APNS_EPAYLOADTOOLARGE);
  ASSERT_UEQ(len, 4096 + 20);
  /* Escapes are counted as written: one \n is two bytes. */
  ASSERT_OK(apns_notification_set_alert_text(n, "\n"));
  ASSERT_OK(apns_notification_serialize(n, 0, &json, &len));
  ASSERT_UEQ(len, 22);
  apns_notification_free(n);
  free(text);
}

TEST(payload_serialize_cached_until_changed) {
  const char *first, *second;
  size_t len;
  apns_notification *n = new_notification();
  ASSERT_OK(apns_notification_set_badge(n, 1));
  ASSERT_OK(apns_notification_serialize(n, 0, &first, &len));
  long count = test_alloc_count();
  ASSERT_OK(apns_notification_serialize(n, 0, &second, &len));
  ASSERT_TRUE(first == second);
  ASSERT_EQ(test_alloc_count(), count); /* nothing allocated the second time */
  ASSERT_OK(apns_notification_set_badge(n, 2));
  ASSERT_OK(apns_notification_serialize(n, 0, &second, &len));
  ASSERT_STREQ(second, "{\"aps\":{\"badge\":2}}");
  /* A failed setter changes nothing, so the cache stays right. */
  ASSERT_ERR(apns_notification_set_badge(n, -5), APNS_EINVAL);
  ASSERT_JSON(n, 0, "{\"aps\":{\"badge\":2}}");
  ASSERT_ERR(apns_notification_serialize(NULL, 0, &second, &len), APNS_EINVAL);
  ASSERT_ERR(apns_notification_serialize(n, 0, NULL, &len), APNS_EINVAL);
  ASSERT_ERR(apns_notification_serialize(n, 0, &second, NULL), APNS_EINVAL);
  apns_notification_free(n);
}

TEST(payload_background) {
  apns_notification *n = new_notification();
  ASSERT_TRUE(!apns_notification_is_background(n));
  ASSERT_OK(apns_notification_set_content_available(n, 1));
  ASSERT_TRUE(apns_notification_is_background(n));
  /* Custom data and silent aps keys keep it a background push... */
  ASSERT_OK(apns_notification_set_custom(n, "sync", "{\"since\":12}"));
  ASSERT_OK(apns_notification_set_thread_id(n, "t"));
  ASSERT_TRUE(apns_notification_is_background(n));
  ASSERT_JSON(n, 0, "{\"aps\":{\"thread-id\":\"t\",\"content-available\":1},\"sync\":{\"since\":12}}");
  /* ...anything the user would see does not. */
  ASSERT_OK(apns_notification_set_badge(n, 0));
  ASSERT_TRUE(!apns_notification_is_background(n));
  ASSERT_OK(apns_notification_unset(n, "badge"));
  ASSERT_OK(apns_notification_set_sound(n, "default"));
  ASSERT_TRUE(!apns_notification_is_background(n));
  ASSERT_OK(apns_notification_set_sound(n, NULL));
  ASSERT_OK(apns_notification_set_alert_title(n, "x"));
  ASSERT_TRUE(!apns_notification_is_background(n));
  ASSERT_OK(apns_notification_unset(n, "alert"));
  ASSERT_OK(apns_notification_set_alert_text(n, "x"));
  ASSERT_TRUE(!apns_notification_is_background(n));
  ASSERT_OK(apns_notification_set_alert_text(n, NULL));
  ASSERT_TRUE(apns_notification_is_background(n));
  ASSERT_TRUE(!apns_notification_is_background(NULL));
  apns_notification_free(n);
}

TEST(payload_raw) {
  static const char body[] = "{ \"aps\" : { \"alert\" : { \"body\" : \"Wakey-wakey, ham and bakey!\" } } }";
  apns_notification *n = NULL;
  const char *json;
  size_t len;
  ASSERT_OK(apns_notification_new_raw(&n, body, strlen(body)));
  /* Sent byte for byte, spaces and all. */
  ASSERT_OK(apns_notification_serialize(n, 0, &json, &len));
  ASSERT_UEQ(len, strlen(body));
  ASSERT_STREQ(json, body);
  ASSERT_TRUE(!apns_notification_is_background(n));
  /* Immutable. */
  ASSERT_ERR(apns_notification_set_badge(n, 1), APNS_EINVAL);
  ASSERT_ERR(apns_notification_set_alert_text(n, "x"), APNS_EINVAL);
  ASSERT_ERR(apns_notification_set_custom(n, "x", "1"), APNS_EINVAL);
  ASSERT_ERR(apns_notification_set_content_state_value(n, "x", "1"), APNS_EINVAL);
  ASSERT_ERR(apns_notification_set_content_available(n, 1), APNS_EINVAL);
  ASSERT_ERR(apns_notification_set_critical_sound(n, "x", 1), APNS_EINVAL);
  ASSERT_ERR(apns_notification_unset(n, "alert"), APNS_EINVAL);
  ASSERT_ERR(apns_notification_serialize(n, strlen(body) - 1, &json, &len), APNS_EPAYLOADTOOLARGE);
  ASSERT_UEQ(len, strlen(body));
  apns_notification_free(n);

  /* Not NUL-terminated: only len bytes are read. */
  char buf[] = "{\"a\":1}XXXX";
  ASSERT_OK(apns_notification_new_raw(&n, buf, 7));
  ASSERT_JSON(n, 0, "{\"a\":1}");
  apns_notification_free(n);

  /* Background detection on raw JSON. */
  const char *bg = "{\"aps\":{\"content-available\":1},\"k\":2}";
  ASSERT_OK(apns_notification_new_raw(&n, bg, strlen(bg)));
  ASSERT_TRUE(apns_notification_is_background(n));
  apns_notification_free(n);
  const char *not_bg[] = {"{\"aps\":{\"content-available\":1,\"badge\":0}}", "{\"aps\":{\"content-available\":0}}",
                          "{\"aps\":{\"content-available\":\"1\"}}", "{\"content-available\":1}",
                          "{\"aps\":{\"content-available\":1,\"alert\":\"x\"}}"};
  for (size_t i = 0; i < sizeof not_bg / sizeof not_bg[0]; i++) {
    ASSERT_OK(apns_notification_new_raw(&n, not_bg[i], strlen(not_bg[i])));
    ASSERT_TRUE(!apns_notification_is_background(n));
    apns_notification_free(n);
  }

  static const struct {
    const char *json;
    size_t len;
    int err;
  } bad[] = {
      {"", 0, APNS_EPAYLOADEMPTY},
      {" \r\n\t", 4, APNS_EPAYLOADEMPTY},
      {"{}", 2, APNS_EPAYLOADEMPTY},
      {" { } ", 5, APNS_EPAYLOADEMPTY},
      {"[1]", 3, APNS_EBADJSON},
      {"42", 2, APNS_EBADJSON},
      {"\"s\"", 3, APNS_EBADJSON},
      {"{\"a\":1", 6, APNS_EBADJSON},
      {"{\"a\":1}x", 8, APNS_EBADJSON},
      {"{\"a\":1}{}", 9, APNS_EBADJSON},
      {"{\"a\":1,\"a\":2}", 13, APNS_EBADJSON},
      {"{\"aps\":1}", 9, APNS_EBADJSON},
      {"{\"aps\":[]}", 10, APNS_EBADJSON},
      {"{\"a\":\"\\u0000\"}", 14, APNS_EBADJSON},
      {"{\"a\":1}\0", 8, APNS_EBADJSON},
      {"{\"a\":\"\0\"}", 9, APNS_EBADJSON},
      {"\0", 1, APNS_EBADJSON},
      {"{\"a\":\"\xff\"}", 9, APNS_EBADUTF8},
      {"{\"\xed\xa0\x80\":1}", 9, APNS_EBADUTF8},
      {"{\"a\":\"\xc3\"}", 9, APNS_EBADUTF8},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    n = (apns_notification *)1;
    int err = apns_notification_new_raw(&n, bad[i].json, bad[i].len);
    if (err != bad[i].err)
      test__fail(__FILE__, __LINE__, "case %zu: %s, want %s", i, apns_err_name(err), apns_err_name(bad[i].err));
    ASSERT_NULL(n);
    ASSERT_ERR(apns_validate_payload(bad[i].json, bad[i].len, 0), bad[i].err);
  }
  ASSERT_ERR(apns_notification_new_raw(NULL, "{}", 2), APNS_EINVAL);
  ASSERT_ERR(apns_notification_new_raw(&n, NULL, 0), APNS_EINVAL);
}

TEST(payload_validate_payload) {
  char *big = malloc(5121 + 1);
  ASSERT_NOT_NULL(big);
  /* {"k":"aaa...a"}: 8 bytes of frame. */
  memcpy(big, "{\"k\":\"", 6);
  memset(big + 6, 'a', 5121 - 8);
  memcpy(big + 5121 - 2, "\"}", 3);
  ASSERT_UEQ(strlen(big), 5121);
  ASSERT_OK(apns_validate_payload(big + 0, 5121, 5121));
  ASSERT_ERR(apns_validate_payload(big, 5121, APNS_PAYLOAD_MAX_VOIP), APNS_EPAYLOADTOOLARGE);
  ASSERT_ERR(apns_validate_payload(big, 5121, 0), APNS_EPAYLOADTOOLARGE);
  /* Size is checked before the content: a huge body is refused without being parsed. */
  big[100] = '\xff';
  ASSERT_ERR(apns_validate_payload(big, 5121, 0), APNS_EPAYLOADTOOLARGE);
  ASSERT_ERR(apns_validate_payload(big, 5121, 5121), APNS_EBADUTF8);
  ASSERT_OK(apns_validate_payload("{\"aps\":{}}", 10, 10));
  ASSERT_ERR(apns_validate_payload("{\"aps\":{}}", 10, 9), APNS_EPAYLOADTOOLARGE);
  ASSERT_ERR(apns_validate_payload(NULL, 0, 0), APNS_EINVAL);
  free(big);
}

TEST(payload_hostile_input) {
  apns_notification *n = new_notification();
  /* 10 KB strings are accepted by the builder (they are data) and refused by the size check, with the size. */
  char *huge = malloc(10241);
  memset(huge, 'x', 10240);
  huge[10240] = '\0';
  ASSERT_OK(apns_notification_set_alert_body(n, huge));
  const char *json;
  size_t len;
  ASSERT_ERR(apns_notification_serialize(n, 0, &json, &len), APNS_EPAYLOADTOOLARGE);
  ASSERT_UEQ(len, 10240 + strlen("{\"aps\":{\"alert\":{\"body\":\"\"}}}"));
  /* Deep nesting in JSON text is refused by jansson's depth limit, not by a stack overflow. */
  size_t depth = 100000;
  char *deep = malloc(2 * depth + 1);
  memset(deep, '[', depth);
  memset(deep + depth, ']', depth);
  deep[2 * depth] = '\0';
  ASSERT_ERR(apns_notification_set_custom(n, "deep", deep), APNS_EBADJSON);
  ASSERT_ERR(apns_validate_payload(deep, 2 * depth, 2 * depth), APNS_EBADJSON);
  /* Binary garbage. */
  char garbage[256];
  for (int i = 0; i < 256; i++) garbage[i] = (char)(255 - i);
  ASSERT_ERR(apns_validate_payload(garbage, sizeof garbage, 0), APNS_EBADUTF8);
  garbage[255] = '\0';
  ASSERT_ERR(apns_notification_set_custom(n, "g", garbage), APNS_EBADUTF8);
  /* NULL everywhere. */
  ASSERT_ERR(apns_notification_set_alert_text(NULL, "x"), APNS_EINVAL);
  ASSERT_ERR(apns_notification_set_badge(NULL, 1), APNS_EINVAL);
  ASSERT_ERR(apns_notification_set_relevance_score(NULL, 0.5), APNS_EINVAL);
  ASSERT_ERR(apns_notification_set_custom(NULL, "k", "1"), APNS_EINVAL);
  ASSERT_ERR(apns_notification_set_alert_loc_args(NULL, NULL, 0), APNS_EINVAL);
  ASSERT_ERR(apns_notification_set_timestamp(NULL, 1), APNS_EINVAL);
  ASSERT_ERR(apns_notification_new(NULL), APNS_EINVAL);
  apns_notification_free(NULL);
  apns_notification_free(n);
  free(huge);
  free(deep);
}

/* Everything a builder can do, set twice so that replacing runs too. The alloc-failure loop below calls it with
 * allocations failing from the i-th on. */
static int build_everything(apns_notification *n) {
  const char *args[] = {"foo", "bar"};
  int err;
#define TRY(call)                                                                                                    \
  if ((err = (call)) != 0) return err
  for (int round = 0; round < 2; round++) {
    TRY(apns_notification_set_alert_loc_key(n, "Hello World!"));
    TRY(apns_notification_set_alert_loc_args(n, args, 2));
    TRY(apns_notification_set_alert_title(n, "T\xc3\xa9"));
    TRY(apns_notification_set_badge(n, 0));
    TRY(apns_notification_set_critical_sound(n, "alarm", 0.25));
    TRY(apns_notification_set_relevance_score(n, 0.75));
    TRY(apns_notification_set_content_available(n, 1));
    TRY(apns_notification_set_event(n, "update"));
    TRY(apns_notification_set_timestamp(n, 1700000000));
    TRY(apns_notification_set_content_state(n, "{\"a\":[1,2,{\"b\":\"c\"}]}"));
    TRY(apns_notification_set_content_state_value(n, "d", "\"e\""));
    TRY(apns_notification_set_custom(n, "acme", "{\"x\":1,\"y\":[true,false,null]}"));
    TRY(apns_notification_set_custom_string(n, "s", "v"));
    TRY(apns_notification_set_custom_int(n, "i", 5));
  }
#undef TRY
  return 0;
}

static const char everything[] =
    "{\"aps\":{\"alert\":{\"title\":\"T\xc3\xa9\",\"loc-key\":\"Hello World!\",\"loc-args\":[\"foo\",\"bar\"]},"
    "\"badge\":0,\"sound\":{\"critical\":1,\"name\":\"alarm\",\"volume\":0.25},\"content-available\":1,"
    "\"relevance-score\":0.75,\"timestamp\":1700000000,\"event\":\"update\","
    "\"content-state\":{\"a\":[1,2,{\"b\":\"c\"}],\"d\":\"e\"}},"
    "\"acme\":{\"x\":1,\"y\":[true,false,null]},\"s\":\"v\",\"i\":5}";

TEST(payload_alloc_failures_build_and_serialize) {
  long live = test_alloc_live();
  int failures = 0;
  for (long i = 0;; i++) {
    apns_notification *n = NULL;
    const char *json = NULL;
    size_t len = 0;
    test_alloc_fail_after(i);
    int err = apns_notification_new(&n);
    if (err == 0) err = build_everything(n);
    if (err == 0) err = apns_notification_serialize(n, 0, &json, &len);
    test_alloc_reset();
    if (err == 0) {
      ASSERT_STREQ(json, everything);
      apns_notification_free(n);
      ASSERT_EQ(test_alloc_live(), live);
      break;
    }
    ASSERT_ERR(err, APNS_ENOMEM);
    failures++;
    if (n != NULL) {
      /* The failed call left n consistent: finishing the job now gives the exact bytes. */
      ASSERT_OK(build_everything(n));
      ASSERT_JSON(n, 0, everything);
    }
    apns_notification_free(n);
    ASSERT_EQ(test_alloc_live(), live);
    ASSERT_LT(i, 100000);
  }
  ASSERT_GT(failures, 20);
}

/* Every allocation failure is APNS_ENOMEM and leaks nothing. The plain body is checked without a tree: its only
 * allocations are the notification and its copy of the bytes. A body with an escaped key is one the scan leaves
 * to jansson (is "\u0061" a duplicate of "a"?): there jansson's own allocations fail too. */
TEST(payload_alloc_failures_raw_and_validate) {
  static const char plain[] = "{\"aps\":{\"alert\":{\"body\":\"caf\xc3\xa9\"},\"content-available\":1},"
                              "\"k\":[1,2.5,{\"n\":null}]}";
  static const char escaped[] = "{\"aps\":{\"alert\":{\"body\":\"caf\xc3\xa9\"},\"content-available\":1},"
                                "\"\\u006b\":[1,2.5,{\"n\":null}]}";
  const char *bodies[] = {plain, escaped};
  for (int b = 0; b < 2; b++) {
    const char *body = bodies[b];
    long live = test_alloc_live();
    int failures = 0;
    for (long i = 0;; i++) {
      apns_notification *n = NULL;
      const char *json = NULL;
      size_t len = 0;
      test_alloc_fail_after(i);
      int err = apns_validate_payload(body, strlen(body), 0);
      if (err == 0) err = apns_notification_new_raw(&n, body, strlen(body));
      if (err == 0) err = apns_notification_serialize(n, 0, &json, &len);
      test_alloc_reset();
      if (err == 0) {
        ASSERT_STREQ(json, body);
        ASSERT_TRUE(!apns_notification_is_background(n));
        apns_notification_free(n);
        ASSERT_EQ(test_alloc_live(), live);
        break;
      }
      /* jansson reports its own allocation failures as json_error_out_of_memory (pinned here): never EBADJSON. */
      ASSERT_ERR(err, APNS_ENOMEM);
      failures++;
      ASSERT_NULL(n);
      ASSERT_EQ(test_alloc_live(), live);
      ASSERT_LT(i, 100000);
    }
    if (b == 0)
      ASSERT_EQ(failures, 2);
    else
      ASSERT_GT(failures, 5);
  }
}

TEST_SUITE(payload){
    TEST_ENTRY(payload_quickstart),
    TEST_ENTRY(payload_badge_zero),
    TEST_ENTRY(payload_critical_sound),
    TEST_ENTRY(payload_live_activity_update),
    TEST_ENTRY(payload_live_activity_start),
    TEST_ENTRY(payload_every_aps_key_in_order),
    TEST_ENTRY(payload_alert_text_or_fields),
    TEST_ENTRY(payload_custom_keys),
    TEST_ENTRY(payload_utf8_kept_and_escapes),
    TEST_ENTRY(payload_bad_utf8_refused),
    TEST_ENTRY(payload_word_values),
    TEST_ENTRY(payload_numbers_shortest_exact),
    TEST_ENTRY(payload_size_limits),
    TEST_ENTRY(payload_serialize_cached_until_changed),
    TEST_ENTRY(payload_background),
    TEST_ENTRY(payload_raw),
    TEST_ENTRY(payload_validate_payload),
    TEST_ENTRY(payload_hostile_input),
    TEST_ENTRY(payload_alloc_failures_build_and_serialize),
    TEST_ENTRY(payload_alloc_failures_raw_and_validate),
    TEST_SUITE_END,
};
