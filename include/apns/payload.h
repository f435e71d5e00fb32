/* libapns: notification payloads, push types and the checks made before anything is sent.
 *
 * An apns_notification is the JSON body of one push: an "aps" dictionary built with typed setters, custom keys
 * beside it, or JSON text you wrote yourself (apns_notification_new_raw). The validators below are what the client
 * runs on every argument before it queues a request; they are public so that you can check input at your own
 * boundary (a web form, a queue consumer) and get the same answer. Nothing here does I/O. Include <apns.h>.
 */
#ifndef APNS_PAYLOAD_H
#define APNS_PAYLOAD_H

#include <apns/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------------------------------------
 * Push types (the apns-push-type header)
 * ---------------------------------------------------------------------------------------------------------------- */
typedef enum {
  /* Not chosen: the client sends "alert", or "background" when the payload is content-available only
   * (apns_notification_is_background). A zeroed options struct therefore does the usual thing. */
  APNS_PUSH_TYPE_DEFAULT = 0,
  APNS_PUSH_TYPE_ALERT,
  APNS_PUSH_TYPE_BACKGROUND,
  APNS_PUSH_TYPE_LOCATION,
  APNS_PUSH_TYPE_VOIP,
  APNS_PUSH_TYPE_COMPLICATION,
  APNS_PUSH_TYPE_FILEPROVIDER,
  APNS_PUSH_TYPE_MDM,
  APNS_PUSH_TYPE_LIVEACTIVITY,
  APNS_PUSH_TYPE_PUSHTOTALK,
  APNS_PUSH_TYPE_WIDGETS,
  APNS_PUSH_TYPE_CONTROLS,
  APNS__PUSH_TYPE_COUNT
} apns_push_type;

/* The header value: "alert", "background", ..., "pushtotalk", "widgets", "controls". NULL for DEFAULT and for
 * values out of range. Static string. */
APNS_EXTERN const char *apns_push_type_string(apns_push_type type);
/* The push type named by s (exact, lowercase, as in the header). Returns 0 and sets *out, or APNS_EBADPUSHTYPE
 * (unknown or NULL name; *out untouched), or APNS_EINVAL (out NULL). */
APNS_EXTERN int apns_push_type_from_string(const char *s, apns_push_type *out);
/* What Apple requires after the bundle id in apns-topic for this push type: ".voip" (voip), ".complication",
 * ".pushkit.fileprovider", ".push-type.liveactivity", ".voip-ptt" (pushtotalk), ".location-query" (location),
 * ".push-type.widgets", ".push-type.controls"; "" for alert, background, mdm (whose topic is the MDM certificate's
 * own) and DEFAULT. NULL for values out of range. Static string. */
APNS_EXTERN const char *apns_push_type_topic_suffix(apns_push_type type);
/* The apns-priority the client uses when you give none: 5 for background (Apple requires it), 10 for the rest.
 * 0 for values out of range. */
APNS_EXTERN int apns_push_type_default_priority(apns_push_type type);

/* ------------------------------------------------------------------------------------------------------------------
 * Payload size limits (bytes of the serialized JSON body, as APNs counts them)
 * ---------------------------------------------------------------------------------------------------------------- */
#define APNS_PAYLOAD_MAX 4096           /* every push type but voip */
#define APNS_PAYLOAD_MAX_VOIP 5120      /* voip */
#define APNS_PAYLOAD_MAX_BROADCAST 5120 /* broadcast pushes to a channel (POST /4/broadcasts/...) */
/* Raw JSON nested deeper than this (objects and arrays) is refused as APNS_EBADJSON. */
#define APNS_JSON_MAX_DEPTH 2048

/* APNS_PAYLOAD_MAX_VOIP for voip, APNS_PAYLOAD_MAX for every other type (DEFAULT included). Broadcasts are not a
 * push type: use APNS_PAYLOAD_MAX_BROADCAST for them. */
