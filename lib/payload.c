/* The notification payload builder. Layer 1: no I/O.
 *
 * Values are jansson objects, one slot per known aps key, so that the output order is fixed by this file rather
 * than by the order of the caller's calls: the same notification always gives the same bytes. The writer is our
 * own, over those values, for three things jansson's dumper does not give together: the byte count we check
 * against the limit comes from the one buffer we send, numbers are written in their shortest exact form ("0.8",
 * where json_dumps writes "0.80000000000000004"), and nothing is allocated but that buffer, which is kept and
 * reused until the notification changes.
 *
 * Every string is checked for UTF-8 here before jansson sees it, and built with the _nocheck constructors: jansson
 * answers NULL both for bad UTF-8 and for no memory, and the caller deserves to know which. */
#include <apns/common.h>
#include <apns/payload.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "validate.h"

/* The aps keys, in output order. */
enum {
  K_ALERT,
  K_BADGE,
  K_SOUND,
  K_THREAD_ID,
  K_CATEGORY,
  K_CONTENT_AVAILABLE,
  K_MUTABLE_CONTENT,
  K_TARGET_CONTENT_ID,
  K_INTERRUPTION_LEVEL,
  K_RELEVANCE_SCORE,
  K_FILTER_CRITERIA,
  K_TIMESTAMP,
  K_EVENT,
  K_CONTENT_STATE,
  K_STALE_DATE,
  K_DISMISSAL_DATE,
  K_ATTRIBUTES_TYPE,
  K_ATTRIBUTES,
  K_INPUT_PUSH_TOKEN,
  K_INPUT_PUSH_CHANNEL,
  K_COUNT
};

static const char *const aps_names[K_COUNT] = {
    [K_ALERT] = "alert",
    [K_BADGE] = "badge",
    [K_SOUND] = "sound",
    [K_THREAD_ID] = "thread-id",
    [K_CATEGORY] = "category",
    [K_CONTENT_AVAILABLE] = "content-available",
    [K_MUTABLE_CONTENT] = "mutable-content",
    [K_TARGET_CONTENT_ID] = "target-content-id",
    [K_INTERRUPTION_LEVEL] = "interruption-level",
    [K_RELEVANCE_SCORE] = "relevance-score",
    [K_FILTER_CRITERIA] = "filter-criteria",
    [K_TIMESTAMP] = "timestamp",
    [K_EVENT] = "event",
    [K_CONTENT_STATE] = "content-state",
    [K_STALE_DATE] = "stale-date",
    [K_DISMISSAL_DATE] = "dismissal-date",
    [K_ATTRIBUTES_TYPE] = "attributes-type",
    [K_ATTRIBUTES] = "attributes",
    [K_INPUT_PUSH_TOKEN] = "input-push-token",
    [K_INPUT_PUSH_CHANNEL] = "input-push-channel",
};

/* The alert object's fields, in output order. */
enum {
  F_TITLE,
  F_SUBTITLE,
  F_BODY,
  F_LAUNCH_IMAGE,
  F_TITLE_LOC_KEY,
  F_TITLE_LOC_ARGS,
  F_SUBTITLE_LOC_KEY,
  F_SUBTITLE_LOC_ARGS,
  F_LOC_KEY,
  F_LOC_ARGS,
  F_COUNT
};

static const char *const alert_names[F_COUNT] = {
    [F_TITLE] = "title",
    [F_SUBTITLE] = "subtitle",
    [F_BODY] = "body",
    [F_LAUNCH_IMAGE] = "launch-image",
    [F_TITLE_LOC_KEY] = "title-loc-key",
    [F_TITLE_LOC_ARGS] = "title-loc-args",
    [F_SUBTITLE_LOC_KEY] = "subtitle-loc-key",
    [F_SUBTITLE_LOC_ARGS] = "subtitle-loc-args",
    [F_LOC_KEY] = "loc-key",
    [F_LOC_ARGS] = "loc-args",
};

