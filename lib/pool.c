/* The pool: a fixed number of connections kept up, a FIFO queue of pending requests, retries with back-off.
 *
 * Each request is built once (apns__req, one allocation with the pool's bookkeeping in its extra bytes) and kept
 * across tries on different connections. Queued requests sit in two intrusive structures: the FIFO queue (list.h),
 * and their deadlines, which one pool timer serves: a FIFO of those that came in order (O(1), the usual case with
 * one timeout) and a min-heap (heap.h) of the others (O(log n)), so a retry, which goes back to the head of the
 * queue with an early deadline, costs the same with a million queued as with ten. A retry carries a "not before"
 * time: the queue waits for it rather than overtaking it, so order is kept.
 *
 * Dispatch takes the head of the queue for any connection with a free stream, round robin. Finding one looks at
 * each of the `size` connections at most: constant in the number of requests.
 *
 * Connections that fail, are lost or are sent away (GOAWAY) are replaced after a back-off that doubles each time
 * and is forgotten when a connection answers 2xx; a token bucket (burst = size, refill max_connects_per_sec)
 * bounds how fast the pool connects. One cause is neither: a graceful GOAWAY (NO_ERROR) on a connection that
 * served at least APNS__POOL_ROTATION_OK requests 2xx is the server rotating its connections (nginx does it every
 * keepalive_requests), and the slot is refilled at once, outside the bucket. A server that sends connections away
 * after fewer successes (a GOAWAY storm) still gets the back-off and the bucket; rotations are bounded by the
 * successes they need: at most one connect per APNS__POOL_ROTATION_OK answers.
 *
 * Such a server refuses every request above its GOAWAY's last stream, and with a window of streams in flight that is
 * nearly a limit's worth more: the pool learns the limit instead (pool_learn_limit, when each connection ends). A
 * graceful GOAWAY that shows the connection accepted k >= APNS__POOL_ROTATION_OK requests (those at or below its
 * last-stream-id, apns__conn_goaway_accepted), after at least as many 2xx, is an observation; the same k twice in a
 * row makes it stats.request_limit. One is not enough: a restart or Apple's maintenance sends one GOAWAY at any
 * count, and a limit taken from it would retire every connection early for nothing (a stray one between two rotations
 * at the limit only starts a pair that the next rotation breaks). At the limit a connection is retired right after
 * its last submit (slot_cap: apns__conn_retire, so its open requests end normally) and replaced at once as a
 * rotation. The replacement opens at the limit, not some streams before it, so a slot holds one connection: against
 * nginx at keepalive_requests 100 the rate is bound by the handshakes' CPU (twice the slots, so twice the handshakes
 * at once, gave the same 10 600/s), so a handshake overlapped with its predecessor's last answers would gain nothing,
 * and the other slots go on meanwhile. A connection retired at the limit that does not end as a rotation would (the
 * server's graceful GOAWAY with at least ROTATION_OK accepted, and as many 2xx; apns__conn_retire waits for a last
 * PING's ack, so a GOAWAY sent just after the last answer is read) means the server no longer sends away there, or no
 * longer serves well: the limit is forgotten and learned again from rotations, which also covers a raised limit. So
 * capped replacements, outside the bucket as rotations are, still need the successes rotations need: one more
 * connection at most before the limit goes. A lowered one is learned from two rotations at the new count; what was
 * refused in between is retried as before. */
#include "pool.h"

#include "abi.h"
#include "alloc.h"
#include "conn.h"
#include "errbuf.h"
#include "heap.h"
#include "list.h"
#include "proxy.h"
#include "request.h"
#include "sat.h"
#include "tls.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define APNS__POOL_DEFAULT_SIZE 2
#define APNS__POOL_RETRY_MAX_MS 1000
#define APNS__POOL_RECONNECT_MIN_MS 250
#define APNS__POOL_RECONNECT_MAX_MS 30000
#define APNS__POOL_CONNECTS_PER_SEC 4
#define APNS__POOL_FREE_REFUSALS 8 /* unprocessed tries retried without back-off */
#define APNS__POOL_ROTATION_OK 32  /* 2xx answers that make a graceful GOAWAY a rotation, not a failure */
/* Connection attempts in a row that fail for a cause that cannot go away by itself (the server's certificate does
 * not verify, no HTTP/2, our certificate refused), and 403 InvalidProviderToken answers in a row, before the pool
 * stops: a few, so that one bad server behind a balancer does not stop it, yet far sooner than any deadline. */
#define APNS__POOL_PERMANENT_TRIES 3

typedef enum { POOL_OPEN, POOL_DRAINING, POOL_CANCELING, POOL_STOPPED } pool_state;

typedef struct pool_item pool_item;
typedef struct pool_slot pool_slot;
typedef struct pool_conn pool_conn;

/* Every queued request carries one, so it is kept small: the request is found from it (apns__req_of_extra), the
 * deadline is the request's link.deadline (absolute, uv_now milliseconds; set once at post, read by the
 * connections of its tries), its places in the queue and the deadline heap are the request's link.q and link.dl,
 * and the slot is an index (at most 1000 slots). */
struct pool_item {
  apns_pool *pool;
  apns_response_cb cb;
  void *data;
  uint64_t not_before; /* back-off: not to be sent before this */
  unsigned attempts;
  uint16_t slot;     /* index of the connection of the current try */
  uint8_t token_gen; /* the slot's token generation the current try was sent under */
  uint8_t flags;     /* ITEM_* */
};

/* The worst delivery of its tries so far (apns_delivery: NOT_PROCESSED, or UNKNOWN once it may have arrived) in the
 * low bits, and whether it was already retried after ExpiredProviderToken. */
#define ITEM_DELIVERY_MASK 0x3u
#define ITEM_TOKEN_RETRIED 0x4u

static apns_delivery item_delivery(const pool_item *it) {
  return (apns_delivery)(it->flags & ITEM_DELIVERY_MASK);
}

static void item_set_delivery(pool_item *it, apns_delivery d) {
  it->flags = (uint8_t)((it->flags & ~ITEM_DELIVERY_MASK) | (unsigned)d);
}

static apns__req *item_req(pool_item *it) {
  return apns__req_of_extra(it);
}

static uint64_t item_deadline(pool_item *it) {
  return item_req(it)->link.deadline;
}

struct pool_slot {
  apns_pool *pool;
  unsigned index;
  apns_conn *conn; /* the current connection (connecting or up), or NULL */
  uv_timer_t reconnect;
  uint64_t backoff_ms;
  int rotating; /* the next connect replaces a rotated connection: no back-off, no connect token */
  /* Provider token. Its age is measured on the monotonic clock: the wall clock only gives the iat it carries, and
   * a wall clock stepped back must not hold a refresh off. */
  char *token;           /* authorization value of the current token */
  uint64_t token_born;   /* when it was made (monotonic ms) */
  uint8_t token_gen;     /* counts the tokens made; each try remembers the one it was sent under */
  int token_stale;       /* the server said the current generation expired */
  apns_conn *token_conn; /* the connection that has it set (reset whenever the slot's connection changes) */
};

