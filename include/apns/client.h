/* libapns high level: send notifications to devices (aapns's create_client and send_notification).
 *
 * A client is a pool (see apns/pool.h) aimed at an APNs endpoint, with the authentication and the default topic
 * set once, and a send() that validates everything before anything is queued: bad input is an error code from
 * the call, and nothing is sent.
 *
 *   apns_client_options o = APNS_CLIENT_OPTIONS_INIT;
 *   o.endpoint = APNS_ENDPOINT_DEVELOPMENT;
 *   o.token_key_file = "AuthKey_ABC123DEFG.p8";  o.key_id = "ABC123DEFG";  o.team_id = "DEF123GHIJ";
 *   o.topic = "com.example.app";
 *   apns_client_open(loop, &client, &o, errbuf, sizeof errbuf);
 *   apns_client_send(client, device_token, notification, NULL, on_sent, ctx);
 *
 * Authentication is either a client certificate (cert_file and key_file of the apns_tls_options o.tls points to) or a
 * provider token (a .p8 key with its key id and team id). With a token, each connection signs its own JWT (ES256),
 * keeps it at least 20 minutes and replaces it at 50 (Apple answers TooManyProviderTokenUpdates to a connection whose
 * token changes sooner, and ExpiredProviderToken to one older than an hour). Ages are measured on the monotonic
 * clock; the wall clock (o.clock) only gives the token's iat, so a wall clock stepped back or forward moves no
 * refresh.
 *   - 403 ExpiredProviderToken: the connection takes one new token (one, however many requests were in flight
 *     under the old one) and each such request is retried once under it. When the token is younger than 20
 *     minutes the wall clock that dated it was wrong and a new one would draw a 429: no token is made and the
 *     request ends with its 403.
 *   - 429 TooManyProviderTokenUpdates: not expected (the library never changes a connection's token sooner than
 *     20 minutes); the request ends with that response and is not retried, since the same connection would answer
 *     the same until its 20 minutes pass. Apple did not deliver it: it is safe to send again.
 *
 * Call everything on the loop's thread.
 */
#ifndef APNS_CLIENT_H
#define APNS_CLIENT_H

#include <apns/common.h>
#include <apns/conn.h>
#include <apns/payload.h>
#include <apns/pool.h>
#include <uv.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  APNS_ENDPOINT_PRODUCTION = 0,  /* api.push.apple.com */
  APNS_ENDPOINT_DEVELOPMENT = 1, /* api.sandbox.push.apple.com */
  APNS_ENDPOINT_CUSTOM = 2       /* host and port below: a mock, a proxy */
} apns_endpoint;

#define APNS_HOST_PRODUCTION "api.push.apple.com"
#define APNS_HOST_DEVELOPMENT "api.sandbox.push.apple.com"

typedef struct apns_client apns_client;
typedef void (*apns_client_cb)(apns_client *client);

/* Initialize with APNS_CLIENT_OPTIONS_INIT or apns_client_options_init(): size set, every other field zero, which
 * is its default (the ABI rule in apns/common.h). Nothing of it need outlive apns_client_open(): the key, the
 * TLS settings, the proxy and every string are read and copied then. */