struct apns_notification {
  json_t *aps[K_COUNT];   /* aps[K_ALERT] is the alert text when the alert is a plain string */
  json_t *alert[F_COUNT]; /* the alert object's fields; never set together with the text */
  json_t *custom;         /* top-level keys beside aps, in insertion order; NULL until the first */
  int raw;                /* made by apns_notification_new_raw: buf holds the caller's bytes, for good */
  int raw_background;     /* apns_notification_is_background, computed when the raw JSON was parsed */
  int fresh;              /* buf/len hold the serialization of the current content */
  char *buf;              /* serialization, NUL-terminated; cap bytes allocated */
  size_t len, cap;
};

/* ---- building values ---- */

static int writable(const apns_notification *n) {
  return n != NULL && !n->raw;
}

static void put(apns_notification *n, json_t **slot, json_t *value) {
  json_decref(*slot);
  *slot = value;
  n->fresh = 0;
}

static int new_string(const char *s, json_t **out) {
  size_t len = strlen(s);
  if (!apns__utf8_valid(s, len)) return APNS_EBADUTF8;
  *out = json_stringn_nocheck(s, len);
  return *out != NULL ? 0 : APNS_ENOMEM;
}

/* Adds key: value to obj, taking value (NULL means its constructor ran out of memory). */
static int obj_add(json_t *obj, const char *key, json_t *value) {
  if (value == NULL) return APNS_ENOMEM;
  return json_object_set_new_nocheck(obj, key, value) == 0 ? 0 : APNS_ENOMEM;
}

/* json_loadb with an error code we can trust. jansson reports its own allocation failures as syntax errors
 * (json_error_unknown or json_error_invalid_syntax, pinned by payload_alloc_failures_*), so a failure on text that
 * our allocation-free grammar check accepts is an allocation failure. Duplicate keys, numeric overflow, \u0000
 * and excessive depth come with codes jansson sets only for those causes. */
static int load_json(const char *text, size_t len, int any_top, json_t **out) {
  json_error_t error;
  if (!apns__utf8_valid(text, len)) return APNS_EBADUTF8;
  memset(&error, 0, sizeof error); /* jansson leaves it unset when its first allocation fails */
  *out = json_loadb(text, len, (any_top ? JSON_DECODE_ANY : 0) | JSON_REJECT_DUPLICATES, &error);
  if (*out != NULL) return 0;
  switch (json_error_code(&error)) {
  case json_error_out_of_memory:
    return APNS_ENOMEM;
  case json_error_duplicate_key:
  case json_error_numeric_overflow:
  case json_error_null_character:
  case json_error_stack_overflow:
    return APNS_EBADJSON;
  default:
    return apns__json_valid(text, len, any_top) ? APNS_ENOMEM : APNS_EBADJSON;
  }
}

/* Parses NUL-terminated JSON text: one value of any type, or an object when want_object. */
static int parse_json(const char *text, int want_object, json_t **out) {
  json_t *value;
  int err = load_json(text, strlen(text), 1, &value);
  if (err) return err;
  if (want_object && !json_is_object(value)) {
    json_decref(value);
    return APNS_EBADJSON;
  }
  *out = value;
  return 0;
}

/* A string slot: NULL removes it. */
/* The address of a member of n, or NULL when n is NULL (taking a member's address through NULL is undefined). The
 * setters then refuse n == NULL before they touch the slot. */
#define APNS__SLOT(n, member) ((n) == NULL ? NULL : &(n)->member)

static int set_string(apns_notification *n, json_t **slot, const char *s) {
  json_t *value = NULL;
  if (!writable(n)) return APNS_EINVAL;
  if (s != NULL) {
    int err = new_string(s, &value);
    if (err) return err;
  }
  put(n, slot, value);
  return 0;
}

static int set_int(apns_notification *n, int key, json_int_t v) {
  if (!writable(n)) return APNS_EINVAL;
  json_t *value = json_integer(v);
  if (value == NULL) return APNS_ENOMEM;
  put(n, APNS__SLOT(n, aps[key]), value);
  return 0;
}

/* A key whose only value is 1 ("content-available": 1): on == 0 removes it. */
static int set_flag(apns_notification *n, int key, int on) {
  if (!writable(n)) return APNS_EINVAL;
  if (!on) {
    put(n, APNS__SLOT(n, aps[key]), NULL);
    return 0;
  }
  return set_int(n, key, 1);
}