/* Every connection the pool opened and whose close callback has not run: in a slot, or retired (draining after
 * GOAWAY while a replacement takes its slot). Made with the connection, so retiring one never allocates, never
 * fails, and never has to close a connection early. The connection's data points here. */
struct pool_conn {
  apns_conn *conn;
  pool_slot *slot;
  apns__list node;    /* on the pool's conns */
  uint64_t submitted; /* requests written to it */
  int capped;         /* retired at the learned limit (slot_cap) */
};

struct apns_pool {
  uv_loop_t *loop;
  pool_state state;
  apns_pool_options opts; /* strings below are our copies */
  char *host, *authority, *verify_name;
  apns__tls_config *tls_cfg;
  apns__proxy_cfg *proxy_cfg; /* our copy of opts.proxy, or NULL */
  pool_slot *slots;
  unsigned size;
  unsigned rr; /* round-robin cursor */

  apns__list queue; /* of the queued requests, through link.q: FIFO, retries at the head */
  size_t queued;
  apns__list dl_fifo;   /* of the queued requests whose deadlines came in order, through link.fifo (see d_first) */
  apns__heap deadlines; /* of the other queued requests, through link.dl */
  size_t in_flight;

  uv_timer_t timer; /* queued deadlines and back-off */
  uint64_t timer_due;
  uv_timer_t drain_timer;
  int handles_open;
  apns__list conns; /* every connection whose close callback has not run (pool_conn) */
  int closing;      /* apns_pool_close was called */
  int unref;        /* apns_pool_unref: no handle of ours, nor of our connections, keeps the loop alive */
  int finishing;    /* handles are being closed: the end */
  apns_pool_cb on_close;

  double tokens; /* connect token bucket */
  uint64_t tokens_at;
  int dispatching, redispatch;
  int low_armed;
  uint64_t rng;

  void *owner; /* apns__pool_set_owner */
  apns__pool_token_cb token_cb;
  apns__pool_clock_cb clock_cb;
  void *token_ctx;
  int64_t token_refresh_s;
  apns__pool_mono_cb mono_cb; /* tests: the monotonic clock; NULL means uv_now */
  void *mono_ctx;

  /* Why requests cannot be written: the last connection failure (cleared when a connection comes up), the count
   * of permanent ones in a row, and, once stopped, the cause. */
  int conn_err;
  char conn_err_text[256];
  unsigned permanent_fails;
  unsigned invalid_tokens; /* 403 InvalidProviderToken answers since the last 2xx */
  uint64_t limit_seen;     /* the count of the last rotation's GOAWAY: a second one alike makes it the limit */
  int stop_err;
  char stop_text[256];

  apns_pool_stats stats;
};

/* ---- small helpers --------------------------------------------------------------------------------------------- */

static uint64_t pool_rand(apns_pool *p) {
  /* xorshift64*: jitter only, no security role. */
  p->rng ^= p->rng >> 12;
  p->rng ^= p->rng << 25;
  p->rng ^= p->rng >> 27;
  return p->rng * 2685821657736338717ULL;
}

/* delay +- 20% */
static uint64_t pool_jitter(apns_pool *p, uint64_t delay) {
  if (delay < 5) return delay + (pool_rand(p) % 2);
  uint64_t span = delay / 5 * 2; /* not delay * 2: a cap of UINT64_MAX must not wrap */
  return delay - delay / 5 + pool_rand(p) % (span + 1);
}

static void pool_event(apns_pool *p, apns_pool_event_type type, pool_slot *s, int err, int status, const char *reason,
                       unsigned attempt) {
  if (p->opts.on_event == NULL) return;
  apns_pool_event ev = {type, s ? s->index : 0, err, status, reason, attempt};
  p->opts.on_event(p, &ev);
}

static int64_t pool_clock(apns_pool *p) {
  return p->clock_cb ? p->clock_cb(p->token_ctx) : (int64_t)time(NULL);
}

static uint64_t pool_mono(apns_pool *p) {
  return p->mono_cb ? p->mono_cb(p->mono_ctx) : uv_now(p->loop);
}

/* ---- queue and deadlines --------------------------------------------------------------------------------------- */

/* While queued a request is on no connection (it leaves the queue before apns__conn_submit and comes back only
 * from its done callback, or after a submit that failed and left it untouched), so the links a connection keeps
 * its requests by (link.dl, link.q) serve the queue, and the pool's item carries no links of its own. */
static pool_item *item_of_req(apns__req *req) {
  return apns__req_extra(req); /* NULL for NULL */
}

/* The head of the queue, or NULL. */
static pool_item *q_first(apns_pool *p) {
  return item_of_req(apns__req_of_q(apns__list_head(&p->queue)));
}

/* Deadlines of queued requests: most are posted with one timeout, so they come in order and wait on dl_fifo
 * (through link.fifo), where adding at either end and removing from anywhere is O(1). A request whose deadline
 * fits at neither end (a retry with an early deadline behind others, a shorter timeout than the last one posted)
 * goes to the heap (link.dl, link.early set) at O(log n). The first deadline is the earlier of the two heads. */
static pool_item *d_first(apns_pool *p) {
  apns__req *f = apns__req_of_fifo(apns__list_head(&p->dl_fifo)), *e = apns__req_of_dl(apns__heap_min(&p->deadlines));
  return item_of_req(e && (f == NULL || apns__req_deadline_less(&e->link.dl, &f->link.dl)) ? e : f);
}

static void d_insert(apns_pool *p, apns__req *r) {
  apns__req *head = apns__req_of_fifo(apns__list_head(&p->dl_fifo));
  apns__req *tail = apns__req_of_fifo(apns__list_tail(&p->dl_fifo));
  r->link.early = 0;
  if (tail == NULL || r->link.deadline >= tail->link.deadline)
    apns__list_push_tail(&p->dl_fifo, &r->link.fifo);
  else if (r->link.deadline < head->link.deadline)
    apns__list_push_head(&p->dl_fifo, &r->link.fifo); /* strictly: of equal deadlines, the first queued ends first */
  else {
    r->link.early = 1;
    apns__heap_insert(&p->deadlines, &r->link.dl);
  }
}