APNS_EXTERN size_t apns_payload_limit(apns_push_type type);

/* ------------------------------------------------------------------------------------------------------------------
 * Notifications
 *
 * Ownership: the notification owns copies of everything you pass; your strings are yours again when a call returns.
 * A notification is not tied to a client or a loop: build it once and send it to as many devices as you like (its
 * serialization is cached until you change it). Not thread-safe: use one thread at a time.
 *
 * Errors shared by every setter: APNS_EINVAL when n is NULL, a required argument is NULL or a value is out of its
 * documented range, or when n was made by apns_notification_new_raw (raw notifications are immutable);
 * APNS_EBADUTF8 when a string is not valid UTF-8; APNS_ENOMEM. On any error the notification is unchanged.
 * Setting a key that is already set replaces its value. Setters that take a string or JSON text remove the key
 * when given NULL; apns_notification_unset removes any aps key.
 *
 * Key order (the serialization is deterministic, byte for byte):
 *   - "aps" comes first, and only when at least one aps key is set (an MDM payload has none);
 *   - aps keys in the fixed order of this header, whatever order you set them in: alert, badge, sound, thread-id,
 *     category, content-available, mutable-content, target-content-id, interruption-level, relevance-score,
 *     filter-criteria, timestamp, event, content-state, stale-date, dismissal-date, attributes-type, attributes,
 *     input-push-token, input-push-channel;
 *   - alert object fields in the fixed order: title, subtitle, body, launch-image, title-loc-key, title-loc-args,
 *     subtitle-loc-key, subtitle-loc-args, loc-key, loc-args; sound object: critical, name, volume;
 *   - custom keys after aps, in the order they were first set (replacing a value keeps its place);
 *   - JSON you give as text (custom values, content-state, attributes) keeps its own key order.
 * So loc-key "Hello World!", loc-args ["foo","bar"] and badge 42 serialize, in any call order, to exactly
 *   {"aps":{"alert":{"loc-key":"Hello World!","loc-args":["foo","bar"]},"badge":42}}
 *
 * Output format: compact (no spaces), UTF-8 written as UTF-8 (only '"', '\' and control characters are escaped),
 * integers as integers, other numbers in the shortest form that reads back as the same double (0.8 is "0.8", not
 * "0.80000000000000004"), and with a fraction or exponent so they stay non-integers ("1.0").
 * ---------------------------------------------------------------------------------------------------------------- */
typedef struct apns_notification apns_notification;

/* Creates an empty notification in *out. Returns 0, APNS_EINVAL (out NULL) or APNS_ENOMEM. Free it with
 * apns_notification_free. */
APNS_EXTERN int apns_notification_new(apns_notification **out);

/* Creates a notification from your own JSON: len bytes at json (need not be NUL-terminated), copied and later sent
 * byte for byte (whitespace included; its size is counted as given). It must be valid UTF-8 (APNS_EBADUTF8), one
 * JSON object without duplicate keys whose "aps", when present, is an object (APNS_EBADJSON), and not empty: no
 * bytes, only whitespace, or {} give APNS_EPAYLOADEMPTY. The size limit is checked when it is serialized, since it
 * depends on the push type. Setters refuse a raw notification (APNS_EINVAL). Checked without a tree
 * (apns_json_scan): it allocates the notification and its copy of the bytes, nothing more, but in the scan's rare
 * unsure cases (see apns_json_scan_result), which jansson decides. Returns 0, those codes, APNS_EINVAL (out or
 * json NULL) or APNS_ENOMEM. */
APNS_EXTERN int apns_notification_new_raw(apns_notification **out, const char *json, size_t len);

/* Frees n and everything it owns, including the bytes apns_notification_serialize handed out. NULL is allowed. */
APNS_EXTERN void apns_notification_free(apns_notification *n);

/* ---- alert: a plain string, or an object of fields. The last call wins: setting the text removes every field,
 * setting a field removes the text. ---- */

