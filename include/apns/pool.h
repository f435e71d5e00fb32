/* libapns mid level: a fixed-size pool of connections with a pending queue and retries (aapns's Pool).
 *
 * The pool opens its connections up front and keeps them up: a lost connection is replaced after a capped,
 * jittered exponential back-off, and the whole pool never opens connections faster than a few a second (Apple
 * treats rapid reconnects as an attack). A connection that received GOAWAY, or that runs out of stream ids, lets
 * its open streams finish while a replacement is opened after the same back-off as a failure (reconnect_min_delay_ms,
 * doubling up to reconnect_max_delay_ms; the back-off is forgotten once a connection has answered 2xx), so a server
 * that sends every connection away is not reconnected to in a loop. One exception: a graceful GOAWAY (NO_ERROR)
 * on a connection that had answered at least 32 requests 2xx is the server rotating its connections (nginx does it
 * every keepalive_requests, 1000 by default), not a failure: the connection is replaced on the next loop turn, with
 * no back-off and outside max_connects_per_sec (rotations are bounded by the answers they take: one connect per 32
 * at most). A GOAWAY after fewer successes (a GOAWAY storm) still backs off.
 *
 * A server that rotates every N requests refuses what was sent above N on each connection (with hundreds of
 * streams in flight, that is most of another N), and the pool retries it: twice the work. So the pool learns N:
 * when two rotations in a row end with a GOAWAY whose last-stream-id shows the connection accepted the same count
 * (at least 32) of our requests, that count is the server's limit (stats.request_limit). From then on a connection
 * takes no more than the limit: at the limit it drains (its open requests end normally) and its replacement opens
 * at once, as for a rotation, so nothing is sent that the server would refuse. Two alike, not one, because a single
 * GOAWAY proves nothing: Apple sends one at maintenance, a restarted server at any count, and a limit learned
 * from it would retire healthy connections. A rotation at another count starts a new pair (a lowered limit is
 * learned from two such rotations; a single odd one changes nothing); a connection stopped at the limit that does
 * not end as a rotation (no graceful GOAWAY from the server: its limit rose, or it stopped rotating; or fewer than
 * 32 answers 2xx) makes the pool forget the limit, to learn it again from the next two rotations. No option: nothing
 * changes against a server that never rotates, such as Apple's.
 *
 * apns_pool_post() is never blocked: a request that finds no free stream waits in a FIFO queue. Any free stream on
 * any live connection takes the head of the queue; a request being retried goes back to the head, so order is
 * kept. The queue is unbounded unless max_queued is set; with it, bulk senders get APNS_EQUEUEFULL and a low-water
 * callback to know when to feed more.
 *
 * Retries, until the request's deadline (timeout_ms, default 10 s, counted from apns_pool_post):
 *   - always: requests the server certainly did not process (never written, REFUSED_STREAM, above GOAWAY's
 *     last-stream-id), and responses 500, 503 ServiceUnavailable and Shutdown;
 *   - by default, as aapns does: requests that may have reached Apple when their connection was lost. Apple may
 *     then show the notification twice; set an apns-collapse-id to make a repeat harmless, or set
 *     never_resend_unknown to get APNS_ECLOSED (res->delivery APNS_DELIVERY_UNKNOWN) instead.
 * Between tries the request waits: 1 ms, then x sqrt(10) each time (3.16 ms, 10 ms, ...), capped at
 * retry_max_delay_ms, each delay jittered by +-20%. A retry never outlives the deadline. res->attempts counts the
 * tries.
 *
 * Failures carry their cause. A request that never reached the server because no connection could be made ends
 * at its deadline with the last connection error (UV_ECONNREFUSED, UV_EAI_NONAME, APNS_ETIMEDOUT of a connect,
 * APNS_ECLOSED, ...) rather than a bare APNS_ETIMEDOUT, res->delivery APNS_DELIVERY_NOT_PROCESSED, and
 * res->error_text the connection's message; APNS_ETIMEDOUT means a connection was up and the request did not get
 * its turn or its answer in time.
 *
 * The pool stops when nothing more can succeed, instead of retrying until every deadline:
 *   - 3 connection attempts in a row fail for a cause another try cannot cure: the server's certificate does not
 *     verify (APNS_ECERTVERIFY: wrong CA, wrong name), the server does not speak HTTP/2 (APNS_EALPN), or it
 *     refused our client certificate in the handshake (APNS_ETLS). Queued requests end with that code;
 *   - an answer of 403 BadCertificate or BadCertificateEnvironment (nothing more can succeed with that
 *     certificate), or 3 answers in a row of 403 InvalidProviderToken (no 2xx between). Those requests end with
 *     their responses; the others end with APNS_ESTOPPED.
 * Open requests end with APNS_ESTOPPED, later posts are refused with APNS_ESTOPPED, on_stopped runs, and
 * apns_pool_stop_cause() says why. Connection errors that may pass (refused, DNS, timeouts, lost connections) never
 * stop the pool: it keeps reconnecting with back-off.
 *
 * Every accepted request ends exactly once; no callback runs inside apns_pool_post(); closing from any callback is
 * safe. Call everything on the loop's thread.
 */