static void q_remove(apns_pool *p, pool_item *it) {
  apns__req *r = item_req(it);
  apns__list_remove(&r->link.q);
  if (r->link.early)
    apns__heap_remove(&p->deadlines, &r->link.dl);
  else
    apns__list_remove(&r->link.fifo);
  r->link.early = 0;
  p->queued--;
}

static void q_push_tail(apns_pool *p, pool_item *it) {
  apns__list_push_tail(&p->queue, &item_req(it)->link.q);
  d_insert(p, item_req(it));
  p->queued++;
}

static void q_push_head(apns_pool *p, pool_item *it) {
  apns__list_push_head(&p->queue, &item_req(it)->link.q);
  d_insert(p, item_req(it));
  p->queued++;
}

/* ---- ending requests ------------------------------------------------------------------------------------------- */

static void pool_maybe_finish(apns_pool *p);

/* Ends a request. text says why when err is not 0 (NULL: the response's own, else apns_strerror(err)). */
static void item_finish(pool_item *it, int err, const apns_response *res, const char *text) {
  apns_pool *p = it->pool;
  apns_response r;
  if (res)
    r = *res;
  else
    memset(&r, 0, sizeof r);
  if (err != 0 && (text || r.error_text == NULL)) r.error_text = text ? text : apns_strerror(err);
  if (err != 0 && r.delivery == APNS_DELIVERY_RESPONDED) r.delivery = item_delivery(it);
  if (err != 0 && item_delivery(it) == APNS_DELIVERY_UNKNOWN) r.delivery = APNS_DELIVERY_UNKNOWN;
  r.attempts = it->attempts;
  if (err == 0) {
    int st = r.status;
    if (st >= 200 && st < 300)
      p->stats.accepted++, p->stats.by_status[0]++;
    else {
      p->stats.rejected++;
      if (st >= 400 && st < 600)
        p->stats.by_status[st == 400 ? 1 : st == 403 ? 2 : st == 410 ? 3 : st < 500 ? 4 : 5]++;
      else
        p->stats.other_status++; /* 1xx, 3xx (a proxy's), or out of range: not a 4xx */
    }
  } else {
    p->stats.failed++;
    if (err == APNS_ETIMEDOUT) p->stats.timed_out++;
  }
  it->cb(err, &r, it->data);
  apns__req_free(item_req(it));
}

static void pool_arm(apns_pool *p);
static void pool_dispatch(apns_pool *p, int from_post);

/* Ends every queued request with err. */
static void pool_flush_queue(apns_pool *p, int err, const char *text) {
  pool_item *it;
  while ((it = q_first(p)) != NULL) {
    q_remove(p, it);
    item_finish(it, err, NULL, text);
  }
}

/* The error a request that never reached the server ends with when its deadline passes: the last connection
 * failure while no connection is up (the real reason it was not written), else APNS_ETIMEDOUT (the connections
 * were busy). */
static int pool_unwritten_cause(apns_pool *p, const char **text) {
  *text = NULL;
  if (p->conn_err == 0) return APNS_ETIMEDOUT;
  for (unsigned i = 0; i < p->size; i++) {
    apns_conn *c = p->slots[i].conn;
    if (c && (apns_conn_get_state(c) == APNS_CONN_READY || apns_conn_get_state(c) == APNS_CONN_DRAINING))
      return APNS_ETIMEDOUT;
  }
  *text = p->conn_err_text;
  return p->conn_err;
}

/* A cause that another try cannot cure: the server's certificate does not verify (wrong CA, wrong name), the
 * server does not speak HTTP/2, the proxy refused our credentials or speaks no proxy protocol, or the server
 * refused our certificate in the handshake (the TLS layer says so in its
 * message: the alert is bad_certificate, certificate_unknown, unknown_ca or certificate_required). */
static int conn_err_permanent(int err, const char *text) {
  return err == APNS_ECERTVERIFY || err == APNS_EALPN || err == APNS_EPROXYAUTH || err == APNS_EPROXYPROTO ||
         (err == APNS_ETLS && text && strstr(text, "did not accept our certificate") != NULL);
}

/* ---- connections ----------------------------------------------------------------------------------------------- */

static void slot_connect(pool_slot *s);

static pool_slot *conn_slot(const apns_conn *c) {
  return ((pool_conn *)apns_conn_data(c))->slot;
}

static void on_conn_closed(apns_conn *c) {
  pool_conn *pc = apns_conn_data(c);
  apns_pool *p = pc->slot->pool;
  apns__list_remove(&pc->node);
  apns__free(pc);
  pool_maybe_finish(p);
}

static void slot_drop_conn(pool_slot *s) {
  apns_conn *c = s->conn;
  s->conn = NULL;
  s->token_conn = NULL;
  if (c && apns_conn_get_state(c) != APNS_CONN_CLOSING) apns_conn_close(c, on_conn_closed);
}

static void on_reconnect_timer(uv_timer_t *t) {
  slot_connect(t->data);
}

static void slot_schedule_reconnect(pool_slot *s) {
  apns_pool *p = s->pool;
  if (p->state != POOL_OPEN && p->state != POOL_DRAINING) return;
  if (p->closing && p->queued == 0) return; /* nothing left to carry */
  uint64_t min = p->opts.reconnect_min_delay_ms, max = p->opts.reconnect_max_delay_ms;
  s->backoff_ms = s->backoff_ms == 0 ? min : apns__add_sat(s->backoff_ms, s->backoff_ms);
  if (s->backoff_ms > max) s->backoff_ms = max;
  uv_timer_start(&s->reconnect, on_reconnect_timer, pool_jitter(p, s->backoff_ms), 0);
}

static void pool_stop(apns_pool *p, int err, const char *text);

/* A connection failed or was lost: remember why, for the requests it leaves unwritten. */
static void pool_conn_failed(apns_pool *p, int err, const char *text) {
  p->conn_err = err;
  snprintf(p->conn_err_text, sizeof p->conn_err_text, "%s", text && text[0] ? text : apns_strerror(err));
}

static void on_conn_connect(apns_conn *c, int status) {
  pool_slot *s = conn_slot(c);
  apns_pool *p = s->pool;
  if (s->conn != c) return;
  if (status < 0) {
    const char *text = apns_conn_last_error(c);
    pool_conn_failed(p, status, text);
    pool_event(p, APNS_POOL_EVENT_CONN_DOWN, s, status, 0, text, 0);
    slot_drop_conn(s);
    if (conn_err_permanent(status, text) && ++p->permanent_fails >= APNS__POOL_PERMANENT_TRIES) {
      pool_stop(p, p->conn_err, p->conn_err_text);
      return;
    }
    slot_schedule_reconnect(s);
    return;
  }
  p->conn_err = 0;
  p->permanent_fails = 0;
  pool_event(p, APNS_POOL_EVENT_CONN_UP, s, 0, 0, NULL, 0);
  if (p->opts.on_connected) p->opts.on_connected(p);
  pool_dispatch(p, 0);
}

