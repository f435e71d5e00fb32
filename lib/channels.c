/* Broadcast push: channel management over a client of its own on the management host, and broadcast sends over
 * an existing client's pool (see include/apns/channels.h).
 *
 * A channels object is an apns_client opened with the caller's client options retargeted at the management
 * host, so certificate and token auth, token refresh, retries and exactly-once completion are the client's and
 * the pool's, not copied here. Each management request carries a small record (its operation, callback and the
 * channel id asked about) to the completion, which parses Apple's answer into an apns_channel_result. Broadcasts
 * go through apns_pool_post on the client's pool with a path and headers built on the stack, as sends do. */
#include <apns.h>

#include "abi.h"
#include "alloc.h"
#include "client_internal.h"
#include "errbuf.h"
#include "validate.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#define LIVEACTIVITY_SUFFIX ".push-type.liveactivity"

struct apns_channels {
  apns_client *client; /* on the management host */
  char *bundle_id;     /* default bundle id, or NULL */
  uint64_t timeout_ms;
  apns_channels_close_cb on_close;
  void *data;
  /* The shared client options' clock and the data it expects (the management client's data is this object). */
  int64_t (*clock)(void *data);
  void *clock_data;
};

/* One management request on its way. */
typedef struct chan_req {
  apns_channels *ch;
  apns_channel_op op;
  apns_channel_cb cb;
  void *data;
  char channel_id[APNS_CHANNEL_ID_MAX + 1];
} chan_req;

#define set_err(errbuf, errlen, msg) apns__errbuf(errbuf, errlen, "%s", msg)

/* ---- validation ---- */

static int is_b64(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
}

int apns_validate_channel_id(const char *id) {
  if (id == NULL) return APNS_EBADCHANNELID;
  size_t n = 0, pad = 0;
  for (; n <= APNS_CHANNEL_ID_MAX && id[n] != '\0'; n++) {
    if (id[n] == '=') {
      pad++;
    } else if (pad > 0 || !is_b64(id[n])) {
      return APNS_EBADCHANNELID; /* padding only at the end */
    }
  }
  if (n == 0 || n > APNS_CHANNEL_ID_MAX || pad > 2 || n == pad) return APNS_EBADCHANNELID;
  if (n % 4 == 1 || (pad > 0 && n % 4 != 0)) return APNS_EBADCHANNELID;
  return 0;
}

int apns_validate_bundle_id(const char *b) {
  if (b == NULL) return APNS_EBADTOPIC;
  size_t n = 0;
  for (; n <= APNS_BUNDLE_ID_MAX && b[n] != '\0'; n++) {
    char c = b[n];
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
          c == '_'))
      return APNS_EBADTOPIC;
  }
  return n == 0 || n > APNS_BUNDLE_ID_MAX ? APNS_EBADTOPIC : 0;
}

const char *apns_response_header(const apns_response *res, const char *name) {
  if (res == NULL || name == NULL) return NULL;
  for (size_t i = 0; i < res->num_headers; i++)
    if (strcmp(res->headers[i].name, name) == 0) return res->headers[i].value;
  return NULL;
}

const char *apns_channel_op_string(apns_channel_op op) {
  switch (op) {
  case APNS_CHANNEL_CREATE:
    return "create";
  case APNS_CHANNEL_READ:
    return "read";
  case APNS_CHANNEL_DELETE:
    return "delete";
  case APNS_CHANNEL_LIST:
    return "list";
  }
  return NULL;
}

/* ---- management requests ---- */