#ifndef APNS_POOL_H
#define APNS_POOL_H

#include <apns/common.h>
#include <apns/conn.h>
#include <uv.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct apns_pool apns_pool;

/* Events are for metrics and logs: they tell what happens inside (connections, retries, tokens) as it happens.
 * They are not where errors are delivered: every request's outcome reaches its own callback, and a stop reaches
 * on_stopped. An event callback must not close the pool. */
typedef enum {
  APNS_POOL_EVENT_CONN_UP = 1,   /* a connection is ready */
  APNS_POOL_EVENT_CONN_DOWN = 2, /* a connection failed or was lost (err, reason) */
  APNS_POOL_EVENT_RETRY = 3,     /* a request is retried (err or status of the failed try, attempt number) */
  APNS_POOL_EVENT_TOKEN = 4,     /* a connection took a new provider token */
  APNS_POOL_EVENT_STOPPED = 5    /* the pool stopped (err: the cause, as apns_pool_stop_cause; reason: its text) */
} apns_pool_event_type;

/* Lent to on_event, valid during the call: it only grows at its end, so read it through the pointer. */
typedef struct apns_pool_event {
  apns_pool_event_type type;
  unsigned conn_index; /* which connection, 0 .. connections-1 */
  int err;             /* a negative code, or 0 */
  int status;          /* HTTP status for RETRY after a response, else 0 */
  const char *reason;  /* GOAWAY or APNs reason, connection error text; may be NULL */
  unsigned attempt;    /* RETRY: the attempt that failed */
} apns_pool_event;

typedef void (*apns_pool_event_cb)(apns_pool *pool, const apns_pool_event *ev);
typedef void (*apns_pool_cb)(apns_pool *pool);

/* Initialize with APNS_POOL_OPTIONS_INIT or apns_pool_options_init(): size set, every other field zero, which is
 * its default (the ABI rule in apns/common.h). Nothing of it need outlive apns_pool_open(): what the pool keeps
 * (strings, TLS settings, the proxy) is copied. */
typedef struct apns_pool_options {
  size_t size;                     /* sizeof(apns_pool_options), set by the initializers */
  const char *host;                /* required */
  uint16_t port;                   /* default 443 */
  const apns_tls_options *tls;     /* default NULL: every default (see apns_tls_options); copied at open */
  const char *authority;           /* default: as apns_conn_options */
  unsigned connections;            /* default 2, at most 1000 */
  uint64_t connect_timeout_ms;     /* per connection attempt; default 10 000 */
  uint64_t ping_idle_ms;           /* default 15 000 (see apns_conn_options) */
  uint64_t ping_timeout_ms;        /* default 5 000 */
  size_t max_queued;               /* 0: unbounded (default) */
  size_t low_water;                /* on_low_water when the queue falls to this; default max_queued / 2 */
  apns_pool_cb on_low_water;       /* optional: called once each time the queue drains to low_water */
  int never_resend_unknown;        /* 1: do not resend requests that may have reached Apple. Default 0 */
  uint64_t retry_max_delay_ms;     /* cap of the retry back-off; default 1 000 */
  uint64_t reconnect_min_delay_ms; /* first reconnect delay after a failure; default 250 */
  uint64_t reconnect_max_delay_ms; /* cap of the reconnect back-off; default 30 000 */
  unsigned max_connects_per_sec;   /* pool-wide connect rate limit (rotations aside, see above); default 4 */
  apns_pool_event_cb on_event;     /* optional metrics and logging hook (see apns_pool_event_type); default NULL */
  /* Optional: the pool stopped (see above; apns_pool_stop_cause says why). Runs once, after the queued requests
   * have ended (those in flight end on a later loop turn); closing the pool from it is safe. Default NULL. */
  apns_pool_cb on_stopped;
  void *data; /* yours: apns_pool_data() */
  /* Optional: a connection became ready to carry requests; runs each time one does (the first time is when the
   * pool can first send). Default NULL. */
  apns_pool_cb on_connected;
  /* Every connection goes through this proxy (see apns/proxy.h and apns_conn_options.proxy); copied at open.
   * A proxy that is down or refuses is a connection failure (APNS_POOL_EVENT_CONN_DOWN with its cause), retried
   * with the usual reconnect back-off; wrong credentials (APNS_EPROXYAUTH) or a proxy that does not speak its
   * protocol (APNS_EPROXYPROTO) are permanent and stop the pool. Default NULL: no proxy. */
  const apns_proxy_options *proxy;
} apns_pool_options;

#ifdef __cplusplus
#define APNS_POOL_OPTIONS_INIT                                                                                       \
  { sizeof(apns_pool_options) }
#else
#define APNS_POOL_OPTIONS_INIT                                                                                       \
  { .size = sizeof(apns_pool_options) }
#endif
/* Zeroes *o and sets o->size, as APNS_POOL_OPTIONS_INIT does (for options in allocated memory). */
APNS_EXTERN void apns_pool_options_init(apns_pool_options *o);

