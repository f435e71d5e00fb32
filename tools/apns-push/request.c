/* apns-push: what one request is made of. The payload from the flags (an apns_notification), a JSON payload made
 * compact, bulk lines parsed with jansson (the payload's own bytes are kept: numbers keep their spelling), and the
 * headers built as the client builds them, for --dry-run. */
#include "push.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static int flag_err(const char *flag, int rv) {
  push_err("%s: %s", flag, apns_strerror(rv));
  return rv;
}

int push_flags_notification(const push_opts *o, apns_notification **out) {
  apns_notification *n = NULL;
  int rv;
  *out = NULL;
  int any = o->alert || o->title || o->subtitle || o->sound || o->category || o->thread_id || o->badge >= 0 ||
            o->content_available || o->mutable_content || o->num_data > 0;
  if (!any) return 0;
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
    }
  }
  buf[j] = '\0';
  *out = buf;
  *out_len = j;
  return 0;
}

/* ---- finding the bytes of "payload" in a line that jansson has already accepted as JSON ---- */

static size_t skip_ws(const char *s, size_t i, size_t n) {
  while (i < n && json_ws(s[i])) i++;
  return i;
}

static size_t skip_string(const char *s, size_t i, size_t n) {
  for (i++; i < n && s[i] != '"'; i++)
    if (s[i] == '\\') i++;
  return i + 1;
}

static size_t skip_value(const char *s, size_t i, size_t n) {
  if (i >= n) return n;
  if (s[i] == '"') return skip_string(s, i, n);
  if (s[i] == '{' || s[i] == '[') {
    int depth = 0;
    while (i < n) {
      char c = s[i];
      if (c == '"') {
        i = skip_string(s, i, n);
        continue;
      }
      if (c == '{' || c == '[') depth++;
      if (c == '}' || c == ']') depth--;
      i++;
      if (depth == 0) break;
    }
    return i;
  }
  while (i < n && !json_ws(s[i]) && s[i] != ',' && s[i] != '}' && s[i] != ']') i++;
  return i;
}

/* The value of the top-level member spelled exactly "payload" (no escapes), or 0. */
static int find_payload(const char *s, size_t n, size_t *vs, size_t *ve) {
  size_t i = skip_ws(s, 0, n);
  if (i >= n || s[i] != '{') return 0;
  i++;
  for (;;) {
    i = skip_ws(s, i, n);
    if (i >= n || s[i] != '"') return 0;
    size_t ks = i + 1;
    i = skip_string(s, i, n);
    size_t ke = i - 1;
    i = skip_ws(s, i, n);
    if (i >= n || s[i] != ':') return 0;
    i = skip_ws(s, i + 1, n);
    size_t start = i;
    i = skip_value(s, i, n);
    if (ke - ks == 7 && memcmp(s + ks, "payload", 7) == 0) {
      *vs = start;
      *ve = i;
      return 1;
    }
    i = skip_ws(s, i, n);
    if (i >= n || s[i] != ',') return 0;
    i++;
  }
}

void push_line_free(push_line *line) {
  if (line == NULL) return;
  apns_notification_free(line->n);
  json_decref(line->root);
  memset(line, 0, sizeof *line);
}

static int line_string(json_t *v, const char *key, const char **out, char *why, size_t whylen) {
  if (!json_is_string(v)) {
    snprintf(why, whylen, "\"%s\" must be a string", key);
    return APNS_EINVAL;
  }
  *out = json_string_value(v);
  return 0;
}

