/* apns-push: what one request is made of. The payload from the flags (an apns_notification), a JSON payload made
 * compact, and the request line --dry-run prints (headers built as the client builds them). Bulk lines are parsed
 * by bulk.c. */
#include "push.h"

#include "bulk.h"

#include <stdlib.h>
#include <string.h>

static int flag_err(const char *flag, int rv) {
  push_err("%s: %s", flag, apns_strerror(rv));
  return rv;
}

int push_flags_payload(const push_opts *o) {
  return o->alert || o->title || o->subtitle || o->sound || o->category || o->thread_id || o->badge >= 0 ||
         o->content_available || o->mutable_content || o->num_data > 0 || o->event || o->content_state ||
         o->stale_date >= 0 || o->dismissal_date >= 0 || o->timestamp >= 0 || o->attributes_type || o->attributes ||
         o->input_push_token || o->input_push_channel || o->has_relevance;
}

/* The Live Activity keys, in the order of payload.h (the builder fixes the order of the output). */
static int live_activity_flags(const push_opts *o, apns_notification *n) {
  int rv = 0;
  if (o->has_relevance && (rv = apns_notification_set_relevance_score(n, o->relevance_score)) < 0)
    return flag_err("--relevance-score", rv);
  if (o->timestamp >= 0 && (rv = apns_notification_set_timestamp(n, o->timestamp)) < 0)
    return flag_err("--timestamp", rv);
  if (o->event && (rv = apns_notification_set_event(n, o->event)) < 0) return flag_err("--event", rv);
  if (o->content_state && (rv = apns_notification_set_content_state(n, o->content_state)) < 0) {
    push_err("--content-state: %s (want the JSON text of an object)", apns_strerror(rv));
    return rv;
  }
  if (o->stale_date >= 0 && (rv = apns_notification_set_stale_date(n, o->stale_date)) < 0)
    return flag_err("--stale-date", rv);
  if (o->dismissal_date >= 0 && (rv = apns_notification_set_dismissal_date(n, o->dismissal_date)) < 0)
    return flag_err("--dismissal-date", rv);
  if (o->attributes_type && (rv = apns_notification_set_attributes_type(n, o->attributes_type)) < 0)
    return flag_err("--attributes-type", rv);
  if (o->attributes && (rv = apns_notification_set_attributes(n, o->attributes)) < 0) {
    push_err("--attributes: %s (want the JSON text of an object)", apns_strerror(rv));
    return rv;
  }
  if (o->input_push_token && (rv = apns_notification_set_input_push_token(n, 1)) < 0)
    return flag_err("--input-push-token", rv);
  if (o->input_push_channel && (rv = apns_notification_set_input_push_channel(n, o->input_push_channel)) < 0)
    return flag_err("--input-push-channel", rv);
  return 0;
}

int push_flags_notification(const push_opts *o, apns_notification **out) {
  apns_notification *n = NULL;
  int rv;
  *out = NULL;
  if (!push_flags_payload(o)) return 0;
  if ((rv = apns_notification_new(&n)) < 0) return flag_err("payload", rv);
  if (o->title || o->subtitle) {
    if (o->title && (rv = apns_notification_set_alert_title(n, o->title)) < 0) {
      flag_err("--title", rv);
      goto fail;
    }
    if (o->subtitle && (rv = apns_notification_set_alert_subtitle(n, o->subtitle)) < 0) {
      flag_err("--subtitle", rv);
      goto fail;
    }
    if (o->alert && (rv = apns_notification_set_alert_body(n, o->alert)) < 0) {
      flag_err("--alert", rv);
      goto fail;
    }
  } else if (o->alert && (rv = apns_notification_set_alert_text(n, o->alert)) < 0) {
    flag_err("--alert", rv);
    goto fail;
  }
  if (o->badge >= 0 && (rv = apns_notification_set_badge(n, o->badge)) < 0) {
    flag_err("--badge", rv);
    goto fail;
  }
  if (o->sound && (rv = apns_notification_set_sound(n, o->sound)) < 0) {
    flag_err("--sound", rv);
    goto fail;
  }
  if (o->thread_id && (rv = apns_notification_set_thread_id(n, o->thread_id)) < 0) {
    flag_err("--thread-id", rv);
    goto fail;
  }
  if (o->category && (rv = apns_notification_set_category(n, o->category)) < 0) {
    flag_err("--category", rv);
    goto fail;
  }
  if (o->content_available && (rv = apns_notification_set_content_available(n, 1)) < 0) {
    flag_err("--content-available", rv);
    goto fail;
  }
  if (o->mutable_content && (rv = apns_notification_set_mutable_content(n, 1)) < 0) {
    flag_err("--mutable-content", rv);
    goto fail;
  }
  if ((rv = live_activity_flags(o, n)) < 0) goto fail;
  for (size_t i = 0; i < o->num_data; i++) {
    const push_data_kv *d = &o->data[i];
    rv = apns_notification_set_custom(n, d->key, d->json);
    if (rv == APNS_EBADJSON) {
      push_err("--data %s=%s: the value is not one JSON value (for a string, quote it: %s='\"text\"')", d->key,
               d->json, d->key);
      goto fail;
    }
    if (rv == APNS_EINVAL && strcmp(d->key, "aps") == 0) {
      push_err("--data aps=...: \"aps\" is built from --alert, --badge, ...; give a whole PAYLOAD_JSON instead");
      goto fail;
    }
    if (rv < 0) {
      push_err("--data %s=%s: %s", d->key, d->json, apns_strerror(rv));
      goto fail;
    }
  }
  *out = n;
  return 0;

fail:
  apns_notification_free(n);
  return rv < 0 ? rv : APNS_EINVAL;
}

