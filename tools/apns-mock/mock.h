/* apns-mock: an APNs look-alike server (TLS + HTTP/2) on libuv, to run inside a test or bench process.
 *
 *   apns_mock_options o;
 *   apns_mock_options_init(&o);              // 127.0.0.1, port 0, plaintext h2c unless a certificate is given
 *   o.cert_pem = ...; o.key_pem = ...;       // TLS; add ca_pem to require client certificates
 *   apns_mock_token_key k = {"ABC123DEFG", p8_pem, NULL};
 *   o.token_keys = &k; o.num_token_keys = 1; // provider tokens required from connections without a certificate
 *   apns_mock *m;
 *   apns_mock_start(&m, loop, &o, err, sizeof err);
 *   int port = apns_mock_port(m);
 *   ... uv_run(loop) ...
 *   apns_mock_stop(m, on_stopped, NULL);     // async: every handle is closed, then on_stopped, then m is freed
 *
 * Behaviour, per connection: POST /3/device/<hex token> answers 200 with the request's apns-id echoed (or a
 * generated lowercase UUID v4), after Apple's checks below. The faults further down (delay, pause, stream limits,
 * GOAWAY, drop) imitate what APNs is seen to do.
 *
 * Authentication. A connection whose client certificate carries a UID (Apple's topic field) is certificate-
 * authenticated: its authorization header is ignored and its topic defaults to the UID. Any other connection is
 * token-authenticated when token keys are configured (token_keys), and then needs "authorization: bearer <JWT>"
 * (ES256, verified with the key named by the JWT's kid); with no token keys, nothing is asked.
 *   - Token connections start with SETTINGS_MAX_CONCURRENT_STREAMS 1 and get max_streams once a request with an
 *     accepted token has been answered 200, as APNs does; a connection whose requests are all refused stays at 1.
 *   - A token is "different" from the connection's current one when its string differs. A different token is
 *     verified (once: the current token is not verified again); it is accepted, and becomes the current one, when
 *     it passes every check below. Its acceptance time starts the 20-minute clock; its iat starts the hour.
 *   - The first accepted token binds the connection to its kid and its iss (team).
 *
 * Checks, in this order; the first that fails gives the answer (Apple does not document its order; this one goes
 * from the request line through authentication to the headers and the body):
 *    1. :path not /3/device/...                               404 BadPath
 *    2. :method not POST                                      405 MethodNotAllowed
 *    3. an apns-* header or authorization given twice         400 DuplicateHeaders
 *    4. token connections only:
 *       no authorization header                               403 MissingProviderToken
 *       not "bearer <JWT>", malformed, alg not ES256,
 *       unknown kid, bad signature                            403 InvalidProviderToken
 *       iat more than 3600 s before the clock                 403 ExpiredProviderToken
 *       kid other than the connection's bound kid             403 UnrelatedKeyIdInToken
 *       iss other than the connection's bound team            403 InvalidProviderToken
 *       a different token less than 1200 s after the current
 *       one was accepted (or an older token once replaced)    429 TooManyProviderTokenUpdates
 *    5. empty device token                                    400 MissingDeviceToken
 *       not hex, odd length, or starts with bad_prefix        400 BadDeviceToken
 *    6. apns-id not a UUID                                    400 BadMessageId
 *    7. apns-push-type not one of Apple's (alert, ...)        400 InvalidPushType   (absent: alert)
 *    8. apns-priority not 1, 5 or 10, or 10 for background    400 BadPriority       (absent: fine)
 *    9. apns-topic absent on a token connection               400 MissingTopic
 *       (absent on a certificate connection: the UID is the topic; with neither auth: not checked)
 *       not 1-255 printable ASCII bytes without spaces         400 BadTopic
 *       certificate connection: topic is not the UID, nor the
 *       UID plus one of Apple's suffixes (.voip, ...)          400 BadTopic
 *       the push type needs a suffix (.voip for voip, ...)
 *       that the topic does not end with                      400 DeviceTokenNotForTopic
 *   10. apns-collapse-id empty or over 64 bytes               400 BadCollapseId
 *   11. apns-expiration not decimal digits (at most 19)       400 BadExpirationDate
 *   12. empty body                                            400 PayloadEmpty
 *       over 4096 bytes (5120 for voip)                       413 PayloadTooLarge
 *   13. token starts with unregistered_prefix                 410 Unregistered, with a timestamp
 * Choices: a topic for another app on a certificate connection is BadTopic (the topic is wrong for this
 * connection; the device token may be fine), while a push type whose suffix the topic lacks is
 * DeviceTokenNotForTopic, which is what APNs answers to the common mistake of a voip push without ".voip".
 * libapns treats DeviceTokenNotForTopic as "stop sending to this token"; BadTopic it does not.
 *
 * Broadcast channels (mock_channels.c), as Apple keeps them, on the same listener as pushes by default (Apple
 * splits them over api-manage-broadcast...:2195/2196 and the push hosts; one listener lets one mock serve a whole
 * test; split_management splits them). One
 * store per mock, shared by its connections, one environment. Every answer carries apns-request-id (the
 * request's, or a generated UUID v4) and no apns-id. Checks, after 1 (path), 3 (duplicates) and 4 (token) above:
 *    apns-channel-id or apns-request-id given twice           400 DuplicateHeaders
 *    /1/apps/<b>/channels not POST, GET or DELETE;
 *    /1/apps/<b>/all-channels not GET; /4/broadcasts/apps/<b> not POST   405 MethodNotAllowed
 *    <b> not 1-155 letters, digits, - . _, or ending with a
 *    push-type suffix (.push-type.liveactivity, .voip, ...)    400 TopicDisallowed
 *    certificate connection: <b> is not the certificate's UID 403 TopicMismatch
 *    <b> is broadcast_disabled                                400 FeatureNotEnabled
 *    apns-request-id not a UUID                               400 BadMessageId
 *  create (POST channels), body {"message-storage-policy":0|1,"push-type":"LiveActivity"}:
 *    empty, not JSON, not an object                           400 BadRequestPayload
 *    another key, or a policy other than 0 or 1 (or absent)   400 BadRequestParams
 *    no push-type / another push-type                         400 MissingPushType / InvalidPushType
 *    the app has max_channels live channels already           400 CannotCreateChannelConfig
 *    else 201, apns-channel-id: 24 base64 characters (16 random bytes); the id is never made again.
 *  read (GET channels), delete (DELETE channels), broadcast (POST /4/broadcasts/apps/<b>):
 *    no apns-channel-id / not base64 or over 255 characters   400 MissingChannelId / BadChannelId
 *    no such channel for <b>, or deleted                      400 ChannelNotRegistered
 *    read: 200 {"message-storage-policy":N,"push-type":"LiveActivity"}; delete: 204, and the channel is gone.
 *  broadcast, further:
 *    no apns-push-type / not liveactivity (any case)          400 MissingPushType / InvalidPushType
 *    apns-priority absent (Apple requires it), not 1, 5, 10   400 BadPriority
 *    apns-expiration absent or not digits, or not 0 on a
 *    channel with storage policy 0                            400 BadExpirationDate
 *    empty body / over 5120 bytes                             400 PayloadEmpty / 413 PayloadTooLarge
 *    else 200 with apns-unique-id; the channel counts it (a rejected broadcast to an existing channel counts as
 *    rejected). apns_mock_foreach_channel reports every channel ever made; apns-mock prints them at exit.
 *  list (GET all-channels): 200 {"channels":["<id>",...]}, the app's live channels in creation order.
 *
 * Everything runs on the loop's thread; no call may come from another thread. The work per request is O(1): no
 * timer, no syscall and no allocation of its own per request (responses of a connection are coalesced into one
 * uv_write per loop turn); a provider token is verified and copied only when it differs from the connection's
 * current one. No write of the mock raises SIGPIPE (it sends with MSG_NOSIGNAL, as libapns does): a client that
 * resets the connection mid-write costs that connection, not the process, and the embedder need not ignore the
 * signal. */