static int set_date(apns_notification *n, int key, int64_t unix_seconds) {
  if (!writable(n) || unix_seconds < 0) return APNS_EINVAL;
  return set_int(n, key, (json_int_t)unix_seconds);
}

/* A string that must be one of a few words (NULL-terminated list); NULL removes it. */
static int set_word(apns_notification *n, int key, const char *s, const char *const *words) {
  if (!writable(n)) return APNS_EINVAL;
  if (s != NULL) {
    const char *const *w = words;
    while (*w != NULL && strcmp(*w, s) != 0) w++;
    if (*w == NULL) return APNS_EINVAL;
  }
  return set_string(n, APNS__SLOT(n, aps[key]), s);
}

/* A JSON object given as text; NULL removes it. */
static int set_object_text(apns_notification *n, int key, const char *json_object) {
  json_t *value = NULL;
  if (!writable(n)) return APNS_EINVAL;
  if (json_object != NULL) {
    int err = parse_json(json_object, 1, &value);
    if (err) return err;
  }
  put(n, APNS__SLOT(n, aps[key]), value);
  return 0;
}

/* Sets key in the object at *slot to json_value parsed, or to typed (taken), creating the object when needed; with
 * neither, removes key. On error the object is as it was: a new object is released, and so is the value. */
static int set_member(apns_notification *n, json_t **slot, const char *key, const char *json_value, json_t *typed) {
  json_t *value = typed;
  int err;
  if (json_value != NULL && (err = parse_json(json_value, 0, &value)) != 0) return err;
  if (value == NULL) { /* removal */
    if (*slot != NULL && json_object_del(*slot, key) == 0) n->fresh = 0;
    return 0;
  }
  json_t *obj = *slot != NULL ? *slot : json_object();
  if (obj == NULL || json_object_set_new_nocheck(obj, key, value) != 0) {
    if (obj == NULL) json_decref(value); /* set_new takes value even when it fails */
    if (obj != *slot) json_decref(obj);
    return APNS_ENOMEM;
  }
  *slot = obj;
  n->fresh = 0;
  return 0;
}

static int check_key(const char *key) {
  if (key == NULL) return APNS_EINVAL;
  return apns__utf8_valid(key, strlen(key)) ? 0 : APNS_EBADUTF8;
}

/* ---- life cycle ---- */

int apns_notification_new(apns_notification **out) {
  if (out == NULL) return APNS_EINVAL;
  *out = apns__calloc(1, sizeof **out);
  return *out != NULL ? 0 : APNS_ENOMEM;
}

static int is_json_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* The checks of a caller's JSON body with a jansson tree: only for what the scan leaves unsure. */
static int check_raw_tree(const char *json, size_t len, int *background) {
  json_t *root;
  int err = load_json(json, len, 0, &root);
  if (err) return err;
  json_t *aps = json_object_get(root, "aps");
  if (!json_is_object(root))
    err = APNS_EBADJSON;
  else if (json_object_size(root) == 0)
    err = APNS_EPAYLOADEMPTY;
  else if (aps != NULL && !json_is_object(aps))
    err = APNS_EBADJSON;
  if (err == 0 && background != NULL) {
    json_t *ca = json_object_get(aps, "content-available"); /* NULL aps gives NULL */
    *background = json_is_integer(ca) && json_integer_value(ca) == 1 && json_object_get(aps, "alert") == NULL &&
                  json_object_get(aps, "badge") == NULL && json_object_get(aps, "sound") == NULL;
  }
  json_decref(root);
  return err;
}

/* The checks of a caller's JSON body, but its size: scanned without a tree (apns_json_scan), so that a raw send
 * allocates nothing to be checked. The codes are jansson's order: empty, UTF-8 anywhere, then JSON. *background:
 * content-available only. */