int apns_build_channel_request(apns_channel_op op, const char *bundle_id, const char *channel_id,
                               apns_channel_storage storage, const char *request_id, apns_channel_request *out,
                               size_t out_size) {
  int rv;
  /* Built in place (the headers point into it): this is the first layout, the smallest there is. */
  if (out == NULL || out_size < sizeof *out || apns_channel_op_string(op) == NULL) return APNS_EINVAL;
  if ((rv = apns_validate_bundle_id(bundle_id)) < 0) return rv;
  int with_id = op == APNS_CHANNEL_READ || op == APNS_CHANNEL_DELETE;
  if (with_id && (rv = apns_validate_channel_id(channel_id)) < 0) return rv;
  if (op == APNS_CHANNEL_CREATE && storage != APNS_CHANNEL_STORAGE_NONE && storage != APNS_CHANNEL_STORAGE_LATEST)
    return APNS_EINVAL;
  if (request_id != NULL && (rv = apns_validate_apns_id(request_id, out->request_id)) < 0) return rv;

  out->method = op == APNS_CHANNEL_CREATE ? "POST" : op == APNS_CHANNEL_DELETE ? "DELETE" : "GET";
  snprintf(out->path, sizeof out->path, "/1/apps/%s/%s", bundle_id,
           op == APNS_CHANNEL_LIST ? "all-channels" : "channels");
  out->num_headers = 0;
  out->channel_id[0] = '\0';
  if (with_id) {
    snprintf(out->channel_id, sizeof out->channel_id, "%s", channel_id);
    out->headers[out->num_headers++] = (apns_header){"apns-channel-id", out->channel_id};
  }
  if (request_id != NULL) out->headers[out->num_headers++] = (apns_header){"apns-request-id", out->request_id};
  out->body_len = 0;
  out->body[0] = '\0';
  if (op == APNS_CHANNEL_CREATE)
    out->body_len = (size_t)snprintf(out->body, sizeof out->body,
                                     "{\"message-storage-policy\":%d,\"push-type\":\"LiveActivity\"}", (int)storage);
  return 0;
}

/* The body of a success answer: *json is the parsed object (the caller decrefs it). APNS_EBADJSON when it is
 * missing or not an object, APNS_ENOMEM when jansson ran out of memory. */
static int parse_object(const apns_response *res, json_t **json) {
  json_error_t jerr;
  memset(&jerr, 0, sizeof jerr);
  *json = NULL;
  if (res->body == NULL || res->body_len == 0) return APNS_EBADJSON;
  json_t *j = json_loadb(res->body, res->body_len, JSON_REJECT_DUPLICATES, &jerr);
  /* jansson reports running out of memory as a syntax error at times: text that is valid JSON tells them apart. */
  if (j == NULL)
    return json_error_code(&jerr) == json_error_out_of_memory || apns__json_valid(res->body, res->body_len, 1)
               ? APNS_ENOMEM
               : APNS_EBADJSON;
  if (!json_is_object(j)) {
    json_decref(j);
    return APNS_EBADJSON;
  }
  *json = j;
  return 0;
}

/* The answer of one management request, parsed; the pieces live until the callback returns. */
static void chan_done(int err, const apns_response *res, void *data) {
  chan_req *r = data;
  apns_channel_result out;
  json_t *json = NULL;
  const char **ids = NULL;
  memset(&out, 0, sizeof out);
  out.op = r->op;
  out.status = res->status;
  out.reason = res->reason;
  out.response = res;
  out.request_id = apns_response_header(res, "apns-request-id");
  if (r->op == APNS_CHANNEL_READ || r->op == APNS_CHANNEL_DELETE) out.channel_id = r->channel_id;

  if (err == 0) {
    switch (r->op) {
    case APNS_CHANNEL_CREATE:
      if (res->status == 201) {
        const char *id = apns_response_header(res, "apns-channel-id");
        if (apns_validate_channel_id(id) < 0) {
          err = APNS_EBADCHANNELID;
        } else {
          out.channel_id = id;
          out.ok = 1;
        }
      }
      break;
    case APNS_CHANNEL_READ:
      if (res->status == 200 && (err = parse_object(res, &json)) == 0) {
        json_t *pol = json_object_get(json, "message-storage-policy"), *pt = json_object_get(json, "push-type");
        if (!json_is_integer(pol) || (json_integer_value(pol) != 0 && json_integer_value(pol) != 1) ||
            !json_is_string(pt)) {
          err = APNS_EBADJSON;
        } else {
          out.storage = (apns_channel_storage)json_integer_value(pol);
          out.push_type = json_string_value(pt);
          out.ok = 1;
        }
      }
      break;
    case APNS_CHANNEL_DELETE:
      out.ok = res->status == 204;
      break;
    case APNS_CHANNEL_LIST:
      if (res->status == 200 && (err = parse_object(res, &json)) == 0) {
        json_t *arr = json_object_get(json, "channels");
        size_t n = json_array_size(arr);
        if (!json_is_array(arr)) {
          err = APNS_EBADJSON;
          break;
        }
        if (n > 0 && (ids = apns__malloc(n * sizeof *ids)) == NULL) {
          err = APNS_ENOMEM;
          break;
        }
        for (size_t i = 0; i < n && err == 0; i++) {
          json_t *v = json_array_get(arr, i);
          if (!json_is_string(v))
            err = APNS_EBADJSON;
          else
            ids[i] = json_string_value(v);
        }
        if (err == 0) {
          out.channels = ids;
          out.num_channels = n;
          out.ok = 1;
        }
      }
      break;
    }
  }
  r->cb(r->ch, err, &out, r->data);
  apns__free(ids);
  json_decref(json);
  apns__free(r);
}