/* A connection the server sent away gracefully after serving it well (see the top of the file). */
static int conn_rotated(apns_conn *c) {
  return apns__conn_goaway_graceful(c) && apns__conn_ok_responses(c) >= APNS__POOL_ROTATION_OK;
}

/* Refills the slot of a rotated connection on the next loop turn (not inside the connection's callback). */
static void slot_rotate(pool_slot *s) {
  s->backoff_ms = 0;
  s->rotating = 1;
  uv_timer_start(&s->reconnect, on_reconnect_timer, 0, 0);
}

/* Learns, from a connection that ended, how many requests the server takes on one (see the top of the file). */
static void pool_learn_limit(apns_pool *p, apns_conn *c) {
  pool_conn *pc = apns_conn_data(c);
  int64_t k = apns__conn_goaway_accepted(c);
  if (k >= APNS__POOL_ROTATION_OK && apns__conn_ok_responses(c) >= APNS__POOL_ROTATION_OK) {
    if ((uint64_t)k == p->limit_seen)
      p->stats.request_limit = p->limit_seen;
    else
      p->limit_seen = (uint64_t)k; /* one GOAWAY alone may be a restart: the limit stays until a second agrees */
  } else if (pc->capped) {
    /* Not sent away there, or not answered well: a capped connection is replaced outside the connect bucket only
     * while it proves a rotation as the server's own GOAWAY does. */
    p->stats.request_limit = p->limit_seen = 0;
  }
}

/* The slot's connection has taken the learned limit of requests: it takes no more, and its replacement opens now,
 * as for a rotation (on_conn_capacity, called from the connection's flush), before the server refuses anything. */
static void slot_cap(pool_slot *s, pool_conn *pc) {
  apns_pool *p = s->pool;
  char why[160];
  if (apns_conn_get_state(s->conn) != APNS_CONN_READY) return;
  snprintf(why, sizeof why,
           "took %llu requests, the most the server takes on a connection (learned from its GOAWAYs): replaced",
           (unsigned long long)pc->submitted);
  pc->capped = 1;
  p->stats.capped++;
  apns__conn_retire(s->conn, why);
}

/* The slot's connection left it: a rotation is refilled at once, anything else after the back-off. */
static void slot_replace(pool_slot *s, int rotated) {
  apns_pool *p = s->pool;
  if (rotated && (p->state == POOL_OPEN || p->state == POOL_DRAINING) && !(p->closing && p->queued == 0))
    slot_rotate(s);
  else
    slot_schedule_reconnect(s);
}

static void on_conn_lost(apns_conn *c, int err, const char *reason) {
  pool_slot *s = conn_slot(c);
  apns_pool *p = s->pool;
  /* Retired at the limit, a connection can end before its capacity callback (the server's GOAWAY read on the same
   * turn refused its last request): that is no failure either. */
  int capped = ((pool_conn *)apns_conn_data(c))->capped;
  pool_learn_limit(p, c);
  if (s->conn == c) {
    if (!capped) pool_conn_failed(p, err, apns_conn_last_error(c));
    pool_event(p, APNS_POOL_EVENT_CONN_DOWN, s, err, 0, reason ? reason : apns_conn_last_error(c), 0);
    slot_drop_conn(s);
    slot_replace(s, capped);
  } else if (apns_conn_get_state(c) != APNS_CONN_CLOSING) {
    /* A retired connection has drained. A server may send GOAWAY before the answers below it: once those proved it
     * a rotation, a replacement still waiting out the back-off goes now. */
    if (s->conn == NULL && !s->rotating && uv_is_active((uv_handle_t *)&s->reconnect) && conn_rotated(c) &&
        (p->state == POOL_OPEN || p->state == POOL_DRAINING))
      slot_rotate(s);
    apns_conn_close(c, on_conn_closed);
  }
}

static void on_conn_capacity(apns_conn *c) {
  pool_slot *s = conn_slot(c);
  apns_pool *p = s->pool;
  if (s->conn == c && apns_conn_get_state(c) == APNS_CONN_DRAINING) {
    /* GOAWAY, or stream ids running out: it leaves its slot (it stays on p->conns, and is closed once it has
     * drained: on_conn_lost) and lets its open streams finish; a replacement takes the slot. */
    pool_event(p, APNS_POOL_EVENT_CONN_DOWN, s, APNS_ECLOSED, 0, apns_conn_last_error(c), 0);
    s->conn = NULL;
    s->token_conn = NULL;
    /* A rotation, or stream ids spent (after a billion requests), is replaced at once. Otherwise the replacement
     * waits out the slot's back-off, as after a failure: a server that sends every connection away must not get a
     * connect at every turn. The back-off is forgotten only once a connection proved itself with a 2xx
     * (item_attempt_done). */
    slot_replace(s, conn_rotated(c) || ((pool_conn *)apns_conn_data(c))->capped);
  }
  pool_dispatch(p, 0);
}

static int pool_take_connect_token(apns_pool *p, uint64_t *wait_ms) {
  uint64_t now = uv_now(p->loop);
  double rate = (double)p->opts.max_connects_per_sec, cap = p->size > rate ? (double)p->size : rate;
  p->tokens += (double)(now - p->tokens_at) * rate / 1000.0;
  if (p->tokens > cap) p->tokens = cap;
  p->tokens_at = now;
  if (p->tokens >= 1.0) {
    p->tokens -= 1.0;
    return 1;
  }
  *wait_ms = (uint64_t)ceil((1.0 - p->tokens) * 1000.0 / rate);
  return 0;
}