static int check_raw(const char *json, size_t len, int *background) {
  size_t i = 0;
  apns_json_scan_result r;
  while (i < len && is_json_space(json[i])) i++;
  if (i == len) return APNS_EPAYLOADEMPTY;
  int err = json[i] == '{' ? apns_json_scan(json, len, i, 1, APNS_JSON_SCAN_PAYLOAD, NULL, 0, &r) : APNS_EBADJSON;
  if (err == 0) {
    i = r.end;
    while (i < len && is_json_space(json[i])) i++;
    if (i != len) err = APNS_EBADJSON;
  }
  /* The scan checked the UTF-8 of every string and let nothing else outside ASCII through: only a failure needs
   * the whole text's UTF-8 looked at, which jansson's order puts first. */
  if (err) return apns__utf8_valid(json, len) ? APNS_EBADJSON : APNS_EBADUTF8;
  if (r.unsure) return check_raw_tree(json, len, background);
  if (r.members == 0) return APNS_EPAYLOADEMPTY;
  if (r.aps_seen && !r.aps_object) return APNS_EBADJSON;
  if (background != NULL) *background = r.background;
  return 0;
}

int apns_notification_new_raw(apns_notification **out, const char *json, size_t len) {
  apns_notification *n;
  int background = 0, err;
  if (out == NULL) return APNS_EINVAL;
  *out = NULL;
  if (json == NULL) return APNS_EINVAL;
  if ((err = check_raw(json, len, &background)) != 0) return err;
  if ((n = apns__calloc(1, sizeof *n)) == NULL) goto fail_notification;
  if ((n->buf = apns__strndup(json, len)) == NULL) goto fail_buf;
  n->raw = 1;
  n->raw_background = background;
  n->fresh = 1;
  n->len = len;
  n->cap = len + 1;
  *out = n;
  return 0;

fail_buf:
  apns__free(n);
fail_notification:
  return APNS_ENOMEM;
}

void apns_notification_free(apns_notification *n) {
  if (n == NULL) return;
  for (int k = 0; k < K_COUNT; k++) json_decref(n->aps[k]);
  for (int f = 0; f < F_COUNT; f++) json_decref(n->alert[f]);
  json_decref(n->custom);
  apns__free(n->buf);
  apns__free(n);
}

/* ---- alert ---- */

int apns_notification_set_alert_text(apns_notification *n, const char *text) {
  int err = set_string(n, APNS__SLOT(n, aps[K_ALERT]), text);
  if (err == 0)
    for (int f = 0; f < F_COUNT; f++) put(n, APNS__SLOT(n, alert[f]), NULL);
  return err;
}

static int set_alert_field(apns_notification *n, int field, const char *s) {
  int err = set_string(n, APNS__SLOT(n, alert[field]), s);
  if (err == 0 && s != NULL) put(n, APNS__SLOT(n, aps[K_ALERT]), NULL);
  return err;
}

static int set_alert_args(apns_notification *n, int field, const char *const *args, size_t count) {
  if (!writable(n) || (args == NULL && count != 0)) return APNS_EINVAL;
  if (args == NULL) {
    put(n, APNS__SLOT(n, alert[field]), NULL);
    return 0;
  }
  /* Every argument is checked before anything is allocated: errors other than ENOMEM cost nothing. */
  for (size_t i = 0; i < count; i++) {
    if (args[i] == NULL) return APNS_EINVAL;
    if (!apns__utf8_valid(args[i], strlen(args[i]))) return APNS_EBADUTF8;
  }
  json_t *array = json_array();
  if (array == NULL) return APNS_ENOMEM;
  for (size_t i = 0; i < count; i++) {
    if (json_array_append_new(array, json_string_nocheck(args[i])) != 0) {
      json_decref(array);
      return APNS_ENOMEM;
    }
  }
  put(n, APNS__SLOT(n, alert[field]), array);
  put(n, APNS__SLOT(n, aps[K_ALERT]), NULL);
  return 0;
}

