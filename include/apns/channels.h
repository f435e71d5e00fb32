/* libapns: broadcast push (iOS 18 channels) for Live Activities: channel management and broadcast sends.
 *
 * A broadcast reaches every device subscribed to a channel with one request. Two parts:
 *   - channel management (create, read, delete, list) on Apple's management hosts, through an apns_channels
 *     object: its own pool of connections, with the authentication of a client (the same certificate or .p8 key);
 *   - broadcast sends on an apns_client (apns_client_broadcast), the same connections that send to devices.
 *
 *   apns_channels_options co = APNS_CHANNELS_OPTIONS_INIT;
 *   co.client_options = &client_opts;        // the options the client was opened with: same auth, same environment
 *   apns_channels_open(loop, &channels, &co, errbuf, sizeof errbuf);
 *   apns_channels_create(channels, APNS_CHANNEL_STORAGE_NONE, NULL, on_created, ctx);
 *   ... on_created: res->channel_id is the new id; give it to your app (ActivityKit subscribes with it) ...
 *   apns_client_broadcast(client, channel_id, live_activity_update, NULL, on_sent, ctx);
 *   apns_channels_delete(channels, channel_id, NULL, on_deleted, ctx);   // when the event is over
 *
 * What Apple documents ("Sending channel management requests to APNs", "Sending broadcast push notification
 * requests to APNs", "Handling error responses from APNs"), and the choices made here:
 *   - Management hosts: api-manage-broadcast.push.apple.com:2196 (production) and
 *     api-manage-broadcast.sandbox.push.apple.com:2195 (development). HTTP/2, TLS 1.2+, token or certificate auth.
 *     Channels belong to one environment: one made in development does not exist in production. That is why the
 *     management host follows the client options' endpoint unless you name a host.
 *   - Create: POST /1/apps/<bundle id>/channels, body {"message-storage-policy":0|1,"push-type":"LiveActivity"},
 *     answers 201 with the new id (base64; Apple says not to assume its length) in the apns-channel-id header and
 *     an empty body. The storage policy cannot be changed later. Read: GET on the same path with apns-channel-id,
 *     200 and the same JSON. Delete: DELETE with apns-channel-id, 204 (irreversible; messages already stored may
 *     still be delivered; the id never comes back). List: GET /1/apps/<bundle id>/all-channels, 200 and
 *     {"channels":["<id>",...]}. At most 10 000 channels per app and environment: creating one more is 400
 *     CannotCreateChannelConfig. Every request may carry apns-request-id (a UUID); every answer carries it back
 *     (Apple makes one when the request had none).
 *   - Send: POST /4/broadcasts/apps/<bundle id> with apns-channel-id, apns-push-type: liveactivity,
 *     apns-priority (10, 5 or 1) and apns-expiration, all required, plus apns-request-id (optional, echoed). No
 *     apns-topic header and no push-type suffix: the bundle id is in the path, and a suffix there is 400
 *     TopicDisallowed. Payload at most 5120 bytes (APNS_PAYLOAD_MAX_BROADCAST). apns-expiration 0 means "once,
 *     do not store"; a channel made with storage policy 0 (none) refuses any other value (400 BadExpirationDate).
 *     The answer is 200 with apns-request-id and apns-unique-id, no apns-id.
 *   - Which host takes broadcasts: Apple's prose names the regular push hosts (api.push.apple.com:443,
 *     api.sandbox.push.apple.com:443), its request samples show api-broadcast(.sandbox).push.apple.com in the
 *     host field. apns_client_broadcast uses the client's own host, so by default the regular push hosts: the
 *     documented connection table says so, and one client (its connections already authenticated and raised to
 *     their full stream limit) serves device pushes and broadcasts alike. To use the other name, open a client
 *     with endpoint APNS_ENDPOINT_CUSTOM and host APNS_BROADCAST_HOST_PRODUCTION (or _DEVELOPMENT), port 443.
 *   - Reasons of this API (all 400 unless said): FeatureNotEnabled (broadcast not enabled for the app),
 *     MissingChannelId, BadChannelId (not base64, or too long), ChannelNotRegistered (no such channel, or deleted),
 *     BadRequestParams (unknown key in the create body), BadRequestPayload (body not JSON), MissingPushType,
 *     InvalidPushType, CannotCreateChannelConfig (the 10 000 limit), BadExpirationDate, TopicDisallowed, BadPriority,
 *     BadMessageId; 403 TopicMismatch (the bundle id in the path is not one the certificate or token covers), and
 *     the usual 403, 404, 405, 413, 429, 500, 503 answers.
 *
 * Every request ends exactly once in its callback, never inside the call that made it; argument errors come back
 * from that call and nothing is sent. Call everything on the loop's thread. Include <apns.h>.
 */
