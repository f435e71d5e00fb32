/* The high-level client: an endpoint, an authentication and a default topic over a pool, and a send() that checks
 * every input before it queues anything.
 *
 * A send builds its path and headers on the stack and hands them to apns_pool_post, which copies them with the
 * payload into the request's single allocation. Provider tokens come from one signer; the pool asks for one per
 * connection when it needs it (see apns__pool_set_token_source). */
#include <apns.h>

#include "abi.h"
#include "alloc.h"
#include "errbuf.h"
#include "jwt.h"
#include "pool.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

struct apns_client {
  apns_pool *pool;
  apns__jwt_signer *signer;
  char *topic;
  uint64_t timeout_ms;
  apns_client_cb on_low_water;
  apns_client_cb on_close;
  apns_client_cb on_stopped;
  apns_client_cb on_connected;
  int64_t (*clock)(void *data);
  void *data;
};

#define APNS__BEARER "bearer "

#define set_err(errbuf, errlen, msg) apns__errbuf(errbuf, errlen, "%s", msg)

static int client_token(void *ctx, int64_t now_s, char **value) {
  apns_client *c = ctx;
  char *jwt = NULL;
  size_t len = 0;
  int rv = apns__jwt_sign(c->signer, now_s, &jwt, &len);
  if (rv < 0) return rv;
  char *v = apns__malloc(sizeof APNS__BEARER + len);
  if (v == NULL) {
    apns__zero(jwt, len);
    apns__free(jwt);
    return APNS_ENOMEM;
  }
  memcpy(v, APNS__BEARER, sizeof APNS__BEARER - 1);
  memcpy(v + sizeof APNS__BEARER - 1, jwt, len + 1);
  apns__zero(jwt, len);
  apns__free(jwt);
  *value = v;
  return 0;
}

static int64_t client_clock(void *ctx) {
  apns_client *c = ctx;
  return c->clock ? c->clock(c->data) : (int64_t)time(NULL);
}

static void client_low_water(apns_pool *pool) {
  apns_client *c = apns__pool_owner(pool);
  if (c->on_low_water) c->on_low_water(c);
}

static void client_stopped(apns_pool *pool) {
  apns_client *c = apns__pool_owner(pool);
  if (c->on_stopped) c->on_stopped(c);
}

static void client_connected(apns_pool *pool) {
  apns_client *c = apns__pool_owner(pool);
  if (c->on_connected) c->on_connected(c);
}

static void client_free(apns_client *c) {
  if (c == NULL) return;
  apns__jwt_signer_free(c->signer);
  apns__free(c->topic);
  apns__free(c);
}

/* The options' checks that need no allocation: one authentication, an endpoint that names a host, a valid default
 * topic. Returns 0 or the error, with errbuf set. */
static int client_options_check(const apns_client_options *o, const apns_tls_options *tls, char *errbuf,
                                size_t errlen) {
  int token_auth = o->token_key_file != NULL || o->token_key_pem != NULL;
  int cert_auth = tls->cert_file != NULL || tls->cert_pem != NULL;
  if (token_auth && cert_auth) {
    set_err(errbuf, errlen, "choose one authentication: a client certificate or a token key, not both");
    return APNS_EINVAL;
  }
  if (!token_auth && !cert_auth) {
    set_err(errbuf, errlen, "no authentication: give a client certificate and key, or a token key (.p8)");
    return APNS_EINVAL;
  }
  if (o->endpoint == APNS_ENDPOINT_CUSTOM && (o->host == NULL || o->host[0] == '\0')) {
    set_err(errbuf, errlen, "a custom endpoint needs a host");
    return APNS_EINVAL;
  }
  if (o->endpoint > APNS_ENDPOINT_CUSTOM) {
    set_err(errbuf, errlen, "unknown endpoint");
    return APNS_EINVAL;
  }
  if (o->topic && apns_validate_topic(o->topic) < 0) {
    set_err(errbuf, errlen, "the default topic is empty, too long, or has spaces or control characters");
    return APNS_EBADTOPIC;
  }
  return 0;
}