#ifndef APNS_MOCK_H
#define APNS_MOCK_H

#include "mock_chaos.h"

#include <apns.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct apns_mock apns_mock;

/* A complete request as the on_request hook sees it. Valid only during the hook. */
typedef struct apns_mock_request {
  int32_t stream_id;
  uint64_t seq;               /* 1 for the connection's first complete request, then 2, ... */
  uint64_t conn_id;           /* which connection: 1 for the first accepted, then 2, ... */
  const char *method;         /* ":method" */
  const char *path;           /* ":path" */
  const apns_header *headers; /* every regular header (no pseudo-headers), in arrival order */
  size_t num_headers;
  const uint8_t *body; /* the request body; NULL when empty */
  size_t body_len;
  /* The answer the mock is about to give; the hook may change both. reason (Apple's spelling, at most 100
   * bytes; NULL for none) is copied when the hook returns. The apns-id header is always set. */
  int status;
  const char *reason;
  /* The response's apns-id header: 36 bytes (NUL-terminated) the hook may overwrite with any bytes but NUL, to
   * play a hostile server. */
  char *apns_id;
} apns_mock_request;

/* A key that verifies provider tokens: the P-256 key of a .p8 (PKCS#8 or SEC1 private key PEM: only its public
 * half is kept) or a public key PEM ("BEGIN PUBLIC KEY"). */