typedef struct apns_client_options {
  size_t size;            /* sizeof(apns_client_options), set by the initializers */
  apns_endpoint endpoint; /* default PRODUCTION */
  const char *host;       /* required for CUSTOM; ignored otherwise */
  uint16_t port;          /* default 443 (Apple also listens on 2197) */
  /* TLS: trust anchors, and for certificate auth the client certificate and key; read and copied at open.
   * Default NULL: every default, no client certificate. */
  const apns_tls_options *tls;
  /* Token auth: the .p8 key (a file, or its PEM text), its 10-character key id, and the 10-character team id. */
  const char *token_key_file;
  const char *token_key_pem;
  const char *key_id;
  const char *team_id;
  const char *topic;           /* default apns-topic (the app's bundle id); a send may name another */
  unsigned connections;        /* default 2 */
  uint64_t timeout_ms;         /* default deadline of a send; default 10 000 */
  size_t max_queued;           /* 0: unbounded (default); see apns_pool_options */
  size_t low_water;            /* default max_queued / 2 */
  apns_client_cb on_low_water; /* optional back-pressure signal */
  int never_resend_unknown;    /* see apns_pool_options; default 0, as aapns */
  /* Optional metrics and logging hook (connections, retries, token refreshes; see apns_pool_event_type): not where
   * errors are delivered. Its pool argument is the client's (apns_client_pool), and apns_pool_data(pool) is your
   * data below, as apns_client_data() is. Default NULL. */
  apns_pool_event_cb on_event;
  /* The wall clock for token issue times, in UNIX seconds; NULL: time(). For tests. */
  int64_t (*clock)(void *data);
  void *data; /* yours: apns_client_data(); also passed to clock */
  /* Optional: the client stopped, as a pool does (apns/pool.h): a permanent connection error (wrong CA or host
   * name, no HTTP/2, our certificate refused), 403 BadCertificate, or 403 InvalidProviderToken three times in a
   * row. apns_client_stop_cause() says why; later sends return APNS_ESTOPPED. Default NULL. */
  apns_client_cb on_stopped;
  /* Optional: a connection is ready to carry notifications; runs each time one becomes so. Default NULL. */
  apns_client_cb on_connected;
  /* Reach APNs through this proxy (see apns/proxy.h); copied at open. apns_proxy_from_env() gives the one the
   * environment names, as curl reads it. Default NULL: no proxy. */
  const apns_proxy_options *proxy;
} apns_client_options;

#ifdef __cplusplus
#define APNS_CLIENT_OPTIONS_INIT                                                                                     \
  { sizeof(apns_client_options) }
#else
#define APNS_CLIENT_OPTIONS_INIT                                                                                     \
  { .size = sizeof(apns_client_options) }
#endif
/* Zeroes *o and sets o->size, as APNS_CLIENT_OPTIONS_INIT does (for options in allocated memory). */
APNS_EXTERN void apns_client_options_init(apns_client_options *o);

/* Per-send options; NULL means all defaults. Initialize with APNS_SEND_OPTIONS_INIT or apns_send_options_init()
 * (a size of 0 is APNS_EINVAL from the send). */
typedef struct apns_send_options {
  size_t size; /* sizeof(apns_send_options), set by the initializers */
  /* DEFAULT: background when the notification only sets content-available, alert otherwise. */
  apns_push_type push_type;
  /* 0: the push type's default (5 for background, 10 otherwise). 1, 5 or 10. */
  int priority;
  /* apns-expiration in UNIX seconds when has_expiration is set (0 means: try once, do not store). */
  int has_expiration;
  int64_t expiration;
  const char *collapse_id; /* at most 64 bytes */
  const char *apns_id;     /* a UUID (any case; sent lowercase); NULL: APNs makes one and answers it */
  /* NULL: the client's topic. The push type's suffix (.voip, .complication, ...) is appended when the topic does
   * not already end with it. */
  const char *topic;
  uint64_t timeout_ms; /* 0: the client's timeout */
} apns_send_options;

#ifdef __cplusplus
#define APNS_SEND_OPTIONS_INIT                                                                                       \
  { sizeof(apns_send_options) }
#else
#define APNS_SEND_OPTIONS_INIT                                                                                       \
  { .size = sizeof(apns_send_options) }
#endif
/* Zeroes *o and sets o->size, as APNS_SEND_OPTIONS_INIT does (for options in allocated memory). */
APNS_EXTERN void apns_send_options_init(apns_send_options *o);

/* Creates the client and starts connecting. Returns 0, APNS_EINVAL (missing host for CUSTOM, both or neither
 * auth, bad key id or team id, a bad default topic, options not initialized or from a newer libapns: errbuf says
 * which), APNS_EBADKEY / APNS_EBADCERT (errbuf says
 * which file and what mbedTLS said), APNS_ENOMEM. errbuf may be NULL. */
APNS_EXTERN int apns_client_open(uv_loop_t *loop, apns_client **out, const apns_client_options *opts, char *errbuf,
                                 size_t errlen);

/* Sends a notification to one device token (hex). The payload is serialized now and checked against the push
 * type's size limit; token, topic, priority, expiration, collapse-id and apns-id are checked too. Returns 0 (cb
 * runs exactly once, later, with the apns-id, status, reason, 410 timestamp and attempts), or an error and nothing
 * is sent: APNS_EBADTOKEN, APNS_EBADTOPIC, APNS_EBADPRIORITY, APNS_EBADCOLLAPSEID, APNS_EBADAPNSID,
 * APNS_EPAYLOADTOOLARGE, APNS_EPAYLOADEMPTY, APNS_EINVAL, APNS_EQUEUEFULL, APNS_ECLOSED, APNS_ESTOPPED,
 * APNS_ENOMEM. The notification stays yours. */