int apns_client_open(uv_loop_t *loop, apns_client **out, const apns_client_options *caller, char *errbuf,
                     size_t errlen) {
  apns_client *c;
  apns_client_options copt, *o = &copt;
  apns_tls_options tls = APNS_TLS_OPTIONS_INIT;
  int rv;
  if (out == NULL || loop == NULL || caller == NULL) return APNS_EINVAL;
  *out = NULL;
  if ((rv = APNS__ABI_READ(apns_client_options, endpoint, &copt, caller, errbuf, errlen)) < 0) return rv;
  if (copt.tls && (rv = APNS__ABI_READ(apns_tls_options, ca_file, &tls, copt.tls, errbuf, errlen)) < 0) return rv;
  int token_auth = o->token_key_file != NULL || o->token_key_pem != NULL;
  if ((rv = client_options_check(o, &tls, errbuf, errlen)) < 0) return rv;
  c = apns__calloc(1, sizeof *c);
  if (c == NULL) {
    set_err(errbuf, errlen, "out of memory");
    return APNS_ENOMEM;
  }
  c->timeout_ms = o->timeout_ms ? o->timeout_ms : APNS_DEFAULT_TIMEOUT_MS;
  c->on_low_water = o->on_low_water;
  c->on_stopped = o->on_stopped;
  c->on_connected = o->on_connected;
  c->clock = o->clock;
  c->data = o->data;
  if (o->topic && (c->topic = apns__strdup(o->topic)) == NULL) {
    set_err(errbuf, errlen, "out of memory");
    client_free(c);
    return APNS_ENOMEM;
  }
  if (token_auth) {
    rv = apns__jwt_signer_new(&c->signer, o->token_key_file, o->token_key_pem,
                              o->token_key_pem ? strlen(o->token_key_pem) : 0, o->key_id, o->team_id, errbuf, errlen);
    if (rv < 0) {
      client_free(c);
      return rv;
    }
  }

  apns_pool_options po = APNS_POOL_OPTIONS_INIT;
  po.host = o->endpoint == APNS_ENDPOINT_PRODUCTION    ? APNS_HOST_PRODUCTION
            : o->endpoint == APNS_ENDPOINT_DEVELOPMENT ? APNS_HOST_DEVELOPMENT
                                                       : o->host;
  po.port = o->port;
  po.tls = &tls;
  po.connections = o->connections;
  po.max_queued = o->max_queued;
  po.low_water = o->low_water;
  po.on_low_water = o->on_low_water ? client_low_water : NULL;
  po.never_resend_unknown = o->never_resend_unknown;
  po.on_event = o->on_event;
  po.on_stopped = o->on_stopped ? client_stopped : NULL;
  po.on_connected = o->on_connected ? client_connected : NULL;
  po.proxy = o->proxy;
  po.data = o->data; /* the user's: apns_pool_data() in on_event gives it; the client is the pool's owner */
  rv = apns_pool_open(loop, &c->pool, &po, errbuf, errlen);
  if (rv < 0) {
    client_free(c);
    return rv;
  }
  apns__pool_set_owner(c->pool, c);
  if (c->signer) apns__pool_set_token_source(c->pool, client_token, client_clock, c, APNS__TOKEN_REFRESH_S);
  *out = c;
  return 0;
}

/* The caller's send options read by the ABI rule into *copy (defaults when NULL). */
static int read_send_options(apns_send_options *copy, const apns_send_options *so) {
  apns_send_options_init(copy);
  return so ? APNS__ABI_READ(apns_send_options, push_type, copy, so, NULL, 0) : 0;
}

static int build_send_request(const char *default_topic, const char *token, const apns_send_options *so,
                              int background, apns_send_request *sr) {
  int rv;
  if ((rv = apns_validate_device_token(token)) < 0) return rv;
  apns_push_type type = so->push_type;
  if (type == APNS_PUSH_TYPE_DEFAULT) type = background ? APNS_PUSH_TYPE_BACKGROUND : APNS_PUSH_TYPE_ALERT;
  const char *type_name = apns_push_type_string(type);
  if (type_name == NULL) return APNS_EBADPUSHTYPE;
  int prio = so->priority ? so->priority : apns_push_type_default_priority(type);
  if ((rv = apns_validate_priority(prio, type)) < 0) return rv;
  if (so->has_expiration && (rv = apns_validate_expiration(so->expiration)) < 0) return rv;
  if (so->collapse_id && (rv = apns_validate_collapse_id(so->collapse_id)) < 0) return rv;
  if (so->apns_id && (rv = apns_validate_apns_id(so->apns_id, sr->apns_id)) < 0) return rv;

  const char *topic = so->topic ? so->topic : default_topic;
  if (topic == NULL) return APNS_EBADTOPIC;
  if ((rv = apns_validate_topic(topic)) < 0) return rv;
  const char *suffix = apns_push_type_topic_suffix(type);
  size_t tlen = strlen(topic), slen = suffix ? strlen(suffix) : 0;
  if (slen && (tlen < slen || strcmp(topic + tlen - slen, suffix) != 0))
    snprintf(sr->topic, sizeof sr->topic, "%s%s", topic, suffix);
  else
    snprintf(sr->topic, sizeof sr->topic, "%s", topic);

  snprintf(sr->path, sizeof sr->path, "/3/device/%s", token);
  snprintf(sr->priority, sizeof sr->priority, "%d", prio);
  sr->num_headers = 0;
  sr->headers[sr->num_headers++] = (apns_header){"apns-push-type", type_name};
  sr->headers[sr->num_headers++] = (apns_header){"apns-topic", sr->topic};
  sr->headers[sr->num_headers++] = (apns_header){"apns-priority", sr->priority};
  if (so->has_expiration) {
    snprintf(sr->expiration, sizeof sr->expiration, "%lld", (long long)so->expiration);
    sr->headers[sr->num_headers++] = (apns_header){"apns-expiration", sr->expiration};
  }
  if (so->collapse_id) sr->headers[sr->num_headers++] = (apns_header){"apns-collapse-id", so->collapse_id};
  if (so->apns_id) sr->headers[sr->num_headers++] = (apns_header){"apns-id", sr->apns_id};
  sr->push_type = type;
  return 0;
}