int apns_notification_set_alert_title(apns_notification *n, const char *title) {
  return set_alert_field(n, F_TITLE, title);
}
int apns_notification_set_alert_subtitle(apns_notification *n, const char *subtitle) {
  return set_alert_field(n, F_SUBTITLE, subtitle);
}
int apns_notification_set_alert_body(apns_notification *n, const char *body) {
  return set_alert_field(n, F_BODY, body);
}
int apns_notification_set_alert_launch_image(apns_notification *n, const char *launch_image) {
  return set_alert_field(n, F_LAUNCH_IMAGE, launch_image);
}
int apns_notification_set_alert_title_loc_key(apns_notification *n, const char *key) {
  return set_alert_field(n, F_TITLE_LOC_KEY, key);
}
int apns_notification_set_alert_subtitle_loc_key(apns_notification *n, const char *key) {
  return set_alert_field(n, F_SUBTITLE_LOC_KEY, key);
}
int apns_notification_set_alert_loc_key(apns_notification *n, const char *key) {
  return set_alert_field(n, F_LOC_KEY, key);
}
int apns_notification_set_alert_title_loc_args(apns_notification *n, const char *const *args, size_t count) {
  return set_alert_args(n, F_TITLE_LOC_ARGS, args, count);
}
int apns_notification_set_alert_subtitle_loc_args(apns_notification *n, const char *const *args, size_t count) {
  return set_alert_args(n, F_SUBTITLE_LOC_ARGS, args, count);
}
int apns_notification_set_alert_loc_args(apns_notification *n, const char *const *args, size_t count) {
  return set_alert_args(n, F_LOC_ARGS, args, count);
}

/* ---- other aps keys ---- */

int apns_notification_set_badge(apns_notification *n, int badge) {
  if (badge < 0) return APNS_EINVAL;
  return set_int(n, K_BADGE, badge);
}

int apns_notification_set_sound(apns_notification *n, const char *name) {
  return writable(n) ? set_string(n, APNS__SLOT(n, aps[K_SOUND]), name) : APNS_EINVAL;
}

int apns_notification_set_critical_sound(apns_notification *n, const char *name, double volume) {
  json_t *sound;
  int err;
  if (!writable(n) || name == NULL || !(volume >= 0.0 && volume <= 1.0)) return APNS_EINVAL;
  if (!apns__utf8_valid(name, strlen(name))) return APNS_EBADUTF8;
  if ((sound = json_object()) == NULL) return APNS_ENOMEM;
  if ((err = obj_add(sound, "critical", json_integer(1))) != 0 ||
      (err = obj_add(sound, "name", json_string_nocheck(name))) != 0 ||
      (err = obj_add(sound, "volume", json_real(volume))) != 0) {
    json_decref(sound);
    return err;
  }
  put(n, APNS__SLOT(n, aps[K_SOUND]), sound);
  return 0;
}

int apns_notification_set_thread_id(apns_notification *n, const char *thread_id) {
  return writable(n) ? set_string(n, APNS__SLOT(n, aps[K_THREAD_ID]), thread_id) : APNS_EINVAL;
}
int apns_notification_set_category(apns_notification *n, const char *category) {
  return writable(n) ? set_string(n, APNS__SLOT(n, aps[K_CATEGORY]), category) : APNS_EINVAL;
}
int apns_notification_set_target_content_id(apns_notification *n, const char *id) {
  return writable(n) ? set_string(n, APNS__SLOT(n, aps[K_TARGET_CONTENT_ID]), id) : APNS_EINVAL;
}
int apns_notification_set_filter_criteria(apns_notification *n, const char *criteria) {
  return writable(n) ? set_string(n, APNS__SLOT(n, aps[K_FILTER_CRITERIA]), criteria) : APNS_EINVAL;
}
int apns_notification_set_content_available(apns_notification *n, int on) {
  return set_flag(n, K_CONTENT_AVAILABLE, on);
}
int apns_notification_set_mutable_content(apns_notification *n, int on) {
  return set_flag(n, K_MUTABLE_CONTENT, on);
}

int apns_notification_set_interruption_level(apns_notification *n, const char *level) {
  static const char *const levels[] = {"passive", "active", "time-sensitive", "critical", NULL};
  return set_word(n, K_INTERRUPTION_LEVEL, level, levels);
}

int apns_notification_set_relevance_score(apns_notification *n, double score) {
  if (!writable(n) || !(score >= 0.0 && score <= 1.0)) return APNS_EINVAL;
  json_t *value = json_real(score);
  if (value == NULL) return APNS_ENOMEM;
  put(n, APNS__SLOT(n, aps[K_RELEVANCE_SCORE]), value);
  return 0;
}