/* "alert": "text". NULL removes the alert (text and fields). */
APNS_EXTERN int apns_notification_set_alert_text(apns_notification *n, const char *text);
/* One field of the alert object each; NULL removes that field. */
APNS_EXTERN int apns_notification_set_alert_title(apns_notification *n, const char *title);
APNS_EXTERN int apns_notification_set_alert_subtitle(apns_notification *n, const char *subtitle);
APNS_EXTERN int apns_notification_set_alert_body(apns_notification *n, const char *body);
APNS_EXTERN int apns_notification_set_alert_launch_image(apns_notification *n, const char *launch_image);
APNS_EXTERN int apns_notification_set_alert_title_loc_key(apns_notification *n, const char *key);
APNS_EXTERN int apns_notification_set_alert_subtitle_loc_key(apns_notification *n, const char *key);
APNS_EXTERN int apns_notification_set_alert_loc_key(apns_notification *n, const char *key);
/* Localization arguments: an array of count strings. args NULL (with count 0) removes the field; count 0 with a
 * non-NULL args gives []. A NULL element is APNS_EINVAL. */
APNS_EXTERN int apns_notification_set_alert_title_loc_args(apns_notification *n, const char *const *args,
                                                           size_t count);
APNS_EXTERN int apns_notification_set_alert_subtitle_loc_args(apns_notification *n, const char *const *args,
                                                              size_t count);
APNS_EXTERN int apns_notification_set_alert_loc_args(apns_notification *n, const char *const *args, size_t count);

/* ---- the other aps keys ---- */

/* "badge": badge, badge >= 0. 0 is sent (it clears the app's badge). Negative: APNS_EINVAL. */
APNS_EXTERN int apns_notification_set_badge(apns_notification *n, int badge);
/* "sound": "name" (a sound file in the app bundle, or "default"). NULL removes the sound. */
APNS_EXTERN int apns_notification_set_sound(apns_notification *n, const char *name);
/* A critical alert sound: "sound": {"critical":1,"name":name,"volume":volume}. name is required; volume from 0
 * (silent) to 1 (full), else APNS_EINVAL (NaN too). Needs Apple's critical alerts entitlement in the app. */
APNS_EXTERN int apns_notification_set_critical_sound(apns_notification *n, const char *name, double volume);
/* "thread-id", "category", "target-content-id", "filter-criteria": strings; NULL removes. */
APNS_EXTERN int apns_notification_set_thread_id(apns_notification *n, const char *thread_id);
APNS_EXTERN int apns_notification_set_category(apns_notification *n, const char *category);
APNS_EXTERN int apns_notification_set_target_content_id(apns_notification *n, const char *id);
APNS_EXTERN int apns_notification_set_filter_criteria(apns_notification *n, const char *criteria);
/* "content-available": 1 when on is non-zero; 0 removes the key (Apple wants 1 or nothing). */
APNS_EXTERN int apns_notification_set_content_available(apns_notification *n, int on);
/* "mutable-content": 1 when on is non-zero; 0 removes the key. */
APNS_EXTERN int apns_notification_set_mutable_content(apns_notification *n, int on);
/* "interruption-level": "passive", "active", "time-sensitive" or "critical" (exact); anything else is APNS_EINVAL.
 * NULL removes. */
APNS_EXTERN int apns_notification_set_interruption_level(apns_notification *n, const char *level);
/* "relevance-score": from 0 to 1, else APNS_EINVAL (NaN too). */
APNS_EXTERN int apns_notification_set_relevance_score(apns_notification *n, double score);

/* ---- Live Activities (push type liveactivity) ---- */