typedef struct apns_mock_token_key {
  const char *key_id; /* the 10-character key id that tokens name in their kid */
  const char *pem;    /* NUL-terminated PEM text; wins over file */
  const char *file;   /* path to the PEM, read at apns_mock_start */
} apns_mock_token_key;

/* Called for each complete request the mock will answer (not for those above a GOAWAY or after a drop). */
typedef void (*apns_mock_request_cb)(void *data, apns_mock_request *req);

typedef struct apns_mock_options {
  const char *host; /* IPv4 or IPv6 literal to listen on; default "127.0.0.1" */
  int port;         /* default 0: any free port (see apns_mock_port) */
  /* TLS. With neither cert_file nor cert_pem the mock speaks HTTP/2 over plain TCP (h2c, prior knowledge).
   * *_pem are NUL-terminated PEM text and win over the *_file fields when both are set. */
  const char *cert_file, *cert_pem;
  const char *key_file, *key_pem;
  /* When set (TLS only), a client certificate signed by this CA is required. Default NULL: none asked. */
  const char *ca_file, *ca_pem;
  /* Tokens starting with these get 400 BadDeviceToken / 410 Unregistered. Default NULL: none. */
  const char *bad_prefix;
  const char *unregistered_prefix;
  /* Every response is held this long after its request completes. Default 0. */
  uint32_t delay_ms;
  /* SETTINGS_MAX_CONCURRENT_STREAMS sent first (default 1000), and sent again after the connection's first
   * response when streams_after differs (default 0: no change). Token connections ignore both fields' start:
   * they start at 1 and are raised to max_streams after their first 200 (see above). */
  uint32_t max_streams;
  uint32_t streams_after;
  /* Token auth: the keys (copied at start; the array and strings may go once apns_mock_start returns). Default
   * NULL and 0: no token auth, and the authorization header is not looked at. */
  const apns_mock_token_key *token_keys;
  size_t num_token_keys;
  /* The wall clock in UNIX seconds, for token ages and update intervals and the 410 timestamp; it gets data.
   * Default NULL: time(). For tests that simulate hours. */
  int64_t (*clock)(void *data);
  /* After this many requests on a connection, GOAWAY(NO_ERROR) with last-stream-id the highest stream answered
   * and debug data {"reason":"<goaway_reason>"}; higher streams are refused. Default 0: never. */
  uint32_t goaway_after;
  const char *goaway_reason; /* default "Shutdown" */
  /* After this many requests on a connection, answer them, then close the TCP connection without GOAWAY; later
   * requests get no answer. Default 0: never. */
  uint32_t drop_after;
  /* Start with responses stalled (see apns_mock_set_paused). Default 0. */
  int paused;
  /* Observer and override for each request. Default NULL: the request is not copied at all. */
  apns_mock_request_cb on_request;
  void *data; /* passed to on_request and clock */
  /* Broadcast channels (see above): the most live channels one app may have. Default 0: 10 000, Apple's. */
  uint32_t max_channels;
  /* Requests on channel paths for this bundle id get 400 FeatureNotEnabled. Default NULL: none. */
  const char *broadcast_disabled;
  /* Non-zero: split as Apple does. A second listener (same host, port manage_port, 0 for any free one; see
   * apns_mock_manage_port) serves only channel management (/1/apps/...), and the main one only pushes and
   * broadcasts; each answers the other's paths with 404 BadPath. One channel store serves both. Default 0: one
   * listener for everything. */
  int split_management;
  int manage_port;
  /* Seeded faults at random (mock_chaos.h; apns-mock --chaos). Default: all zero, none. */
  apns_mock_chaos chaos;
} apns_mock_options;