/* ---- Live Activities ---- */

int apns_notification_set_timestamp(apns_notification *n, int64_t unix_seconds) {
  return set_date(n, K_TIMESTAMP, unix_seconds);
}
int apns_notification_set_stale_date(apns_notification *n, int64_t unix_seconds) {
  return set_date(n, K_STALE_DATE, unix_seconds);
}
int apns_notification_set_dismissal_date(apns_notification *n, int64_t unix_seconds) {
  return set_date(n, K_DISMISSAL_DATE, unix_seconds);
}

int apns_notification_set_event(apns_notification *n, const char *event) {
  static const char *const events[] = {"start", "update", "end", NULL};
  return set_word(n, K_EVENT, event, events);
}

int apns_notification_set_content_state(apns_notification *n, const char *json_object) {
  return set_object_text(n, K_CONTENT_STATE, json_object);
}

int apns_notification_set_content_state_value(apns_notification *n, const char *key, const char *json_value) {
  int err;
  if (!writable(n)) return APNS_EINVAL;
  if ((err = check_key(key)) != 0) return err;
  return set_member(n, APNS__SLOT(n, aps[K_CONTENT_STATE]), key, json_value, NULL);
}

int apns_notification_set_attributes_type(apns_notification *n, const char *type) {
  return writable(n) ? set_string(n, APNS__SLOT(n, aps[K_ATTRIBUTES_TYPE]), type) : APNS_EINVAL;
}
int apns_notification_set_attributes(apns_notification *n, const char *json_object) {
  return set_object_text(n, K_ATTRIBUTES, json_object);
}
int apns_notification_set_input_push_token(apns_notification *n, int on) {
  return set_flag(n, K_INPUT_PUSH_TOKEN, on);
}
int apns_notification_set_input_push_channel(apns_notification *n, const char *channel_id) {
  return writable(n) ? set_string(n, APNS__SLOT(n, aps[K_INPUT_PUSH_CHANNEL]), channel_id) : APNS_EINVAL;
}

int apns_notification_unset(apns_notification *n, const char *aps_key) {
  if (!writable(n) || aps_key == NULL) return APNS_EINVAL;
  for (int k = 0; k < K_COUNT; k++) {
    if (strcmp(aps_names[k], aps_key) == 0) {
      put(n, APNS__SLOT(n, aps[k]), NULL);
      if (k == K_ALERT)
        for (int f = 0; f < F_COUNT; f++) put(n, APNS__SLOT(n, alert[f]), NULL);
      return 0;
    }
  }
  return APNS_EINVAL;
}

/* ---- custom keys ---- */

static int check_custom_key(const apns_notification *n, const char *key) {
  if (!writable(n)) return APNS_EINVAL;
  int err = check_key(key);
  if (err) return err;
  /* aps is ours: a custom "aps" would replace or duplicate the dictionary the setters build. */
  return strcmp(key, "aps") == 0 ? APNS_EINVAL : 0;
}

int apns_notification_set_custom(apns_notification *n, const char *key, const char *json_value) {
  int err = check_custom_key(n, key);
  if (err) return err;
  return set_member(n, APNS__SLOT(n, custom), key, json_value, NULL);
}

int apns_notification_set_custom_string(apns_notification *n, const char *key, const char *value) {
  json_t *typed = NULL;
  int err = check_custom_key(n, key);
  if (err) return err;
  if (value == NULL) return set_member(n, APNS__SLOT(n, custom), key, NULL, NULL);
  if ((err = new_string(value, &typed)) != 0) return err;
  return set_member(n, APNS__SLOT(n, custom), key, NULL, typed);
}

int apns_notification_set_custom_int(apns_notification *n, const char *key, int64_t value) {
  int err = check_custom_key(n, key);
  if (err) return err;
  json_t *typed = json_integer((json_int_t)value);
  if (typed == NULL) return APNS_ENOMEM;
  return set_member(n, APNS__SLOT(n, custom), key, NULL, typed);
}

/* ---- reading ---- */