/* "timestamp", "stale-date", "dismissal-date": UNIX seconds, >= 0 (else APNS_EINVAL). */
APNS_EXTERN int apns_notification_set_timestamp(apns_notification *n, int64_t unix_seconds);
APNS_EXTERN int apns_notification_set_stale_date(apns_notification *n, int64_t unix_seconds);
APNS_EXTERN int apns_notification_set_dismissal_date(apns_notification *n, int64_t unix_seconds);
/* "event": "start", "update" or "end" (exact), else APNS_EINVAL. NULL removes. */
APNS_EXTERN int apns_notification_set_event(apns_notification *n, const char *event);
/* "content-state": JSON text of an object (NUL-terminated; APNS_EBADJSON when it is not an object, has duplicate
 * keys or is not JSON). Replaces the whole content state; NULL removes it. */
APNS_EXTERN int apns_notification_set_content_state(apns_notification *n, const char *json_object);
/* Sets one key of "content-state" to a JSON value given as text ("42", "\"on time\"", "{\"eta\":5}"), creating
 * the object when there is none. Keys keep the order they were first set in. json_value NULL removes the key.
 * APNS_EBADJSON when json_value is not one JSON value; key must be valid UTF-8. */
APNS_EXTERN int apns_notification_set_content_state_value(apns_notification *n, const char *key,
                                                          const char *json_value);
/* "attributes-type" (the ActivityAttributes type name) and "attributes" (JSON text of an object, as for
 * content-state), both for event "start". NULL removes. */
APNS_EXTERN int apns_notification_set_attributes_type(apns_notification *n, const char *type);
APNS_EXTERN int apns_notification_set_attributes(apns_notification *n, const char *json_object);
/* "input-push-token": 1 when on is non-zero (ask the started activity for its push token); 0 removes. */
APNS_EXTERN int apns_notification_set_input_push_token(apns_notification *n, int on);
/* "input-push-channel": the broadcast channel id the started activity should listen to. NULL removes. */
APNS_EXTERN int apns_notification_set_input_push_channel(apns_notification *n, const char *channel_id);

/* Removes the aps key named aps_key as Apple spells it ("badge", "sound", "alert", "content-state", ...); removing
 * a key that is not set is not an error. APNS_EINVAL for a name that is not an aps key listed above. */
APNS_EXTERN int apns_notification_unset(apns_notification *n, const char *aps_key);

/* ---- custom keys, beside "aps" (never inside it) ---- */

/* Sets the top-level key to a JSON value given as text: "42", "true", "\"text\"", "{\"id\":7}". json_value NULL
 * removes the key. key "aps" is refused (APNS_EINVAL): use the setters above. APNS_EBADJSON when json_value is not
 * exactly one JSON value (or an object in it has duplicate keys); APNS_EBADUTF8 for key or text. */
APNS_EXTERN int apns_notification_set_custom(apns_notification *n, const char *key, const char *json_value);
/* Typed variants: a JSON string (value NULL removes the key), an integer. Same rules for key. */
APNS_EXTERN int apns_notification_set_custom_string(apns_notification *n, const char *key, const char *value);
APNS_EXTERN int apns_notification_set_custom_int(apns_notification *n, const char *key, int64_t value);

/* ---- reading ---- */

/* 1 when the payload is "content-available only": aps has content-available 1 and no alert, badge or sound
 * (custom keys and other aps keys do not matter). The client then defaults the push type to background and the
 * priority to 5. Works on raw notifications too. 0 otherwise, and for NULL. */
APNS_EXTERN int apns_notification_is_background(const apns_notification *n);

/* Serializes n (see "Key order" and "Output format" above) and checks its size against limit, a byte count (0 means
 * APNS_PAYLOAD_MAX; pass apns_payload_limit(push_type), not the push type itself, or APNS_PAYLOAD_MAX_BROADCAST). On
 * success *out points to *len bytes followed by a NUL (not counted). The bytes belong to n: they stay valid until n
 * is changed or freed; copy them to keep them. Serializing again without a change in between costs nothing. Returns
 * 0; APNS_EPAYLOADTOOLARGE when the payload is longer than limit, with *len set to its actual size;
 * APNS_EPAYLOADEMPTY when nothing is set; APNS_EINVAL (a NULL argument); APNS_ENOMEM. On error *out is NULL and
 * *len is 0 (except for APNS_EPAYLOADTOOLARGE). */