static void slot_connect(pool_slot *s) {
  apns_pool *p = s->pool;
  uint64_t wait;
  int rotating = s->rotating; /* spent by this call, whatever it does */
  s->rotating = 0;
  if (s->conn || p->finishing || p->state == POOL_STOPPED || p->state == POOL_CANCELING) return;
  if (!rotating && !pool_take_connect_token(p, &wait)) {
    uv_timer_start(&s->reconnect, on_reconnect_timer, wait, 0);
    return;
  }
  pool_conn *pc = apns__calloc(1, sizeof *pc);
  if (pc == NULL) {
    pool_conn_failed(p, APNS_ENOMEM, NULL);
    pool_event(p, APNS_POOL_EVENT_CONN_DOWN, s, APNS_ENOMEM, 0, apns_strerror(APNS_ENOMEM), 0);
    slot_schedule_reconnect(s);
    return;
  }
  apns_conn_options o = APNS_CONN_OPTIONS_INIT;
  apns_tls_options tls = APNS_TLS_OPTIONS_INIT;
  apns_proxy_options proxy = APNS_PROXY_OPTIONS_INIT;
  o.host = p->host;
  o.port = p->opts.port;
  o.authority = p->authority;
  tls.verify_name = p->verify_name;
  o.tls = &tls;
  o.connect_timeout_ms = p->opts.connect_timeout_ms;
  o.ping_idle_ms = p->opts.ping_idle_ms;
  o.ping_timeout_ms = p->opts.ping_timeout_ms;
  o.on_connect = on_conn_connect;
  o.on_lost = on_conn_lost;
  o.data = pc;
  if (p->proxy_cfg) {
    proxy.type = p->proxy_cfg->type;
    proxy.host = p->proxy_cfg->host;
    proxy.port = p->proxy_cfg->port;
    proxy.user = p->proxy_cfg->user;
    proxy.password = p->proxy_cfg->password;
    o.proxy = &proxy;
  }
  int rv = apns__conn_open_shared(p->loop, &s->conn, &o, p->tls_cfg);
  if (rv < 0) {
    apns__free(pc);
    s->conn = NULL;
    pool_conn_failed(p, rv, NULL);
    pool_event(p, APNS_POOL_EVENT_CONN_DOWN, s, rv, 0, apns_strerror(rv), 0);
    slot_schedule_reconnect(s);
    return;
  }
  if (p->unref) apns_conn_unref(s->conn);
  pc->conn = s->conn;
  pc->slot = s;
  apns__list_push_head(&p->conns, &pc->node);
  apns__conn_set_capacity_cb(s->conn, on_conn_capacity);
}

/* Age of the slot's token in monotonic milliseconds. */
static uint64_t slot_token_age(apns_pool *p, const pool_slot *s) {
  uint64_t now = pool_mono(p);
  return now > s->token_born ? now - s->token_born : 0;
}

/* Gives the slot's connection a provider token when it needs one. Returns 0 or an error (the token could not be
 * made: the request then fails with it rather than go out unauthorized).
 *
 * Apple throttles a connection whose token changes less than 20 minutes after the last (429
 * TooManyProviderTokenUpdates), so a connection's token changes only when it is refresh_s old, or when the server
 * said it expired and it is at least 20 minutes old. A new connection takes the slot's token only if that token
 * will not be due for refresh within its first 20 minutes; otherwise it gets a fresh one (any token is fine as a
 * connection's first). */
static int slot_authorize(apns_pool *p, pool_slot *s) {
  if (p->token_cb == NULL) return 0;
  uint64_t age = slot_token_age(p, s), refresh = (uint64_t)p->token_refresh_s * 1000,
           min_age = (uint64_t)APNS__TOKEN_MIN_AGE_S * 1000;
  int need = s->token == NULL || age >= refresh || (s->token_stale && age >= min_age) ||
             (s->token_conn != s->conn && age + min_age > refresh);
  if (need) {
    char *value = NULL;
    int rv = p->token_cb(p->token_ctx, pool_clock(p), &value);
    if (rv < 0) return rv;
    if (s->token) {
      apns__zero(s->token, strlen(s->token));
      apns__free(s->token);
    }
    int fresh = s->token != NULL;
    s->token = value;
    s->token_born = pool_mono(p);
    s->token_gen++;
    s->token_stale = 0;
    s->token_conn = NULL;
    if (fresh) pool_event(p, APNS_POOL_EVENT_TOKEN, s, 0, 0, NULL, 0);
  }
  if (s->token_conn != s->conn) {
    int rv = apns_conn_set_authorization(s->conn, s->token);
    if (rv < 0) return rv;
    s->token_conn = s->conn;
  }
  return 0;
}

/* ---- dispatch -------------------------------------------------------------------------------------------------- */

static void item_attempt_done(apns__req *req, int err, const apns_response *res);

/* A connection with a free stream, round robin. A retry avoids the connection of its failed try when another can
 * take it (a connection in trouble tends to stay so); avoid is -1 for a first try. */
static pool_slot *pool_writable_slot(apns_pool *p, int avoid) {
  pool_slot *fallback = NULL;
  for (unsigned i = 0; i < p->size; i++) {
    unsigned k = (p->rr + i) % p->size;
    pool_slot *s = &p->slots[k];
    if (s->conn == NULL || !apns_conn_writable(s->conn)) continue;
    if ((int)k == avoid) {
      fallback = s;
      continue;
    }
    p->rr = (k + 1) % p->size;
    return s;
  }
  if (fallback) p->rr = (fallback->index + 1) % p->size;
  return fallback;
}

static void pool_dispatch(apns_pool *p, int from_post) {
  if (p->dispatching) {
    p->redispatch = 1;
    return;
  }
  p->dispatching = 1;
  do {
    p->redispatch = 0;
    uint64_t now = uv_now(p->loop);
    pool_item *it;
    while ((it = q_first(p)) != NULL && (p->state == POOL_OPEN || p->state == POOL_DRAINING)) {
      if (it->not_before > now) break;
      pool_slot *s = pool_writable_slot(p, it->attempts > 0 ? (int)it->slot : -1);
      if (s == NULL) break;
      int rv = slot_authorize(p, s);
      if (rv < 0) {
        /* No token could be made: the request ends with that error, but never inside apns_pool_post. */
        if (from_post) {
          it->not_before = now + 1;
          break;
        }
        q_remove(p, it);
        item_finish(it, rv, NULL, NULL);
        continue;
      }
      q_remove(p, it);
      it->attempts++;
      it->slot = (uint16_t)(s - p->slots);
      it->token_gen = s->token_gen;
      item_req(it)->link.done = item_attempt_done;
      rv = apns__conn_submit(s->conn, item_req(it));
      if (rv < 0) {
        /* Writable a moment ago: only memory can fail here. Put it back and wait for a completion. */
        it->attempts--;
        q_push_head(p, it);
        break;
      }
      p->in_flight++;
      p->stats.sent++;
      pool_conn *pc = apns_conn_data(s->conn);
      if (++pc->submitted >= p->stats.request_limit && p->stats.request_limit) slot_cap(s, pc);
    }
  } while (p->redispatch);
  p->dispatching = 0;
  pool_arm(p);
  if (!from_post && p->low_armed && p->queued <= p->opts.low_water && p->opts.on_low_water) {
    p->low_armed = 0;
    p->opts.on_low_water(p);
  }
}

/* ---- one try ended --------------------------------------------------------------------------------------------- */

static uint64_t retry_delay(apns_pool *p, unsigned attempts) {
  /* 1 ms, then x sqrt(10) per try, as aapns; capped. */
  double d = pow(sqrt(10.0), (double)(attempts > 0 ? attempts - 1 : 0));
  uint64_t ms = d > (double)p->opts.retry_max_delay_ms ? p->opts.retry_max_delay_ms : (uint64_t)d;
  return pool_jitter(p, ms ? ms : 1);
}