#ifndef APNS_CHANNELS_H
#define APNS_CHANNELS_H

#include <apns/client.h>
#include <apns/common.h>
#include <apns/payload.h>
#include <uv.h>

#ifdef __cplusplus
extern "C" {
#endif

#define APNS_MANAGE_HOST_PRODUCTION "api-manage-broadcast.push.apple.com"
#define APNS_MANAGE_PORT_PRODUCTION 2196
#define APNS_MANAGE_HOST_DEVELOPMENT "api-manage-broadcast.sandbox.push.apple.com"
#define APNS_MANAGE_PORT_DEVELOPMENT 2195
/* The broadcast host of Apple's samples; not the default (see above). */
#define APNS_BROADCAST_HOST_PRODUCTION "api-broadcast.push.apple.com"
#define APNS_BROADCAST_HOST_DEVELOPMENT "api-broadcast.sandbox.push.apple.com"

/* Longest channel id accepted, in characters. Apple says not to assume a length; this only keeps hostile input
 * out of headers and logs (ids seen are about 24). */
#define APNS_CHANNEL_ID_MAX 255
/* Longest bundle id accepted (Apple's limit is 155). */
#define APNS_BUNDLE_ID_MAX 155

/* A channel id: 1 to APNS_CHANNEL_ID_MAX characters of standard base64 (A-Z a-z 0-9 + /), with '=' padding only at
 * the end (at most two, and then a length that is a multiple of 4), and never a length of 4n+1 (no base64 text
 * has one). APNS_EBADCHANNELID otherwise (NULL too). */
APNS_EXTERN int apns_validate_channel_id(const char *channel_id);
/* A bundle id as Apple allows them, for the paths of this API: 1 to APNS_BUNDLE_ID_MAX letters, digits, '-', '.'
 * (and '_', found in old apps). APNS_EBADTOPIC otherwise (NULL too): a path never gets '/', '?', '%' or a space. */
APNS_EXTERN int apns_validate_bundle_id(const char *bundle_id);

/* The value of a response header (names are lowercase), or NULL: apns-request-id, apns-unique-id, ... */
APNS_EXTERN const char *apns_response_header(const apns_response *res, const char *name);

/* ------------------------------------------------------------------------------------------------------------------
 * Channel management
 * ---------------------------------------------------------------------------------------------------------------- */
typedef enum {
  APNS_CHANNEL_STORAGE_NONE = 0,  /* "No Message Stored": offline devices miss updates; higher publishing budget */
  APNS_CHANNEL_STORAGE_LATEST = 1 /* "Most Recent Message Stored": the last update waits, for up to 8 hours */
} apns_channel_storage;

typedef enum {
  APNS_CHANNEL_CREATE = 1, /* POST   /1/apps/<bundle>/channels      -> 201, apns-channel-id */
  APNS_CHANNEL_READ = 2,   /* GET    /1/apps/<bundle>/channels      -> 200, the configuration */
  APNS_CHANNEL_DELETE = 3, /* DELETE /1/apps/<bundle>/channels      -> 204 */
  APNS_CHANNEL_LIST = 4    /* GET    /1/apps/<bundle>/all-channels  -> 200, the ids */
} apns_channel_op;

/* "create", "read", "delete", "list"; NULL out of range. Static string. */
APNS_EXTERN const char *apns_channel_op_string(apns_channel_op op);

typedef struct apns_channels apns_channels;

/* Initialize with APNS_CHANNELS_OPTIONS_INIT or apns_channels_options_init() (the ABI rule in apns/common.h). */
typedef struct apns_channels_options {
  size_t size; /* sizeof(apns_channels_options), set by the initializers */
  /* Required: the options of the client whose authentication to share (the same certificate, or the same .p8
   * key, key id and team id), read during apns_channels_open only. Also used from it: tls (trust anchors,
   * verify_name), clock, on_event, timeout_ms, topic (the default bundle id) and endpoint, which picks the
   * management host of the same environment: PRODUCTION gives APNS_MANAGE_HOST_PRODUCTION:2196, DEVELOPMENT
   * APNS_MANAGE_HOST_DEVELOPMENT:2195, and CUSTOM needs host below. Its host, port, connections, queue limits,
   * never_resend_unknown and data are not used (clock still gets data). The channels object opens its own
   * connections and signs its own provider tokens with the key (a connection keeps its token at least 20
   * minutes, as for the client). on_event runs for the management connections too: there apns_pool_data gives
   * the management client (apns_channels_client), not yours. */
  const apns_client_options *client_options;
  /* The management server, when not Apple's for the environment: a mock, a proxy. Default NULL. */
  const char *host;
  uint16_t port;         /* with host: default 443; without: Apple's port for the environment */
  const char *bundle_id; /* default client_options->topic; a request may name another */
  unsigned connections;  /* default 1: management is a trickle of requests */
  uint64_t timeout_ms;   /* default deadline of a request: client_options->timeout_ms, else 10 000 */
  /* Resending a request that may have reached Apple after a connection was lost: default 0, never. A create
   * sent twice would make two channels (a waste of the 10 000); such a request ends with APNS_ECLOSED and
   * res->delivery APNS_DELIVERY_UNKNOWN, and you decide (list the channels to find out). 1: resend, as the pool
   * does by default. Requests that certainly were not processed are always retried until their deadline. */
  int resend_unknown;
  void *data; /* yours: apns_channels_data() */
} apns_channels_options;

#ifdef __cplusplus
#define APNS_CHANNELS_OPTIONS_INIT                                                                                   \
  { sizeof(apns_channels_options) }
#else
#define APNS_CHANNELS_OPTIONS_INIT                                                                                   \
  { .size = sizeof(apns_channels_options) }
#endif
/* Zeroes *o and sets o->size, as APNS_CHANNELS_OPTIONS_INIT does (for options in allocated memory). */
APNS_EXTERN void apns_channels_options_init(apns_channels_options *o);

/* Per-request options; NULL means all defaults. Initialize with APNS_CHANNEL_REQUEST_OPTIONS_INIT or
 * apns_channel_request_options_init(). */
typedef struct apns_channel_request_options {
  size_t size;            /* sizeof(apns_channel_request_options), set by the initializers */
  const char *request_id; /* apns-request-id, a UUID (any case; sent lowercase). NULL: none, Apple makes one */
  const char *bundle_id;  /* NULL: the channels object's bundle id */
  uint64_t timeout_ms;    /* 0: the channels object's default */
} apns_channel_request_options;

#ifdef __cplusplus
#define APNS_CHANNEL_REQUEST_OPTIONS_INIT                                                                            \
  { sizeof(apns_channel_request_options) }
#else
#define APNS_CHANNEL_REQUEST_OPTIONS_INIT                                                                            \
  { .size = sizeof(apns_channel_request_options) }
#endif
/* Zeroes *o and sets o->size, as APNS_CHANNEL_REQUEST_OPTIONS_INIT does (for options in allocated memory). */
APNS_EXTERN void apns_channel_request_options_init(apns_channel_request_options *o);

/* The outcome of one management request, handed to its callback. Valid only during the callback: copy what you
 * keep. Fields that do not apply are 0 or NULL. Lent by the library: it only grows at its end; read it through the
 * pointer, never copy the struct. */
typedef struct apns_channel_result {
  apns_channel_op op;
  /* 1 when Apple answered with the operation's success status (201 create, 200 read, 204 delete, 200 list) and
   * the answer parsed (then err is 0). */
  int ok;
  int status;             /* HTTP status; 0 when no response arrived */
  apns_reason reason;     /* the failure's reason (response->reason), NONE on success */
  const char *request_id; /* the answer's apns-request-id (ours echoed, or Apple's), or NULL */
  /* create: the new channel's id (ok only); read and delete: the id asked about. */
  const char *channel_id;
  apns_channel_storage storage; /* read, ok: the channel's message storage policy */
  const char *push_type;        /* read, ok: its push type as Apple spells it ("LiveActivity") */
  const char *const *channels;  /* list, ok: num_channels ids, in Apple's order */
  size_t num_channels;
  /* Everything else: reason_text, the headers and raw body, delivery (whether it is safe to send again),
   * attempts. Never NULL. */
  const apns_response *response;
} apns_channel_result;

/* err: 0 when a response arrived (see res->ok and res->status; an APNs failure is not an error); APNS_EBADJSON
 * when a success answer's body is not the JSON Apple documents; APNS_EBADCHANNELID when a 201 carries no valid
 * apns-channel-id; or the pool's codes (APNS_ETIMEDOUT, APNS_ECLOSED, APNS_ECANCELED, APNS_ESTOPPED, APNS_ENOMEM,
 * a connection error). res is never NULL. Called exactly once per accepted request, never from inside the call
 * that submitted it. */
typedef void (*apns_channel_cb)(apns_channels *channels, int err, const apns_channel_result *res, void *data);
typedef void (*apns_channels_close_cb)(apns_channels *channels);

/* Creates the channels object and starts connecting to the management host. Returns 0, APNS_EINVAL (no client
 * options, no authentication or both kinds, a CUSTOM endpoint and no host: errbuf says which), APNS_EBADTOPIC (a
 * bad default bundle id), APNS_EBADKEY / APNS_EBADCERT (errbuf names the file), APNS_ENOMEM. errbuf may be NULL.
 * Nothing of opts needs to outlive the call. */
APNS_EXTERN int apns_channels_open(uv_loop_t *loop, apns_channels **out, const apns_channels_options *opts,
                                   char *errbuf, size_t errlen);

/* The four requests. Each checks its arguments first and returns 0 (cb runs exactly once, later) or an error and
 * sends nothing: APNS_EBADCHANNELID, APNS_EBADTOPIC (bundle id missing or bad), APNS_EBADAPNSID (request id not a
 * UUID), APNS_EINVAL (a NULL argument, a storage policy other than 0 or 1), APNS_ECLOSED (closing), APNS_ESTOPPED,
 * APNS_EQUEUEFULL, APNS_ENOMEM. Strings are copied: they are yours again on return. */
APNS_EXTERN int apns_channels_create(apns_channels *channels, apns_channel_storage storage,
                                     const apns_channel_request_options *opts, apns_channel_cb cb, void *data);
APNS_EXTERN int apns_channels_read(apns_channels *channels, const char *channel_id,
                                   const apns_channel_request_options *opts, apns_channel_cb cb, void *data);
APNS_EXTERN int apns_channels_delete(apns_channels *channels, const char *channel_id,
                                     const apns_channel_request_options *opts, apns_channel_cb cb, void *data);
APNS_EXTERN int apns_channels_list(apns_channels *channels, const apns_channel_request_options *opts,
                                   apns_channel_cb cb, void *data);

/* Graceful close, as apns_client_close: requests in progress may finish within drain_timeout_ms, the rest end
 * with APNS_ECANCELED; then cb (may be NULL) runs and the object is freed. Safe from any callback. Twice:
 * APNS_EBUSY. The client whose options were shared is independent: close them in any order. */
APNS_EXTERN int apns_channels_close(apns_channels *channels, uint64_t drain_timeout_ms, apns_channels_close_cb cb);

APNS_EXTERN void *apns_channels_data(const apns_channels *channels);
/* The client on the management host underneath (for apns_client_get_stats). Do not send pushes on it. */
APNS_EXTERN apns_client *apns_channels_client(apns_channels *channels);

/* The method, path, headers and body a management request makes, for dry runs and logs; values point into the
 * struct itself: use it where it was filled. Headers, in order: apns-channel-id (read, delete), apns-request-id
 * (when given, lowercase). The create body is exactly {"message-storage-policy":N,"push-type":"LiveActivity"}.
 * channel_id is needed for read and delete only, storage for create only; request_id may be NULL. Returns 0 or
 * the error the request would return (same checks, same order). out_size is sizeof *out: nothing past it is
 * written; a size smaller than any layout of the struct is APNS_EINVAL. */
typedef struct apns_channel_request {
  const char *method; /* "POST", "GET" or "DELETE" */
  char path[32 + APNS_BUNDLE_ID_MAX];
  apns_header headers[2];
  size_t num_headers;
  char body[64];
  size_t body_len; /* 0 but for create */
  char channel_id[APNS_CHANNEL_ID_MAX + 1];
  char request_id[37];
} apns_channel_request;

APNS_EXTERN int apns_build_channel_request(apns_channel_op op, const char *bundle_id, const char *channel_id,
                                           apns_channel_storage storage, const char *request_id,
                                           apns_channel_request *out, size_t out_size);

/* ------------------------------------------------------------------------------------------------------------------
 * Broadcast sends
 * ---------------------------------------------------------------------------------------------------------------- */

/* Per-broadcast options; NULL means all defaults. Initialize with APNS_BROADCAST_OPTIONS_INIT or
 * apns_broadcast_options_init(). */
typedef struct apns_broadcast_options {
  size_t size;  /* sizeof(apns_broadcast_options), set by the initializers */
  int priority; /* 0: 10. 1, 5 or 10 (apns-priority is required: it is always sent) */
  /* apns-expiration in UNIX seconds, always sent. Default 0: deliver once, store nothing; the only value a channel
   * with storage policy NONE accepts. A later time lets a LATEST channel keep the update until then (8 hours
   * at most, Apple's cap). */
  int64_t expiration;
  const char *request_id; /* apns-request-id, a UUID (any case; sent lowercase); NULL: none, Apple makes one */
  /* NULL: the client's topic, with a trailing ".push-type.liveactivity" taken off (the path wants the bare
   * bundle id). */
  const char *bundle_id;
  uint64_t timeout_ms; /* 0: the client's timeout */
} apns_broadcast_options;

#ifdef __cplusplus
#define APNS_BROADCAST_OPTIONS_INIT                                                                                  \
  { sizeof(apns_broadcast_options) }
#else
#define APNS_BROADCAST_OPTIONS_INIT                                                                                  \
  { .size = sizeof(apns_broadcast_options) }
#endif
/* Zeroes *o and sets o->size, as APNS_BROADCAST_OPTIONS_INIT does (for options in allocated memory). */
APNS_EXTERN void apns_broadcast_options_init(apns_broadcast_options *o);

/* Path and headers of a broadcast, for dry runs and logs (values point into the struct). Headers, in order:
 * apns-channel-id, apns-push-type (liveactivity), apns-priority, apns-expiration, apns-request-id (when given). */
typedef struct apns_broadcast_request {
  char path[24 + APNS_BUNDLE_ID_MAX]; /* "/4/broadcasts/apps/<bundle id>" */
  apns_header headers[5];
  size_t num_headers;
  char bundle_id[APNS_BUNDLE_ID_MAX + 1];
  char channel_id[APNS_CHANNEL_ID_MAX + 1];
  char priority[4];
  char expiration[24];
  char request_id[37];
} apns_broadcast_request;

/* Checks a broadcast's channel id and options and builds its path and headers exactly as apns_client_broadcast
 * does. default_bundle_id is the client's topic (may be NULL; the liveactivity suffix is taken off). Returns 0,
 * APNS_EBADCHANNELID, APNS_EBADTOPIC (no bundle id, or a bad one), APNS_EBADPRIORITY, APNS_EINVAL (negative
 * expiration, NULL arguments, an out_size smaller than any layout), APNS_EBADAPNSID (request id). out_size is
 * sizeof *out: nothing past it is written. */
APNS_EXTERN int apns_build_broadcast_request(const char *default_bundle_id, const char *channel_id,
                                             const apns_broadcast_options *opts, apns_broadcast_request *out,
                                             size_t out_size);

/* Broadcasts a notification (a Live Activity update or end: see payload.h) to every device subscribed to the
 * channel, on the client's connections. The payload is serialized now and must fit APNS_PAYLOAD_MAX_BROADCAST
 * (5120 bytes). Returns 0 (cb runs exactly once, later: res->status 200 on success, apns-request-id and
 * apns-unique-id in res->headers, see apns_response_header), or an error and nothing is sent: the codes of
 * apns_build_broadcast_request, APNS_EPAYLOADTOOLARGE, APNS_EPAYLOADEMPTY, APNS_EQUEUEFULL, APNS_ECLOSED,
 * APNS_ESTOPPED, APNS_ENOMEM. Whether the channel exists and accepts the expiration is the server's check (400
 * ChannelNotRegistered, BadExpirationDate). The notification stays yours. A broadcast that may have reached Apple
 * is resent after a lost connection unless the client has never_resend_unknown set, as for a send. */
APNS_EXTERN int apns_client_broadcast(apns_client *client, const char *channel_id, apns_notification *notification,
                                      const apns_broadcast_options *opts, apns_response_cb cb, void *data);
/* The same with a payload you made yourself (validated as apns_client_send_json does, then sent byte for byte). */
APNS_EXTERN int apns_client_broadcast_json(apns_client *client, const char *channel_id, const char *json, size_t len,
                                           const apns_broadcast_options *opts, apns_response_cb cb, void *data);

#ifdef __cplusplus
}
#endif
#endif /* APNS_CHANNELS_H */