int apns_build_send_request(const char *default_topic, const char *token, const apns_send_options *so, int background,
                            apns_send_request *sr, size_t sr_size) {
  apns_send_options copy;
  /* The headers point into the struct, so it is built in place; this is the first layout, the smallest there is.
   * A later, longer one will build into a local and copy out the caller's part, its pointers moved over. */
  if (token == NULL || sr == NULL || sr_size < sizeof *sr) return APNS_EINVAL;
  int rv = read_send_options(&copy, so);
  return rv < 0 ? rv : build_send_request(default_topic, token, &copy, background, sr);
}

static int client_post(apns_client *c, const apns_send_request *sr, const char *json, size_t len,
                       const apns_send_options *so, apns_response_cb cb, void *data) {
  apns_request req = APNS_REQUEST_INIT;
  req.path = sr->path;
  req.headers = sr->headers;
  req.num_headers = sr->num_headers;
  req.body = json;
  req.body_len = len;
  req.timeout_ms = so->timeout_ms ? so->timeout_ms : c->timeout_ms;
  return apns_pool_post(c->pool, &req, cb, data);
}

int apns_client_send(apns_client *c, const char *token, apns_notification *n, const apns_send_options *so,
                     apns_response_cb cb, void *data) {
  apns_send_request sr;
  apns_send_options copy;
  const char *json;
  size_t len;
  if (c == NULL || token == NULL || n == NULL || cb == NULL) return APNS_EINVAL;
  int rv = read_send_options(&copy, so);
  if (rv < 0) return rv;
  rv = build_send_request(c->topic, token, &copy, apns_notification_is_background(n), &sr);
  if (rv < 0) return rv;
  rv = apns_notification_serialize(n, apns_payload_limit(sr.push_type), &json, &len);
  if (rv < 0) return rv;
  return client_post(c, &sr, json, len, &copy, cb, data);
}

int apns_client_send_json(apns_client *c, const char *token, const char *json, size_t len,
                          const apns_send_options *so, apns_response_cb cb, void *data) {
  apns_notification *n;
  if (c == NULL || token == NULL || json == NULL || cb == NULL) return APNS_EINVAL;
  /* Through a raw notification: it validates the JSON, keeps its bytes, and tells a background payload, so that
   * the push type defaults as it does for a built one. */
  int rv = apns_notification_new_raw(&n, json, len);
  if (rv < 0) return rv;
  rv = apns_client_send(c, token, n, so, cb, data);
  apns_notification_free(n);
  return rv;
}

static void client_pool_closed(apns_pool *pool) {
  apns_client *c = apns__pool_owner(pool);
  if (c->on_close) c->on_close(c);
  client_free(c);
}

int apns_client_close(apns_client *c, uint64_t drain_timeout_ms, apns_client_cb cb) {
  if (c == NULL) return APNS_EINVAL;
  int rv = apns_pool_close(c->pool, drain_timeout_ms, client_pool_closed);
  if (rv == 0) c->on_close = cb;
  return rv;
}

void apns_client_unref(apns_client *c) {
  if (c != NULL) apns_pool_unref(c->pool);
}

void apns_client_ref(apns_client *c) {
  if (c != NULL) apns_pool_ref(c->pool);
}

void apns_client_get_stats(const apns_client *c, apns_pool_stats *out, size_t size) {
  apns_pool_get_stats(c ? c->pool : NULL, out, size);
}

int apns_client_stop_cause(const apns_client *c, const char **text) {
  if (c == NULL) {
    if (text) *text = NULL;
    return APNS_EINVAL;
  }
  return apns_pool_stop_cause(c->pool, text);
}

apns_pool *apns_client_pool(apns_client *c) {
  return c ? c->pool : NULL;
}

void *apns_client_data(const apns_client *c) {
  return c ? c->data : NULL;
}

/* For channels.c (client_internal.h): what a broadcast needs of the client. */
const char *apns__client_topic(const apns_client *c) {
  return c->topic;
}

uint64_t apns__client_timeout_ms(const apns_client *c) {
  return c->timeout_ms;
}