static void item_attempt_done(apns__req *req, int err, const apns_response *res) {
  pool_item *it = apns__req_extra(req);
  apns_pool *p = it->pool;
  pool_slot *s = &p->slots[it->slot];
  int retry = 0, backoff = 1;
  p->in_flight--;

  if (err == 0) {
    if (res->status >= 200 && res->status < 300) {
      s->backoff_ms = 0; /* this connection works: forget its reconnect back-off */
      p->invalid_tokens = 0;
    } else if (res->reason == APNS_REASON_ExpiredProviderToken && p->token_cb && !(it->flags & ITEM_TOKEN_RETRIED)) {
      /* Only an answer to the current token makes a new one: the answers to every other request sent under it
       * (hundreds may be in flight) are retried under its successor. A token younger than 20 minutes cannot be
       * replaced without a 429 (the wall clock that gave its iat was wrong): the request then ends with its 403. */
      int current = it->token_gen == s->token_gen;
      if (current && slot_token_age(p, s) >= (uint64_t)APNS__TOKEN_MIN_AGE_S * 1000) s->token_stale = 1;
      if (!current || s->token_stale) {
        it->flags |= ITEM_TOKEN_RETRIED;
        retry = 1;
        backoff = 0;
      }
    } else if (res->status == 500 || res->status == 503 || res->reason == APNS_REASON_Shutdown ||
               res->reason == APNS_REASON_ServiceUnavailable || res->reason == APNS_REASON_InternalServerError) {
      retry = 1;
    } else if (res->reason == APNS_REASON_BadCertificate || res->reason == APNS_REASON_BadCertificateEnvironment) {
      char text[200];
      snprintf(text, sizeof text, "the server answered %d %s: nothing can succeed with this certificate", res->status,
               res->reason_text ? res->reason_text : "");
      item_finish(it, 0, res, NULL);
      pool_stop(p, APNS_ESTOPPED, text);
      return;
    } else if (res->reason == APNS_REASON_InvalidProviderToken && ++p->invalid_tokens >= APNS__POOL_PERMANENT_TRIES) {
      char text[200];
      snprintf(text, sizeof text,
               "the server answered %u requests in a row 403 InvalidProviderToken: the token key, key id or team id "
               "is wrong",
               p->invalid_tokens);
      item_finish(it, 0, res, NULL);
      pool_stop(p, APNS_ESTOPPED, text);
      return;
    }
  } else if (err == APNS_ECLOSED) {
    if (res->delivery == APNS_DELIVERY_NOT_PROCESSED) {
      /* Refused or above GOAWAY's last stream: the server is not in trouble, it is moving us along, and new
       * connections are rate-limited anyway. Such tries go straight to the next free stream; back-off starts only
       * if it keeps happening (a server refusing every stream). */
      retry = 1;
      backoff = it->attempts > APNS__POOL_FREE_REFUSALS;
    } else {
      item_set_delivery(it, APNS_DELIVERY_UNKNOWN);
      retry = !p->opts.never_resend_unknown;
    }
  } else if (err != APNS_ECANCELED && res->delivery == APNS_DELIVERY_UNKNOWN) {
    item_set_delivery(it, APNS_DELIVERY_UNKNOWN);
  }

  if (p->state == POOL_STOPPED && (retry || err != 0)) {
    item_finish(it, APNS_ESTOPPED, res, p->stop_text); /* an answer that came after the stop still stands */
  } else if (retry && (p->state == POOL_OPEN || p->state == POOL_DRAINING)) {
    uint64_t now = uv_now(p->loop), delay = backoff ? retry_delay(p, it->attempts) : 0;
    if (apns__add_sat(now, delay) < req->link.deadline) {
      it->not_before = now + delay;
      q_push_head(p, it);
      p->stats.retried++;
      pool_event(p, APNS_POOL_EVENT_RETRY, s, err, err == 0 ? res->status : 0,
                 err == 0 ? res->reason_text : apns_strerror(err), it->attempts);
    } else {
      item_finish(it, err, res, NULL); /* no time left for another try: the last outcome stands */
    }
  } else {
    item_finish(it, err, res, NULL);
  }
  pool_dispatch(p, 0);
  pool_maybe_finish(p);
}

/* ---- timers ---------------------------------------------------------------------------------------------------- */

static void on_pool_timer(uv_timer_t *t) {
  apns_pool *p = t->data;
  uint64_t now = uv_now(p->loop);
  const char *text = NULL;
  int cause = d_first(p) && item_deadline(d_first(p)) <= now ? pool_unwritten_cause(p, &text) : APNS_ETIMEDOUT;
  p->timer_due = 0;
  while (d_first(p) && item_deadline(d_first(p)) <= now) {
    pool_item *it = d_first(p);
    q_remove(p, it);
    apns_response r;
    memset(&r, 0, sizeof r);
    /* Never on the wire: it carries why it could not be written rather than a bare timeout. */
    int unwritten = item_delivery(it) != APNS_DELIVERY_UNKNOWN;
    r.delivery = unwritten ? APNS_DELIVERY_NOT_PROCESSED : APNS_DELIVERY_UNKNOWN;
    item_finish(it, unwritten ? cause : APNS_ETIMEDOUT, &r, unwritten ? text : NULL);
  }
  pool_dispatch(p, 0);
  pool_maybe_finish(p);
}

/* Arms the timer for the earliest queued deadline, or the head's back-off if it is earlier. */
static void pool_arm(apns_pool *p) {
  uint64_t due = 0;
  if (p->finishing) return;
  pool_item *first = d_first(p), *head = q_first(p);
  if (first) due = item_deadline(first);
  if (head && head->not_before > uv_now(p->loop) && (due == 0 || head->not_before < due)) due = head->not_before;
  if (due == p->timer_due) return;
  p->timer_due = due;
  if (due == 0) {
    uv_timer_stop(&p->timer);
    return;
  }
  uint64_t now = uv_now(p->loop);
  uv_timer_start(&p->timer, on_pool_timer, due > now ? due - now : 0, 0);
}

/* ---- open, post ------------------------------------------------------------------------------------------------ */