static int has_alert_object(const apns_notification *n) {
  for (int f = 0; f < F_COUNT; f++)
    if (n->alert[f] != NULL) return 1;
  return 0;
}

int apns_notification_is_background(const apns_notification *n) {
  if (n == NULL) return 0;
  if (n->raw) return n->raw_background;
  return n->aps[K_CONTENT_AVAILABLE] != NULL && n->aps[K_ALERT] == NULL && !has_alert_object(n) &&
         n->aps[K_BADGE] == NULL && n->aps[K_SOUND] == NULL;
}

/* ---- the writer ---- */

static int emit(apns_notification *n, const char *s, size_t len) {
  if (n->cap - n->len <= len) { /* room for len bytes and the NUL */
    size_t cap = n->cap ? n->cap : 512;
    while (cap - n->len <= len) {
      if (cap > SIZE_MAX / 2) return APNS_ENOMEM;
      cap *= 2;
    }
    char *buf = apns__realloc(n->buf, cap);
    if (buf == NULL) return APNS_ENOMEM;
    n->buf = buf;
    n->cap = cap;
  }
  memcpy(n->buf + n->len, s, len);
  n->len += len;
  n->buf[n->len] = '\0';
  return 0;
}

#define EMIT_LIT(n, lit) emit((n), (lit), sizeof(lit) - 1)

static int emit_string(apns_notification *n, const char *s, size_t len) {
  static const char hex[] = "0123456789abcdef";
  size_t start = 0;
  int err = EMIT_LIT(n, "\"");
  for (size_t i = 0; i < len && err == 0; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x20 && c != '"' && c != '\\') continue; /* UTF-8 sequences pass through as they are */
    char esc[6] = {'\\', 0, 0, 0, 0, 0};
    size_t esc_len = 2;
    switch (c) {
    case '"':
      esc[1] = '"';
      break;
    case '\\':
      esc[1] = '\\';
      break;
    case '\b':
      esc[1] = 'b';
      break;
    case '\f':
      esc[1] = 'f';
      break;
    case '\n':
      esc[1] = 'n';
      break;
    case '\r':
      esc[1] = 'r';
      break;
    case '\t':
      esc[1] = 't';
      break;
    default:
      memcpy(esc + 1, "u00", 3);
      esc[4] = hex[c >> 4];
      esc[5] = hex[c & 15];
      esc_len = 6;
    }
    if ((err = emit(n, s + start, i - start)) == 0) err = emit(n, esc, esc_len);
    start = i + 1;
  }
  if (err == 0) err = emit(n, s + start, len - start);
  if (err == 0) err = EMIT_LIT(n, "\"");
  return err;
}

/* The shortest of %.15g, %.16g, %.17g that reads back as d (%.17g always does): 0.8 is "0.8", not jansson's
 * "0.80000000000000004". snprintf and strtod agree on the locale; apns__json_number_text then undoes it. */
static int emit_real(apns_notification *n, double d) {
  char printed[48], out[48 + 3];
  for (int precision = 15; precision <= 17; precision++) {
    snprintf(printed, sizeof printed, "%.*g", precision, d);
    if (strtod(printed, NULL) == d) break;
  }
  return emit(n, out, apns__json_number_text(printed, out));
}

static int emit_value(apns_notification *n, json_t *v);

static int emit_key(apns_notification *n, int first, const char *key, size_t len) {
  int err = first ? 0 : EMIT_LIT(n, ",");
  if (err == 0) err = emit_string(n, key, len);
  if (err == 0) err = EMIT_LIT(n, ":");
  return err;
}