static int chan_post(apns_channels *ch, apns_channel_op op, const char *channel_id, apns_channel_storage storage,
                     const apns_channel_request_options *caller, apns_channel_cb cb, void *data) {
  apns_channel_request cr;
  apns_channel_request_options copy = APNS_CHANNEL_REQUEST_OPTIONS_INIT, *o = &copy;
  if (ch == NULL || cb == NULL) return APNS_EINVAL;
  if (caller && APNS__ABI_READ(apns_channel_request_options, request_id, &copy, caller, NULL, 0) < 0)
    return APNS_EINVAL;
  const char *bundle = o->bundle_id ? o->bundle_id : ch->bundle_id;
  if (bundle == NULL) return APNS_EBADTOPIC;
  int rv = apns_build_channel_request(op, bundle, channel_id, storage, o->request_id, &cr, sizeof cr);
  if (rv < 0) return rv;
  chan_req *r = apns__malloc(sizeof *r);
  if (r == NULL) return APNS_ENOMEM;
  r->ch = ch;
  r->op = op;
  r->cb = cb;
  r->data = data;
  memcpy(r->channel_id, cr.channel_id, sizeof r->channel_id);
  apns_request req = APNS_REQUEST_INIT;
  req.method = cr.method;
  req.path = cr.path;
  req.headers = cr.headers;
  req.num_headers = cr.num_headers;
  req.body = cr.body_len ? cr.body : NULL;
  req.body_len = cr.body_len;
  req.timeout_ms = o->timeout_ms ? o->timeout_ms : ch->timeout_ms;
  rv = apns_pool_post(apns_client_pool(ch->client), &req, chan_done, r);
  if (rv < 0) apns__free(r);
  return rv;
}

int apns_channels_create(apns_channels *ch, apns_channel_storage storage, const apns_channel_request_options *o,
                         apns_channel_cb cb, void *data) {
  return chan_post(ch, APNS_CHANNEL_CREATE, NULL, storage, o, cb, data);
}

int apns_channels_read(apns_channels *ch, const char *channel_id, const apns_channel_request_options *o,
                       apns_channel_cb cb, void *data) {
  if (channel_id == NULL) return APNS_EINVAL;
  return chan_post(ch, APNS_CHANNEL_READ, channel_id, APNS_CHANNEL_STORAGE_NONE, o, cb, data);
}

int apns_channels_delete(apns_channels *ch, const char *channel_id, const apns_channel_request_options *o,
                         apns_channel_cb cb, void *data) {
  if (channel_id == NULL) return APNS_EINVAL;
  return chan_post(ch, APNS_CHANNEL_DELETE, channel_id, APNS_CHANNEL_STORAGE_NONE, o, cb, data);
}

int apns_channels_list(apns_channels *ch, const apns_channel_request_options *o, apns_channel_cb cb, void *data) {
  return chan_post(ch, APNS_CHANNEL_LIST, NULL, APNS_CHANNEL_STORAGE_NONE, o, cb, data);
}

/* ---- the channels object ---- */

static int64_t channels_clock(void *data) {
  apns_channels *ch = data;
  return ch->clock(ch->clock_data);
}

static void channels_free(apns_channels *ch) {
  apns__free(ch->bundle_id);
  apns__free(ch);
}