APNS_EXTERN int apns_notification_serialize(apns_notification *n, size_t limit, const char **out, size_t *len);

/* ------------------------------------------------------------------------------------------------------------------
 * Validation: each returns 0 or the error code named, never crashes on hostile input (NULL, huge, binary).
 * ---------------------------------------------------------------------------------------------------------------- */

/* Longest device token accepted, in hex characters. Tokens are 64 today; Apple says not to assume a length, so we
 * only cap it to keep hostile input out of paths and logs. */
#define APNS_DEVICE_TOKEN_MAX 200
/* Longest topic accepted, in bytes (bundle ids are at most 155, plus a suffix such as ".push-type.liveactivity"). */
#define APNS_TOPIC_MAX 255
/* Longest apns-collapse-id, in bytes (Apple's limit). */
#define APNS_COLLAPSE_ID_MAX 64

/* A device token: non-empty, even length, at most APNS_DEVICE_TOKEN_MAX characters, hex digits only (either case;
 * sent as given). APNS_EBADTOKEN otherwise (NULL too). */
APNS_EXTERN int apns_validate_device_token(const char *token);
/* An apns-topic: 1 to APNS_TOPIC_MAX bytes of printable ASCII, no spaces (0x21 to 0x7e). APNS_EBADTOPIC otherwise
 * (NULL too). The suffix a push type needs is not checked: see apns_push_type_topic_suffix. */
APNS_EXTERN int apns_validate_topic(const char *topic);
/* An apns-id: a canonical UUID, 8-4-4-4-12 hex digits with dashes, 36 characters. Upper case is accepted; when out
 * is not NULL it receives the lowercase form (the one APNs echoes) and a NUL; out may be the same buffer as id.
 * APNS_EBADAPNSID otherwise (NULL too); out is then untouched. */
APNS_EXTERN int apns_validate_apns_id(const char *id, char out[37]);
/* An apns-collapse-id: 1 to APNS_COLLAPSE_ID_MAX bytes, a valid header value (no CR, LF, NUL, no leading or
 * trailing space or tab). APNS_EBADCOLLAPSEID otherwise (NULL and "" too: leave the header out instead). */
APNS_EXTERN int apns_validate_collapse_id(const char *id);
/* An apns-priority: 1, 5 or 10, else APNS_EBADPRIORITY. Rule for background: Apple requires 5, so 10 with
 * APNS_PUSH_TYPE_BACKGROUND is APNS_EBADPRIORITY (an error, not a silent change); 1 and 5 pass. DEFAULT is checked
 * as alert would be. An out-of-range type is APNS_EBADPUSHTYPE. */
APNS_EXTERN int apns_validate_priority(int priority, apns_push_type type);
/* An apns-expiration: UNIX seconds >= 0 (0 means "try once, do not store"). APNS_EINVAL when negative. */
APNS_EXTERN int apns_validate_expiration(int64_t expiration);
/* One HTTP/2 request header for the generic API (apns_request): the name a non-empty lowercase token (RFC 9110
 * tchar, so no ':' pseudo-headers, no upper case), and not a connection-specific field HTTP/2 forbids (connection,
 * keep-alive, proxy-connection, transfer-encoding, upgrade, te); the value without CR, LF or NUL and without
 * leading or trailing space or tab (RFC 9113 8.2.1). APNS_EBADHEADER otherwise (NULL too). */
APNS_EXTERN int apns_validate_header(const char *name, const char *value);
/* A JSON body you built yourself, with the checks of apns_notification_new_raw plus the size: len <= limit (0
 * means APNS_PAYLOAD_MAX), else APNS_EPAYLOADTOOLARGE. Checks run in this order: empty, size, UTF-8, JSON. Parses
 * the JSON without a tree (apns_json_scan) and allocates nothing but in the scan's rare unsure cases, where jansson
 * decides (APNS_ENOMEM). APNS_EINVAL when json is NULL. */