/* Creates the pool and starts connecting its connections. Returns 0, APNS_EINVAL (errbuf says why: no host,
 * options not initialized or from a newer libapns, ...), APNS_EBADCERT, APNS_EBADKEY
 * (errbuf says which file and why), APNS_ENOMEM. errbuf may be NULL. */
APNS_EXTERN int apns_pool_open(uv_loop_t *loop, apns_pool **out, const apns_pool_options *opts, char *errbuf,
                               size_t errlen);

/* Queues a request (copied: your buffers are yours again on return). Returns 0 (cb runs exactly once, later),
 * APNS_EQUEUEFULL (max_queued reached), APNS_ECLOSED (closing), APNS_ESTOPPED (stopped), APNS_EINVAL,
 * APNS_EBADHEADER, APNS_ENOMEM. */
APNS_EXTERN int apns_pool_post(apns_pool *pool, const apns_request *req, apns_response_cb cb, void *data);

/* Graceful close: no new posts; queued and in-flight requests may finish within drain_timeout_ms (0: cancel at
 * once); what is left then ends with APNS_ECANCELED; each request ends once; then cb runs and the pool is freed.
 * Safe from any callback. Calling it twice: APNS_EBUSY. */
APNS_EXTERN int apns_pool_close(apns_pool *pool, uint64_t drain_timeout_ms, apns_pool_cb cb);

/* apns_pool_unref: none of the pool's handles (its timers, every slot's reconnect timer) nor any of its connections'
 * (apns_conn_unref: sockets, timers, ping timers, those open now and those opened later) keeps the loop alive, as
 * uv_unref does for a handle: uv_run(UV_RUN_DEFAULT) returns once nothing else is left, the pool still open.
 * Queued and in-flight requests do not keep the loop alive either (Node's unref'd sockets do the same): while you
 * wait for answers, keep a referenced handle of your own (the Node binding does). Only a host name being resolved
 * and a TCP connect in progress do, until they end (libuv requests cannot be unref'd). apns_pool_close makes the
 * pool referenced again: the close keeps the loop alive until its callback, and apns_pool_unref is a no-op from
 * then on. apns_pool_ref undoes apns_pool_unref. Both are idempotent (no count), safe from any callback, no-ops on
 * NULL. Default: referenced. */
APNS_EXTERN void apns_pool_unref(apns_pool *pool);
APNS_EXTERN void apns_pool_ref(apns_pool *pool);

/* Filled by apns_pool_get_stats and apns_client_get_stats, which write no more than the size they are given
 * (pass sizeof *out): a program built against an older header gets the fields it knows. Fields are only appended. */
typedef struct apns_pool_stats {
  size_t queued;
  size_t in_flight;
  unsigned connections_up;
  uint64_t posted;       /* accepted by apns_pool_post */
  uint64_t sent;         /* tries written to a connection */
  uint64_t accepted;     /* ended with status 200 */
  uint64_t rejected;     /* ended with another status */
  uint64_t failed;       /* ended without a response (timeout, closed, canceled, stopped) */
  uint64_t retried;      /* tries after the first */
  uint64_t timed_out;    /* ended with APNS_ETIMEDOUT */
  uint64_t by_status[6]; /* final responses: [0] 2xx, [1] 400, [2] 403, [3] 410, [4] other 4xx, [5] 5xx */
  uint64_t other_status; /* final responses with any other status (1xx, 3xx from a proxy, ...); counted rejected */
  /* The most requests the server takes on one connection, as learned from its rotations (see the top of this
   * file), or 0: none learned. */
  uint64_t request_limit;
  uint64_t capped; /* connections retired at request_limit, their replacement opened before any was refused */
} apns_pool_stats;

/* Accessors take a NULL pool, as free(NULL) does: they then return NULL, or fill *out with zeros, so that code
 * tearing down need not check. Every function that returns an int returns APNS_EINVAL for a NULL pool instead. */
/* Writes the first min(size, sizeof(apns_pool_stats)) bytes of the stats to out (zeros for a NULL pool). */
APNS_EXTERN void apns_pool_get_stats(const apns_pool *pool, apns_pool_stats *out, size_t size);
/* The data of apns_pool_options. For a client's pool (apns_client_pool, and the pool a client's on_event gets)
 * it is the client's data (apns_client_options.data), the same as apns_client_data() gives. */
APNS_EXTERN void *apns_pool_data(const apns_pool *pool);
APNS_EXTERN uv_loop_t *apns_pool_loop(const apns_pool *pool);

/* Why the pool stopped: 0 while it has not; else the connection's permanent error (APNS_ECERTVERIFY, APNS_EALPN,
 * APNS_ETLS) or APNS_ESTOPPED after a fatal answer. *text (when text is not NULL) gets a message naming the cause
 * ("certificate verification failed: ...", "the server answered 403 BadCertificate ..."), owned by the pool and
 * valid until it is freed; NULL while not stopped. APNS_EINVAL for a NULL pool. */
APNS_EXTERN int apns_pool_stop_cause(const apns_pool *pool, const char **text);

#ifdef __cplusplus
}
#endif
#endif /* APNS_POOL_H */