int apns_channels_open(uv_loop_t *loop, apns_channels **out, const apns_channels_options *caller, char *errbuf,
                       size_t errlen) {
  apns_channels_options copy, *o = &copy;
  apns_client_options mo, *co = &mo;
  int rv;
  if (out == NULL || loop == NULL || caller == NULL) return APNS_EINVAL;
  *out = NULL;
  if ((rv = APNS__ABI_READ(apns_channels_options, client_options, &copy, caller, errbuf, errlen)) < 0) return rv;
  if (o->client_options == NULL) {
    set_err(errbuf, errlen, "no client options: the channels share a client's authentication");
    return APNS_EINVAL;
  }
  /* Read by the rule as apns_client_open would; mo then becomes the management client's own. */
  if ((rv = APNS__ABI_READ(apns_client_options, endpoint, &mo, o->client_options, errbuf, errlen)) < 0) return rv;
  const char *bundle = o->bundle_id ? o->bundle_id : co->topic;
  if (bundle != NULL && apns_validate_bundle_id(bundle) < 0) {
    set_err(errbuf, errlen, "the bundle id is empty, too long, or has characters other than letters, digits, - . _");
    return APNS_EBADTOPIC;
  }
  const char *host = o->host;
  uint16_t port = o->port;
  if (host == NULL || host[0] == '\0') {
    if (co->endpoint == APNS_ENDPOINT_PRODUCTION) {
      host = APNS_MANAGE_HOST_PRODUCTION;
      port = port ? port : APNS_MANAGE_PORT_PRODUCTION;
    } else if (co->endpoint == APNS_ENDPOINT_DEVELOPMENT) {
      host = APNS_MANAGE_HOST_DEVELOPMENT;
      port = port ? port : APNS_MANAGE_PORT_DEVELOPMENT;
    } else {
      set_err(errbuf, errlen, "a custom client endpoint needs a management host of its own (host)");
      return APNS_EINVAL;
    }
  }
  apns_channels *ch = apns__calloc(1, sizeof *ch);
  if (ch == NULL || (bundle != NULL && (ch->bundle_id = apns__strdup(bundle)) == NULL)) {
    if (ch) channels_free(ch);
    set_err(errbuf, errlen, "out of memory");
    return APNS_ENOMEM;
  }
  ch->data = o->data;

  if (co->clock != NULL) {
    ch->clock = co->clock;
    ch->clock_data = co->data;
    mo.clock = channels_clock;
  }
  mo.endpoint = APNS_ENDPOINT_CUSTOM;
  mo.host = host;
  mo.port = port;
  mo.topic = NULL; /* the bundle id goes in each path; the management client sends no apns-topic */
  mo.connections = o->connections ? o->connections : 1;
  mo.timeout_ms = o->timeout_ms ? o->timeout_ms : co->timeout_ms;
  mo.max_queued = 0;
  mo.low_water = 0;
  mo.on_low_water = NULL;
  mo.never_resend_unknown = !o->resend_unknown;
  mo.data = ch;
  ch->timeout_ms = mo.timeout_ms ? mo.timeout_ms : APNS_DEFAULT_TIMEOUT_MS;
  rv = apns_client_open(loop, &ch->client, &mo, errbuf, errlen);
  if (rv < 0) {
    channels_free(ch);
    return rv;
  }
  *out = ch;
  return 0;
}

static void channels_client_closed(apns_client *client) {
  apns_channels *ch = apns_client_data(client);
  if (ch->on_close) ch->on_close(ch);
  channels_free(ch);
}

int apns_channels_close(apns_channels *ch, uint64_t drain_timeout_ms, apns_channels_close_cb cb) {
  if (ch == NULL) return APNS_EINVAL;
  int rv = apns_client_close(ch->client, drain_timeout_ms, channels_client_closed);
  if (rv == 0) ch->on_close = cb;
  return rv;
}

void *apns_channels_data(const apns_channels *ch) {
  return ch->data;
}

apns_client *apns_channels_client(apns_channels *ch) {
  return ch->client;
}

/* ---- broadcasts ---- */