int apns_pool_open(uv_loop_t *loop, apns_pool **out, const apns_pool_options *caller, char *errbuf, size_t errlen) {
  int rv = APNS_ENOMEM;
  apns_pool *p = NULL;
  apns_pool_options copt, *opts = &copt;
  apns_tls_options tls = APNS_TLS_OPTIONS_INIT;
  if (out == NULL) return APNS_EINVAL;
  *out = NULL;
  if (caller && (rv = APNS__ABI_READ(apns_pool_options, host, &copt, caller, errbuf, errlen)) < 0) return rv;
  if (caller && copt.tls && (rv = APNS__ABI_READ(apns_tls_options, ca_file, &tls, copt.tls, errbuf, errlen)) < 0)
    return rv;
  rv = APNS_ENOMEM;
  if (loop == NULL || caller == NULL || opts->host == NULL || opts->host[0] == '\0') {
    apns__errbuf(errbuf, errlen, "a host name is required");
    return APNS_EINVAL;
  }
  if (opts->connections > 1000) {
    apns__errbuf(errbuf, errlen, "pool connections %u is more than 1000", opts->connections);
    return APNS_EINVAL;
  }
  p = apns__calloc(1, sizeof *p);
  if (p == NULL) goto fail;
  p->loop = loop;
  p->opts = *opts;
  p->opts.tls = NULL; /* the caller's: the config below holds what it needs */
  p->size = opts->connections ? opts->connections : APNS__POOL_DEFAULT_SIZE;
  if (!p->opts.port) p->opts.port = 443;
  if (!p->opts.retry_max_delay_ms) p->opts.retry_max_delay_ms = APNS__POOL_RETRY_MAX_MS;
  if (!p->opts.reconnect_min_delay_ms) p->opts.reconnect_min_delay_ms = APNS__POOL_RECONNECT_MIN_MS;
  if (!p->opts.reconnect_max_delay_ms) p->opts.reconnect_max_delay_ms = APNS__POOL_RECONNECT_MAX_MS;
  if (!p->opts.max_connects_per_sec) p->opts.max_connects_per_sec = APNS__POOL_CONNECTS_PER_SEC;
  if (p->opts.max_queued && !p->opts.low_water) p->opts.low_water = p->opts.max_queued / 2;
  p->host = apns__strdup(opts->host);
  p->authority = opts->authority ? apns__strdup(opts->authority) : NULL;
  p->verify_name = tls.verify_name ? apns__strdup(tls.verify_name) : NULL;
  p->slots = apns__calloc(p->size, sizeof *p->slots);
  if (p->host == NULL || p->slots == NULL || (opts->authority && p->authority == NULL) ||
      (tls.verify_name && p->verify_name == NULL))
    goto fail;
  rv = apns__tls_config_from_options(&tls, &p->tls_cfg, errbuf, errlen);
  if (rv < 0) goto fail;
  p->opts.proxy = NULL; /* the caller's: proxy_cfg holds copies */
  rv = apns__proxy_cfg_new(&p->proxy_cfg, opts->proxy, errbuf, errlen);
  if (rv < 0) goto fail;

  p->rng = uv_hrtime() | 1;
  apns__heap_init(&p->deadlines, apns__req_deadline_less);
  apns__list_init(&p->dl_fifo);
  apns__list_init(&p->queue);
  apns__list_init(&p->conns);
  p->tokens = (double)p->size;
  p->tokens_at = uv_now(loop);
  uv_timer_init(loop, &p->timer);
  uv_timer_init(loop, &p->drain_timer);
  p->timer.data = p->drain_timer.data = p;
  p->handles_open = 2;
  for (unsigned i = 0; i < p->size; i++) {
    pool_slot *s = &p->slots[i];
    s->pool = p;
    s->index = i;
    uv_timer_init(loop, &s->reconnect);
    s->reconnect.data = s;
    p->handles_open++;
  }
  for (unsigned i = 0; i < p->size; i++) slot_connect(&p->slots[i]);
  *out = p;
  return 0;

fail:
  if (p) {
    apns__tls_config_unref(p->tls_cfg);
    apns__free(p->host);
    apns__free(p->authority);
    apns__free(p->verify_name);
    apns__free(p->slots);
    apns__free(p);
  }
  if (rv == APNS_ENOMEM) apns__errbuf(errbuf, errlen, "out of memory");
  return rv;
}

void apns__pool_set_token_source(apns_pool *p, apns__pool_token_cb token, apns__pool_clock_cb clock, void *ctx,
                                 int64_t refresh_s) {
  p->token_cb = token;
  p->clock_cb = clock;
  p->token_ctx = ctx;
  if (refresh_s < APNS__TOKEN_MIN_AGE_S) refresh_s = APNS__TOKEN_REFRESH_S;
  p->token_refresh_s = refresh_s;
}

void apns__pool_set_mono_clock(apns_pool *p, apns__pool_mono_cb now_ms, void *ctx) {
  p->mono_cb = now_ms;
  p->mono_ctx = ctx;
}

int apns_pool_post(apns_pool *p, const apns_request *desc, apns_response_cb cb, void *data) {
  apns__req *req;
  if (p == NULL || desc == NULL || cb == NULL) return APNS_EINVAL;
  if (p->state == POOL_STOPPED) return APNS_ESTOPPED;
  if (p->closing) return APNS_ECLOSED;
  if (p->opts.max_queued && p->queued >= p->opts.max_queued) {
    p->low_armed = 1;
    return APNS_EQUEUEFULL;
  }
  int rv = apns__req_new(&req, desc, sizeof(pool_item));
  if (rv < 0) return rv;
  pool_item *it = apns__req_extra(req); /* zeroed by apns__req_new */
  it->pool = p;
  it->cb = cb;
  it->data = data;
  req->link.deadline = apns__add_sat(uv_now(p->loop), apns__req_timeout(desc)); /* UINT64_MAX: no deadline */
  item_set_delivery(it, APNS_DELIVERY_NOT_PROCESSED);
  q_push_tail(p, it);
  p->stats.posted++;
  if (p->opts.max_queued && p->queued >= p->opts.max_queued) p->low_armed = 1;
  /* Straight onto a free stream when there is one: the write still waits for the end of this loop turn. */
  pool_dispatch(p, 1);
  return 0;
}

/* ---- stop and close -------------------------------------------------------------------------------------------- */

static void pool_close_conns(apns_pool *p) {
  for (unsigned i = 0; i < p->size; i++) {
    uv_timer_stop(&p->slots[i].reconnect);
    slot_drop_conn(&p->slots[i]);
  }
  /* The retired ones; closing unlinks nothing until later. */
  for (apns__list *n = apns__list_head(&p->conns); n != NULL; n = apns__list_next(&p->conns, n)) {
    pool_conn *pc = APNS__CONTAINER_OF(n, pool_conn, node);
    if (apns_conn_get_state(pc->conn) != APNS_CONN_CLOSING) apns_conn_close(pc->conn, on_conn_closed);
  }
}

/* Nothing more can succeed: err is the connection's permanent error (the queued requests, never written, end with
 * it), or APNS_ESTOPPED after a fatal answer. */