int push_parse_line(const char *text, size_t len, const apns_send_options *defaults, push_line *out, char *why,
                    size_t whylen) {
  json_error_t je;
  const char *key;
  json_t *v, *payload = NULL;
  int rv = APNS_EINVAL;
  memset(out, 0, sizeof *out);
  out->so = *defaults;
  json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
  if (root == NULL) {
    snprintf(why, whylen, "not JSON: %s at column %d", je.text, je.column);
    return APNS_EBADJSON;
  }
  out->root = root;
  if (!json_is_object(root)) {
    snprintf(why, whylen, "not a JSON object");
    goto fail;
  }
  json_object_foreach(root, key, v) {
    if (strcmp(key, "token") == 0) {
      if ((rv = line_string(v, key, &out->token, why, whylen)) < 0) goto fail;
    } else if (strcmp(key, "payload") == 0) {
      if (!json_is_object(v)) {
        snprintf(why, whylen, "\"payload\" must be a JSON object");
        rv = APNS_EINVAL;
        goto fail;
      }
      payload = v;
    } else if (strcmp(key, "topic") == 0) {
      if ((rv = line_string(v, key, &out->so.topic, why, whylen)) < 0) goto fail;
    } else if (strcmp(key, "collapse_id") == 0) {
      if ((rv = line_string(v, key, &out->so.collapse_id, why, whylen)) < 0) goto fail;
    } else if (strcmp(key, "apns_id") == 0) {
      if ((rv = line_string(v, key, &out->so.apns_id, why, whylen)) < 0) goto fail;
    } else if (strcmp(key, "push_type") == 0) {
      const char *s;
      if ((rv = line_string(v, key, &s, why, whylen)) < 0) goto fail;
      if ((rv = apns_push_type_from_string(s, &out->so.push_type)) < 0) {
        snprintf(why, whylen, "unknown push_type \"%.40s\"", s);
        goto fail;
      }
    } else if (strcmp(key, "priority") == 0) {
      json_int_t p = json_is_integer(v) ? json_integer_value(v) : 0;
      if (p != 1 && p != 5 && p != 10) {
        snprintf(why, whylen, "\"priority\" must be 10, 5 or 1");
        rv = APNS_EBADPRIORITY;
        goto fail;
      }
      out->so.priority = (int)p;
    } else if (strcmp(key, "expiration") == 0) {
      if (!json_is_integer(v) || json_integer_value(v) < 0) {
        snprintf(why, whylen, "\"expiration\" must be UNIX seconds (a whole number, 0 or more)");
        rv = APNS_EINVAL;
        goto fail;
      }
      out->so.has_expiration = 1;
      out->so.expiration = json_integer_value(v);
    } else {
      snprintf(why, whylen,
               "unknown field \"%.40s\" (known: token, payload, topic, push_type, priority, expiration, "
               "collapse_id, apns_id)",
               key);
      rv = APNS_EINVAL;
      goto fail;
    }
  }
  if (out->token == NULL) {
    snprintf(why, whylen, "no \"token\"");
    rv = APNS_EBADTOKEN;
    goto fail;
  }
  if ((rv = apns_validate_device_token(out->token)) < 0) {
    snprintf(why, whylen, "bad token: %s", apns_strerror(rv));
    goto fail;
  }
  if (payload) {
    size_t vs, ve, mlen;
    char *mini = NULL;
    if (find_payload(text, len, &vs, &ve)) {
      rv = push_json_minify(text + vs, ve - vs, &mini, &mlen);
    } else {
      /* The key was written with escapes: jansson's own (compact) spelling will do. */
      mini = json_dumps(payload, JSON_COMPACT);
      rv = mini ? 0 : APNS_ENOMEM;
      if (mini) mlen = strlen(mini);
    }
    if (rv < 0) {
      snprintf(why, whylen, "out of memory");
      goto fail;
    }
    rv = apns_notification_new_raw(&out->n, mini, mlen);
    free(mini);
    if (rv < 0) {
      snprintf(why, whylen, "payload: %s", apns_strerror(rv));
      goto fail;
    }
  }
  return 0;

fail:
  push_line_free(out);
  return rv < 0 ? rv : APNS_EINVAL;
}

void push_json_string(FILE *f, const char *s) {
  if (s == NULL) {
    fputs("null", f);
    return;
  }
  putc('"', f);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    switch (*p) {
    case '"':
      fputs("\\\"", f);
      break;
    case '\\':
      fputs("\\\\", f);
      break;
    case '\n':
      fputs("\\n", f);
      break;
    case '\r':
      fputs("\\r", f);
      break;
    case '\t':
      fputs("\\t", f);
      break;
    default:
      if (*p < 0x20 || *p == 0x7f)
        fprintf(f, "\\u%04x", *p);
      else
        putc(*p, f);
    }
  }
  putc('"', f);
}

void push_dry_run_line(FILE *f, const apns_send_request *sr, const char *payload, size_t len) {
  fputs("{\"path\":", f);
  push_json_string(f, sr->path);
  fputs(",\"headers\":{", f);
  for (size_t i = 0; i < sr->num_headers; i++) {
    if (i) putc(',', f);
    push_json_string(f, sr->headers[i].name);
    putc(':', f);
    push_json_string(f, sr->headers[i].value);
  }
  fputs("},\"payload\":", f);
  fwrite(payload, 1, len, f);
  fputs("}\n", f);
}