static int emit_value(apns_notification *n, json_t *v) {
  char num[32];
  int err = 0;
  switch (json_typeof(v)) {
  case JSON_OBJECT: {
    int first = 1;
    err = EMIT_LIT(n, "{");
    for (void *it = json_object_iter(v); it != NULL && err == 0; it = json_object_iter_next(v, it)) {
      err = emit_key(n, first, json_object_iter_key(it), json_object_iter_key_len(it));
      if (err == 0) err = emit_value(n, json_object_iter_value(it));
      first = 0;
    }
    return err ? err : EMIT_LIT(n, "}");
  }
  case JSON_ARRAY:
    err = EMIT_LIT(n, "[");
    for (size_t i = 0; i < json_array_size(v) && err == 0; i++) {
      if (i > 0) err = EMIT_LIT(n, ",");
      if (err == 0) err = emit_value(n, json_array_get(v, i));
    }
    return err ? err : EMIT_LIT(n, "]");
  case JSON_STRING:
    return emit_string(n, json_string_value(v), json_string_length(v));
  case JSON_INTEGER:
    snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    return emit(n, num, strlen(num));
  case JSON_REAL:
    return emit_real(n, json_real_value(v));
  case JSON_TRUE:
    return EMIT_LIT(n, "true");
  case JSON_FALSE:
    return EMIT_LIT(n, "false");
  case JSON_NULL:
    return EMIT_LIT(n, "null");
  }
  return APNS_EINVAL; /* not reached: every jansson type is handled */
}

static int emit_aps(apns_notification *n) {
  int first = 1, err = EMIT_LIT(n, "\"aps\":{");
  for (int k = 0; k < K_COUNT && err == 0; k++) {
    if (k == K_ALERT && n->aps[k] == NULL && has_alert_object(n)) {
      int first_field = 1;
      err = emit_key(n, first, "alert", 5);
      if (err == 0) err = EMIT_LIT(n, "{");
      for (int f = 0; f < F_COUNT && err == 0; f++) {
        if (n->alert[f] == NULL) continue;
        err = emit_key(n, first_field, alert_names[f], strlen(alert_names[f]));
        if (err == 0) err = emit_value(n, n->alert[f]);
        first_field = 0;
      }
      if (err == 0) err = EMIT_LIT(n, "}");
      first = 0;
    } else if (n->aps[k] != NULL) {
      err = emit_key(n, first, aps_names[k], strlen(aps_names[k]));
      if (err == 0) err = emit_value(n, n->aps[k]);
      first = 0;
    }
  }
  return err ? err : EMIT_LIT(n, "}");
}

/* Writes the payload into n->buf; n->len stays 0 when there is nothing to send. */
static int build(apns_notification *n) {
  int has_aps = has_alert_object(n), err;
  for (int k = 0; k < K_COUNT; k++) has_aps |= n->aps[k] != NULL;
  n->len = 0;
  if (!has_aps && json_object_size(n->custom) == 0) return 0;
  err = EMIT_LIT(n, "{");
  if (err == 0 && has_aps) err = emit_aps(n);
  if (err == 0 && n->custom != NULL) {
    int first = !has_aps;
    for (void *it = json_object_iter(n->custom); it != NULL && err == 0; it = json_object_iter_next(n->custom, it)) {
      err = emit_key(n, first, json_object_iter_key(it), json_object_iter_key_len(it));
      if (err == 0) err = emit_value(n, json_object_iter_value(it));
      first = 0;
    }
  }
  if (err == 0) err = EMIT_LIT(n, "}");
  if (err) n->len = 0;
  return err;
}

int apns_notification_serialize(apns_notification *n, size_t limit, const char **out, size_t *len) {
  if (out != NULL) *out = NULL;
  if (len != NULL) *len = 0;
  if (n == NULL || out == NULL || len == NULL) return APNS_EINVAL;
  if (limit == 0) limit = APNS_PAYLOAD_MAX;
  if (!n->fresh) {
    int err = build(n);
    if (err) return err;
    n->fresh = 1;
  }
  if (n->len == 0) return APNS_EPAYLOADEMPTY;
  if (n->len > limit) {
    *len = n->len;
    return APNS_EPAYLOADTOOLARGE;
  }
  *out = n->buf;
  *len = n->len;
  return 0;
}

int apns_validate_payload(const char *json, size_t len, size_t limit) {
  size_t i = 0;
  if (json == NULL) return APNS_EINVAL;
  if (limit == 0) limit = APNS_PAYLOAD_MAX;
  while (i < len && is_json_space(json[i])) i++;
  if (i == len) return APNS_EPAYLOADEMPTY;
  if (len > limit) return APNS_EPAYLOADTOOLARGE;
  return check_raw(json, len, NULL);
}