int apns_build_broadcast_request(const char *default_bundle_id, const char *channel_id,
                                 const apns_broadcast_options *caller, apns_broadcast_request *out, size_t out_size) {
  apns_broadcast_options copy = APNS_BROADCAST_OPTIONS_INIT, *o = &copy;
  int rv;
  /* Built in place (the headers point into it): this is the first layout, the smallest there is. */
  if (out == NULL || out_size < sizeof *out) return APNS_EINVAL;
  if (caller && APNS__ABI_READ(apns_broadcast_options, priority, &copy, caller, NULL, 0) < 0) return APNS_EINVAL;
  if ((rv = apns_validate_channel_id(channel_id)) < 0) return rv;
  const char *bundle = o->bundle_id ? o->bundle_id : default_bundle_id;
  if (bundle == NULL) return APNS_EBADTOPIC;
  size_t blen = strlen(bundle), slen = sizeof LIVEACTIVITY_SUFFIX - 1;
  /* The client's topic may carry the suffix of liveactivity sends; the path takes the bare bundle id. */
  if (o->bundle_id == NULL && blen > slen && memcmp(bundle + blen - slen, LIVEACTIVITY_SUFFIX, slen) == 0)
    blen -= slen;
  if (blen > APNS_BUNDLE_ID_MAX) return APNS_EBADTOPIC;
  memcpy(out->bundle_id, bundle, blen);
  out->bundle_id[blen] = '\0';
  if ((rv = apns_validate_bundle_id(out->bundle_id)) < 0) return rv;
  int prio = o->priority ? o->priority : 10;
  if ((rv = apns_validate_priority(prio, APNS_PUSH_TYPE_LIVEACTIVITY)) < 0) return rv;
  if ((rv = apns_validate_expiration(o->expiration)) < 0) return rv;
  if (o->request_id && (rv = apns_validate_apns_id(o->request_id, out->request_id)) < 0) return rv;

  snprintf(out->path, sizeof out->path, "/4/broadcasts/apps/%s", out->bundle_id);
  snprintf(out->channel_id, sizeof out->channel_id, "%s", channel_id);
  snprintf(out->priority, sizeof out->priority, "%d", prio);
  snprintf(out->expiration, sizeof out->expiration, "%lld", (long long)o->expiration);
  out->num_headers = 0;
  out->headers[out->num_headers++] = (apns_header){"apns-channel-id", out->channel_id};
  out->headers[out->num_headers++] = (apns_header){"apns-push-type", "liveactivity"};
  out->headers[out->num_headers++] = (apns_header){"apns-priority", out->priority};
  out->headers[out->num_headers++] = (apns_header){"apns-expiration", out->expiration};
  if (o->request_id) out->headers[out->num_headers++] = (apns_header){"apns-request-id", out->request_id};
  return 0;
}

int apns_client_broadcast(apns_client *client, const char *channel_id, apns_notification *n,
                          const apns_broadcast_options *o, apns_response_cb cb, void *data) {
  apns_broadcast_request br;
  apns_broadcast_options copy = APNS_BROADCAST_OPTIONS_INIT;
  const char *json;
  size_t len;
  if (client == NULL || channel_id == NULL || n == NULL || cb == NULL) return APNS_EINVAL;
  if (o && APNS__ABI_READ(apns_broadcast_options, priority, &copy, o, NULL, 0) < 0) return APNS_EINVAL;
  int rv = apns_build_broadcast_request(apns__client_topic(client), channel_id, &copy, &br, sizeof br);
  if (rv < 0) return rv;
  rv = apns_notification_serialize(n, APNS_PAYLOAD_MAX_BROADCAST, &json, &len);
  if (rv < 0) return rv;
  apns_request req = APNS_REQUEST_INIT;
  req.path = br.path;
  req.headers = br.headers;
  req.num_headers = br.num_headers;
  req.body = json;
  req.body_len = len;
  req.timeout_ms = copy.timeout_ms ? copy.timeout_ms : apns__client_timeout_ms(client);
  return apns_pool_post(apns_client_pool(client), &req, cb, data);
}

int apns_client_broadcast_json(apns_client *client, const char *channel_id, const char *json, size_t len,
                               const apns_broadcast_options *o, apns_response_cb cb, void *data) {
  apns_notification *n;
  if (client == NULL || channel_id == NULL || json == NULL || cb == NULL) return APNS_EINVAL;
  int rv = apns_notification_new_raw(&n, json, len);
  if (rv < 0) return rv;
  rv = apns_client_broadcast(client, channel_id, n, o, cb, data);
  apns_notification_free(n);
  return rv;
}