/* Counters, since apns_mock_start. */
typedef struct apns_mock_stats {
  uint64_t connections;        /* accepted */
  uint64_t connections_open;   /* accepted and not yet closed */
  uint64_t handshake_failures; /* TLS handshake failed (bad or missing client certificate, no h2, ...) */
  uint64_t protocol_errors;    /* fatal HTTP/2 errors (bad preface, flooding, ...) */
  uint64_t requests;           /* complete requests received, also those left unanswered */
  uint64_t responses;          /* responses submitted */
  uint64_t goaways;            /* GOAWAYs sent by goaway_after */
  uint64_t drops;              /* connections closed by drop_after */
  uint64_t max_concurrent;     /* the most request streams open at once on one connection */
  uint64_t tokens_accepted;    /* provider tokens accepted: a connection's first, and each update */
  uint64_t streams_raised;     /* token connections raised from 1 stream to max_streams */
  uint64_t status[600];        /* responses by HTTP status: status[200], status[410], ... */
  /* Faults made by opts.chaos, by kind (apns_mock_chaos_fault). */
  uint64_t chaos[APNS_MOCK_CHAOS_COUNT];
} apns_mock_stats;

/* One broadcast channel, as apns_mock_foreach_channel shows it (valid during the callback). */
typedef struct apns_mock_channel {
  const char *bundle_id;
  const char *id;
  int storage; /* message-storage-policy: 0 none, 1 latest */
  int deleted;
  uint64_t broadcasts; /* accepted broadcasts to it */
  uint64_t rejected;   /* broadcasts to it refused (priority, expiration, payload, push type) */
} apns_mock_channel;
typedef void (*apns_mock_channel_cb)(void *data, const apns_mock_channel *channel);

/* The defaults above. */
void apns_mock_options_init(apns_mock_options *opts);

/* Loads the TLS material and the token keys, binds and listens. opts is copied (strings and token keys too); the
 * hook's data must stay valid. Returns 0, APNS_EINVAL (bad option or address, bad or repeated key id; errbuf says
 * which), APNS_EBADCERT, APNS_EBADKEY (a token key or TLS key that cannot be read; errbuf names it), APNS_ETLS,
 * APNS_ENOMEM, or a libuv code from bind/listen (UV_EADDRINUSE, ...). */
int apns_mock_start(apns_mock **out, uv_loop_t *loop, const apns_mock_options *opts, char *errbuf, size_t errlen);

/* The bound port (useful with port 0). */
int apns_mock_port(const apns_mock *mock);
/* The management listener's port with split_management; 0 without. */
int apns_mock_manage_port(const apns_mock *mock);

/* Non-zero: requests are taken but responses are held (they stay queued, delay included); zero: held responses
 * whose delay has passed go out on this loop turn. Applies to open and future connections. */
void apns_mock_set_paused(apns_mock *mock, int paused);

/* Changes goaway_after (0: never) for the requests to come on every connection, open or not: a connection that
 * already took n requests or more is not sent away by it. A server whose keepalive_requests changes. */
void apns_mock_set_goaway_after(apns_mock *mock, uint32_t n);

/* Closes every open connection at once, without GOAWAY (a network failure, from the client's view). The
 * listener stays open. */
void apns_mock_drop_connections(apns_mock *mock);

/* Calls cb for every channel created since apns_mock_start, deleted ones included, in creation order. */
void apns_mock_foreach_channel(const apns_mock *mock, apns_mock_channel_cb cb, void *data);

/* A snapshot of the counters. */
void apns_mock_get_stats(const apns_mock *mock, apns_mock_stats *out);
/* The counters as one line, "connections=2 requests=10 responses=10 200=8 410=2 ...", NUL-terminated. */
void apns_mock_format_stats(const apns_mock_stats *stats, char *buf, size_t len);

/* Closes the listener and every connection. When all their handles are closed, cb (if not NULL) runs with the
 * mock still readable (apns_mock_get_stats works), then the mock is freed. Call once; NULL is fine. */
typedef void (*apns_mock_stop_cb)(apns_mock *mock, void *data);
void apns_mock_stop(apns_mock *mock, apns_mock_stop_cb cb, void *data);

#endif