static int json_ws(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int word_byte(char c) {
  return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') || c == '.' || c == '+' || c == '-';
}

int push_json_minify(const char *json, size_t len, char **out, size_t *out_len) {
  char *buf = malloc(len + 1);
  size_t j = 0;
  int in_str = 0;
  if (buf == NULL) return APNS_ENOMEM;
  for (size_t i = 0; i < len; i++) {
    char c = json[i];
    if (in_str) {
      buf[j++] = c;
      if (c == '\\' && i + 1 < len) {
        buf[j++] = json[++i];
      } else if (c == '"') {
        in_str = 0;
      }
    } else if (!json_ws(c)) {
      buf[j++] = c;
      if (c == '"') in_str = 1;
    } else if (j > 0 && word_byte(buf[j - 1])) {
      /* Whitespace between two words stays (one space): "[1 2]" must not become "[12]", valid JSON it was not. */
      size_t k = i + 1;
      while (k < len && json_ws(json[k])) k++;
      if (k < len && word_byte(json[k])) buf[j++] = ' ';
      i = k - 1;
    }
  }
  buf[j] = '\0';
  *out = buf;
  *out_len = j;
  return 0;
}

/* ---- --dry-run ---- */

typedef struct dbuf {
  char *p;
  size_t cap, n;
} dbuf;

static void dput(dbuf *b, const char *s, size_t len) {
  if (b->n + len < b->cap) memcpy(b->p + b->n, s, len);
  b->n += len;
}

static void dstr(dbuf *b, const char *s) {
  size_t room = b->n < b->cap ? b->cap - b->n : 0;
  size_t k = bulk_json_string(room ? b->p + b->n : NULL, room, s, s ? strlen(s) : 0);
  b->n += k;
}

size_t push_dry_run_request(char *buf, size_t cap, const char *method, const char *path, const apns_header *headers,
                            size_t num_headers, const char *body_key, const char *body, size_t len) {
  dbuf b = {buf, cap, 0};
  dput(&b, "{", 1);
  if (method) {
    dput(&b, "\"method\":", 9);
    dstr(&b, method);
    dput(&b, ",", 1);
  }
  dput(&b, "\"path\":", 7);
  dstr(&b, path);
  dput(&b, ",\"headers\":{", 12);
  for (size_t i = 0; i < num_headers; i++) {
    if (i) dput(&b, ",", 1);
    dstr(&b, headers[i].name);
    dput(&b, ":", 1);
    dstr(&b, headers[i].value);
  }
  dput(&b, "}", 1);
  if (body) {
    dput(&b, ",", 1);
    dstr(&b, body_key);
    dput(&b, ":", 1);
    dput(&b, body, len); /* a payload the library checked (or built): JSON already */
  }
  dput(&b, "}\n", 2);
  return b.n;
}

size_t push_dry_run_line(char *buf, size_t cap, const apns_send_request *sr, const char *payload, size_t len) {
  return push_dry_run_request(buf, cap, NULL, sr->path, sr->headers, sr->num_headers, "payload", payload, len);
}