static void pool_stop(apns_pool *p, int err, const char *text) {
  if (p->state == POOL_STOPPED || p->state == POOL_CANCELING) return;
  p->state = POOL_STOPPED;
  p->stop_err = err;
  snprintf(p->stop_text, sizeof p->stop_text, "%s", text);
  pool_event(p, APNS_POOL_EVENT_STOPPED, NULL, err, err == APNS_ESTOPPED ? 403 : 0, p->stop_text, 0);
  pool_flush_queue(p, err, p->stop_text);
  pool_close_conns(p); /* their open requests end now, as ESTOPPED (see item_attempt_done) */
  if (p->opts.on_stopped) p->opts.on_stopped(p);
  pool_maybe_finish(p); /* when closing, the end may have come */
}

static void pool_handle_closed(apns_pool *p) {
  if (--p->handles_open > 0) return;
  apns_pool_cb cb = p->on_close;
  for (unsigned i = 0; i < p->size; i++) {
    if (p->slots[i].token) {
      apns__zero(p->slots[i].token, strlen(p->slots[i].token));
      apns__free(p->slots[i].token);
    }
  }
  if (cb) cb(p);
  apns__tls_config_unref(p->tls_cfg);
  apns__proxy_cfg_free(p->proxy_cfg);
  apns__free(p->host);
  apns__free(p->authority);
  apns__free(p->verify_name);
  apns__free(p->slots);
  apns__free(p);
}

static void on_pool_timer_closed(uv_handle_t *h) {
  pool_handle_closed(h->data);
}

static void on_slot_timer_closed(uv_handle_t *h) {
  pool_handle_closed(((pool_slot *)h->data)->pool);
}

/* The end comes when close was asked, nothing is queued or in flight, and every connection has closed. */
static void pool_maybe_finish(apns_pool *p) {
  if (!p->closing || p->finishing) return;
  if (p->queued > 0 || p->in_flight > 0) return;
  pool_close_conns(p);
  if (!apns__list_empty(&p->conns)) return;
  p->finishing = 1;
  uv_close((uv_handle_t *)&p->timer, on_pool_timer_closed);
  uv_close((uv_handle_t *)&p->drain_timer, on_pool_timer_closed);
  for (unsigned i = 0; i < p->size; i++) uv_close((uv_handle_t *)&p->slots[i].reconnect, on_slot_timer_closed);
}

static void pool_cancel_all(apns_pool *p) {
  if (p->state != POOL_STOPPED) p->state = POOL_CANCELING;
  pool_flush_queue(p, APNS_ECANCELED, NULL);
  pool_close_conns(p); /* in-flight requests end with APNS_ECANCELED from their connections */
  pool_maybe_finish(p);
}

static void on_drain_timeout(uv_timer_t *t) {
  pool_cancel_all(t->data);
}

static void pool_set_ref(apns_pool *p, int ref) {
  p->unref = !ref;
  ref ? uv_ref((uv_handle_t *)&p->timer) : uv_unref((uv_handle_t *)&p->timer);
  ref ? uv_ref((uv_handle_t *)&p->drain_timer) : uv_unref((uv_handle_t *)&p->drain_timer);
  for (unsigned i = 0; i < p->size; i++)
    ref ? uv_ref((uv_handle_t *)&p->slots[i].reconnect) : uv_unref((uv_handle_t *)&p->slots[i].reconnect);
  /* Every connection still open, a draining one that left its slot included. */
  for (apns__list *n = apns__list_head(&p->conns); n != NULL; n = apns__list_next(&p->conns, n)) {
    pool_conn *pc = APNS__CONTAINER_OF(n, pool_conn, node);
    ref ? apns_conn_ref(pc->conn) : apns_conn_unref(pc->conn);
  }
}

void apns_pool_ref(apns_pool *p) {
  if (p != NULL && !p->finishing) pool_set_ref(p, 1);
}

void apns_pool_unref(apns_pool *p) {
  /* A close in progress keeps the loop alive until its callback: its end is work the caller waits for. */
  if (p != NULL && !p->closing) pool_set_ref(p, 0);
}

int apns_pool_close(apns_pool *p, uint64_t drain_timeout_ms, apns_pool_cb cb) {
  if (p == NULL) return APNS_EINVAL;
  if (p->closing) return APNS_EBUSY;
  if (p->unref) pool_set_ref(p, 1);
  p->closing = 1;
  p->on_close = cb;
  if (p->state == POOL_OPEN) p->state = POOL_DRAINING;
  /* Even with no drain time, requests end on a later loop turn, never inside this call. */
  if (p->queued > 0 || p->in_flight > 0)
    uv_timer_start(&p->drain_timer, on_drain_timeout, drain_timeout_ms, 0);
  else
    pool_maybe_finish(p);
  return 0;
}

/* ---- accessors ------------------------------------------------------------------------------------------------- */

void apns_pool_get_stats(const apns_pool *p, apns_pool_stats *out, size_t size) {
  apns_pool_stats st;
  if (out == NULL) return;
  memset(&st, 0, sizeof st);
  if (p) {
    st = p->stats;
    st.queued = p->queued;
    st.in_flight = p->in_flight;
    st.connections_up = 0;
    for (unsigned i = 0; i < p->size; i++) {
      apns_conn *c = p->slots[i].conn;
      if (c && (apns_conn_get_state(c) == APNS_CONN_READY)) st.connections_up++;
    }
  }
  apns__abi_write(out, size, &st, sizeof st);
}

void apns__pool_set_owner(apns_pool *p, void *owner) {
  p->owner = owner;
}

void *apns__pool_owner(const apns_pool *p) {
  return p->owner;
}

void *apns_pool_data(const apns_pool *p) {
  return p ? p->opts.data : NULL;
}

uv_loop_t *apns_pool_loop(const apns_pool *p) {
  return p ? p->loop : NULL;
}

uint64_t apns__pool_queue_steps(const apns_pool *p) {
  return p->deadlines.steps;
}

size_t apns__pool_cached_bytes(const apns_pool *p) {
  size_t total = 0;
  if (p == NULL) return 0;
  for (apns__list *n = apns__list_head(&p->conns); n != NULL; n = apns__list_next(&p->conns, n))
    total += apns__conn_cached_bytes(APNS__CONTAINER_OF(n, pool_conn, node)->conn);
  return total;
}

int apns_pool_stop_cause(const apns_pool *p, const char **text) {
  if (text) *text = p && p->state == POOL_STOPPED ? p->stop_text : NULL;
  if (p == NULL) return APNS_EINVAL;
  return p->state == POOL_STOPPED ? p->stop_err : 0;
}
