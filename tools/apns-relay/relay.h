/* apns-relay: what the relay's parts share.
 *
 * args.c turns the command line into relay_opts; redis.c keeps one hiredis connection to Redis on the loop (URL,
 * AUTH, SELECT, reconnect with back-off); metrics.c serves Prometheus text with libmicrohttpd on the same loop;
 * log.c writes JSON lines on stderr; main.c reads the stream through the consumer group, sends through the
 * client and writes each entry's result and its acknowledgement in one atomic step. Bulk lines are parsed and
 * result lines written by tools/common/bulk.c, as apns-push does. */
#ifndef APNS_RELAY_H
#define APNS_RELAY_H

#include "apns_args.h"

#include <apns.h>
#include <apns/client.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdint.h>
#include <uv.h>

#define RELAY_EXIT_OK 0     /* stopped by a signal after draining */
#define RELAY_EXIT_FAILED 1 /* stopped by a fatal answer of APNs, or drained only in part */
#define RELAY_EXIT_USAGE 2  /* usage or configuration error */

/* ---- args.c ---- */

#define RELAY_MAX_STREAMS 64

typedef struct relay_opts {
  /* Redis */
  const char *redis_url;
  const char *streams[RELAY_MAX_STREAMS]; /* --stream, once or more (default "apns") */
  unsigned n_streams;
  const char *group, *consumer;
  const char *results, *dead_letter, *dead_tokens; /* given for one stream; NULL: derived from each stream */
  unsigned batch;
  uint64_t block_ms, claim_idle_ms, drain_ms;
  unsigned max_deliveries;
  size_t max_held;     /* entries held (read, not yet acknowledged) at most */
  const char *metrics; /* HOST:PORT or NULL */
  apns_args apns;      /* the APNs side: server, auth, --connections, --timeout, --topic, --proxy */
  char consumer_buf[300];
} relay_opts;

/* Returns 0; 1 after --help or --version (exit 0); RELAY_EXIT_USAGE after saying why on stderr. After 0,
 * apns_args_free(&o->apns) gives back the passphrase's copy; after any other return there is nothing to free. */
int relay_parse_args(int argc, char **argv, relay_opts *o);

/* ---- log.c ---- */

/* One JSON line on stderr: {"ts":<UNIX seconds, ms precision>,"level":...,"msg":...} and the members in extra,
 * which is either NULL or a string of ,"key":value pairs already in JSON. msg is escaped. */
void relay_log(const char *level, const char *extra, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- redis.c ---- */

typedef struct redis_url {
  char host[256];
  int port;
  char path[256]; /* unix socket; empty for TCP */
  char user[128], pass[256];
  int db;
} redis_url;

/* Parses redis://[[user]:pass@]host[:port][/db] and unix:///path[?db=N]. Returns 0, or -1 with why. */
int redis_url_parse(const char *url, redis_url *out, char *why, size_t whylen);

typedef struct rconn rconn;
typedef void (*rconn_cb)(rconn *c);

/* One connection to Redis, reconnected with back-off (100 ms doubling to 5 s) whenever it is lost, until
 * rconn_stop. Commands are sent only while it is up; every command's callback runs exactly once (hiredis's rule:
 * with a NULL reply when the connection goes away). A host name is resolved with uv_getaddrinfo (off the loop's
 * thread) before each connect; the logs name the host and the address it had. */
struct rconn {
  uv_loop_t *loop;
  const redis_url *url;
  const char *name; /* for the logs */
  char host[256];   /* where it connects: the URL's host, or where a cluster's MOVED pointed */
  int port;
  char addr[64];     /* host resolved, for the logs */
  unsigned attempts; /* connects failed in a row: a name's next address is tried each time */
  redisAsyncContext *ac;
  uv_getaddrinfo_t gai;
  int up, stopping, resolving, redirecting;
  uint64_t delay_ms;
  uint64_t connects, losses;
  uv_timer_t retry;
  rconn_cb on_up, on_down, on_closed;
  void *data;
};

void rconn_init(rconn *c, uv_loop_t *loop, const redis_url *url, const char *name, void *data);
void rconn_start(rconn *c);
/* Disconnects once the replies pending have come (on_closed then runs, once the retry timer is closed too). */
void rconn_stop(rconn *c);
/* Sends a command. Returns 0, or -1 when the connection is not up (cb is then never called). */
int rconn_command(rconn *c, redisCallbackFn *cb, void *privdata, int argc, const char **argv, const size_t *lens);
/* Points the connection at host:port (a cluster node named by -MOVED): no command is sent from now on; the
 * connection is closed once its pending replies are in and made again to the new address at once. A no-op when it
 * already points there. */
void rconn_redirect(rconn *c, const char *host, int port);

/* The cluster hash slot of a key (CRC16 of its hash tag, or of the whole key), 0..16383. */
unsigned redis_key_slot(const char *key, size_t len);
/* Parses the host:port of an -MOVED or -ASK error ("MOVED 3999 127.0.0.1:6381"). Returns 0, or -1. */
int redis_parse_redirect(const char *err, char *host, size_t hostcap, int *port);

/* ---- metrics.c ---- */

typedef struct relay_metrics relay_metrics;
/* Writes the Prometheus text into buf (cap bytes). Returns its length (< cap). */
typedef size_t (*metrics_text_cb)(void *data, char *buf, size_t cap, int *healthy);

/* Serves GET /metrics and GET /health on host:port (port 0: any free port) from the loop: libmicrohttpd in its
 * external-poll mode, its epoll descriptor watched with a uv_poll_t. Returns NULL after saying why on stderr. */
relay_metrics *relay_metrics_start(uv_loop_t *loop, const char *hostport, metrics_text_cb cb, void *data);
int relay_metrics_port(const relay_metrics *m);
/* Stops the daemon; the handles are freed once the loop has run their close callbacks. */
void relay_metrics_stop(relay_metrics *m);

#endif