APNS_EXTERN int apns_validate_payload(const char *json, size_t len, size_t limit);
/* len bytes of well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF; NUL is a
 * character like any other). Returns 0 or APNS_EBADUTF8; APNS_EINVAL when s is NULL and len is not 0. Allocates
 * nothing. */
APNS_EXTERN int apns_validate_utf8(const char *s, size_t len);

/* ------------------------------------------------------------------------------------------------------------------
 * Scanning JSON without a tree
 *
 * apns_json_scan checks one JSON value inside a larger text, as jansson's parser (with duplicate keys refused)
 * would, and allocates nothing: it is the check behind apns_notification_new_raw, apns_client_send_json and
 * apns_validate_payload, and what a bulk sender scans its lines with (tools/common/bulk.c). Strings: no raw control
 * characters, valid escapes, no \u0000, no unpaired surrogates, well-formed UTF-8. Numbers: RFC 8259's grammar;
 * an integer (no fraction, no exponent) must fit 64 signed bits. Objects: no key twice. Nesting: a value at depth
 * greater than APNS_JSON_MAX_DEPTH is refused (the caller gives the depth of the value it scans, 1 for a
 * document).
 * ---------------------------------------------------------------------------------------------------------------- */

/* The value is a notification payload: note its members, "aps" and the background test in the result. */
#define APNS_JSON_SCAN_PAYLOAD 1u
/* A number at the top that is an integer too big for 64 bits is not an error: the result says it does not fit. */
#define APNS_JSON_SCAN_BIG_INTEGER 2u

typedef struct apns_json_scan_result {
  size_t end;         /* success: the offset just past the value; syntax error: the offset of the error */
  const char *syntax; /* syntax error: a static sentence ("duplicate object key", ...); NULL on success */
  int type;           /* the value's first byte: '{', '[', '"', 't', 'f', 'n', or '0' for a number */
  int integer, fits;  /* a number: no fraction nor exponent; an integer that fits int64_t */
  int64_t value;      /* an integer that fits */
  size_t string_len;  /* a string: its length unescaped */
  int escaped;        /* a string: it has a backslash */
  int spaced;         /* whitespace outside strings inside the value (a copy without it is shorter) */
  /* Cases the scan leaves to a parser with a tree (apns_notification_new_raw decides them): a key with an escape
   * (is "\u0061" a duplicate of "a"?), more than 256 keys open at once, a real whose exponent has three digits or
   * more, or which is over 300 bytes long (may overflow a double). Rare; the rest of the result holds. */
  int unsure;
  /* With APNS_JSON_SCAN_PAYLOAD and an object: */
  size_t members; /* its members */
  int aps_seen;   /* it has "aps" */
  int aps_object; /* ... and "aps" is an object */
  int background; /* "aps" has "content-available": 1 and no "alert", "badge" or "sound" */
} apns_json_scan_result;

/* Scans the JSON value at text[start] (no whitespace before it; text is len bytes, not NUL-terminated, and may go on
 * after the value). A string at the top is unescaped into dst when dst is not NULL, up to dcap bytes, NUL-terminated
 * when that fits (string_len is the whole length: more than dcap means cut). depth: that of the value (1 for a whole
 * document). Returns 0, APNS_EBADJSON (a syntax error: syntax and end say what and where) or APNS_EINVAL (text or
 * out NULL, start > len). Allocates nothing, fills *out on every return, runs in time linear in len. */
APNS_EXTERN int apns_json_scan(const char *text, size_t len, size_t start, int depth, unsigned flags, char *dst,
                               size_t dcap, apns_json_scan_result *out);

#ifdef __cplusplus
}
#endif
#endif /* APNS_PAYLOAD_H */