APNS_EXTERN int apns_client_send(apns_client *client, const char *device_token, apns_notification *notification,
                                 const apns_send_options *opts, apns_response_cb cb, void *data);

/* The same with a payload you made yourself: a JSON object of len bytes, sent byte for byte after validation
 * (APNS_EBADJSON, APNS_EBADUTF8 when it is not valid). */
APNS_EXTERN int apns_client_send_json(apns_client *client, const char *device_token, const char *json, size_t len,
                                      const apns_send_options *opts, apns_response_cb cb, void *data);

/* The path and headers a send makes, for dry runs and logs. The header values point into the struct itself:
 * use it where it was filled, do not copy it. Filled by apns_build_send_request through the size it is given;
 * fields are only ever appended. */
typedef struct apns_send_request {
  char path[16 + APNS_DEVICE_TOKEN_MAX]; /* "/3/device/<token>" */
  apns_header headers[8];
  size_t num_headers;
  apns_push_type push_type; /* the push type resolved (DEFAULT becomes alert or background) */
  char topic[APNS_TOPIC_MAX + 40];
  char priority[4];
  char expiration[24];
  char apns_id[37];
} apns_send_request;

/* Checks a send's token and options, and builds its path and headers exactly as apns_client_send does: the same
 * checks in the same order, the same error codes, the same headers in the same order (apns-push-type, apns-topic
 * with the push type's suffix, apns-priority, then apns-expiration, apns-collapse-id, apns-id when set).
 * default_topic is the client's topic (may be NULL); background says whether the payload only sets
 * content-available (apns_notification_is_background). out_size is sizeof *out: nothing past it is written, and a
 * size smaller than any layout of the struct is APNS_EINVAL. Returns 0 or the error the send would return. */
APNS_EXTERN int apns_build_send_request(const char *default_topic, const char *device_token,
                                        const apns_send_options *opts, int background, apns_send_request *out,
                                        size_t out_size);

/* Graceful close, as apns_pool_close: sends in progress may finish within drain_timeout_ms, the rest end with
 * APNS_ECANCELED; then cb runs and the client is freed. cb never runs inside this call, even with nothing in
 * flight and a drain time of 0: always from the loop, on a later turn (after every send's callback), so it may
 * free what the caller still uses around the call. The close keeps the loop alive until cb, even after
 * apns_client_unref. */
APNS_EXTERN int apns_client_close(apns_client *client, uint64_t drain_timeout_ms, apns_client_cb cb);

/* apns_client_unref: the client no longer keeps the loop alive (apns_pool_unref on its pool: every timer, socket
 * and watcher it owns now or later, reconnections included), as uv_unref does for a handle; uv_run(UV_RUN_DEFAULT)
 * returns once nothing else is left, the client still open and connected. Sends in flight do not keep the loop
 * alive either (as Node's unref'd sockets): while you wait for their callbacks, keep a referenced handle of your
 * own (the Node binding keeps one while sends are outstanding). A host name being resolved and a TCP connect in
 * progress do keep it alive until they end. apns_client_ref undoes it. Idempotent (no count), safe from any
 * callback, no-ops on NULL. Default: referenced. */
APNS_EXTERN void apns_client_unref(apns_client *client);
APNS_EXTERN void apns_client_ref(apns_client *client);

/* Accessors take a NULL client and then return NULL or fill *out with zeros (as the pool's do); functions that
 * return an int return APNS_EINVAL for it. */
APNS_EXTERN void apns_client_get_stats(const apns_client *client, apns_pool_stats *out, size_t size);
/* As apns_pool_stop_cause: 0 while running, else why the client stopped (*text: a message, or NULL). */
APNS_EXTERN int apns_client_stop_cause(const apns_client *client, const char **text);
APNS_EXTERN apns_pool *apns_client_pool(apns_client *client);
APNS_EXTERN void *apns_client_data(const apns_client *client);

#ifdef __cplusplus
}
#endif
#endif /* APNS_CLIENT_H */
