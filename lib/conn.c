/* The libuv layer of one connection: DNS, TCP, timers, and the shuttling of bytes between the socket and the
 * sans-I/O TLS (tls.c) and HTTP/2 (h2.c) layers.
 *
 * Output is coalesced: anything that makes frames pending (a post, a response that needs a WINDOW_UPDATE, a reset)
 * only marks the connection dirty and starts a uv_prepare handle; right before the loop next blocks, one flush
 * takes every pending frame from nghttp2, encrypts them in one go and hands them to the socket in one write. A burst
 * of a thousand posts thus costs one write, not a thousand. The one exception is the end of a read: what the
 * responses just read made pending (the next requests, most often) goes out at once, so that client and server
 * overlap instead of taking turns over a whole loop turn's worth of reads (libuv reads a busy socket up to 32 times).
 *
 * No write of ours raises SIGPIPE, so an embedder need not ignore it (a peer that resets the connection while we
 * write must cost an error, not the process). libuv writes streams with writev(), which raises it on Linux, and
 * SO_NOSIGPIPE exists only on BSD and macOS; blocking the signal around each write would not cover the writes libuv
 * makes later from its own poll callback when the socket was full. So the bytes never go through uv_write at all:
 * sockout.c sends them with send(MSG_NOSIGNAL) and, when the socket is full, keeps the rest and waits for
 * writability with a uv_poll_t of its own on a dup() of the descriptor. libuv then holds no bytes of ours and
 * never writes the socket; it still reads it, connects it and closes it.
 *
 * One state machine (conn_step) takes every event that can change the state: ready, any failure, GOAWAY, stream
 * ids running low, the end of any stream, close. Because a stream's end is an event, a draining connection ends
 * when its last stream does, however that stream ended.
 *
 * Connecting: the connect timeout bounds DNS, TCP and TLS together, and each of the host's addresses gets an equal
 * share of the time left (the last one all of it), so an address that drops SYNs cannot eat the whole timeout.
 * Happy Eyeballs (RFC 8305) would race two at once; APNs hosts answer on the first address almost always, and one
 * socket at a time keeps the teardown simple.
 *
 * Deadlines are kept without a timer per request, in two intrusive structures served by one uv_timer. Requests
 * share one timeout almost always, so each new deadline is the latest yet: those go at the tail of a FIFO, which is
 * then sorted by construction, in O(1) (a min-heap would spend some 1 500 instructions a notification on sifting,
 * 4 % of the client's whole cost). A deadline earlier than the FIFO's last (a request's own timeout_ms, a pool
 * retry's time left) goes to a min-heap instead (heap.h), in O(log n): nothing ever walks a list to find a place.
 * The earliest deadline is the earlier of the FIFO's head and the heap's minimum. The timer is re-armed only when it
 * fires, or when a new request's deadline is earlier than the one armed.
 *
 * Teardown is asynchronous. apns_conn_close() first takes out the requests whose HEADERS were never serialized (they
 * end NOT_PROCESSED: the server cannot have them), then closes the handles; when the last close callback has run,
 * open requests end with APNS_ECANCELED, the user's close callback runs, and the memory goes. Nothing is freed inside
 * a callback of ours, so any callback may close the connection. */
#include "conn.h"

#include "abi.h"
#include "alloc.h"
#include "errbuf.h"
#include "h2.h"
#include "proxy.h"
#include "sat.h"
#include "sockout.h"
#include "tls.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define APNS__READ_BUF (16 * 1024)
#define APNS__PLAIN_CHUNK (16 * 1024)
#define APNS__DEFAULT_CONNECT_TIMEOUT_MS 10000
#define APNS__DEFAULT_PING_IDLE_MS 15000
#define APNS__DEFAULT_PING_TIMEOUT_MS 5000

struct apns_conn {
  uv_loop_t *loop;
  apns_conn_state state;
  int handshaking; /* TCP up, TLS not yet done */

  /* Handles: all four are initialized at open and closed at close. */
  uv_tcp_t tcp;
  uv_timer_t timer;      /* connect timeout, then request deadlines */
  uv_timer_t ping_timer; /* health check */
  uv_prepare_t flusher;  /* the flush of posts made outside a read, once per loop turn */
  int handles_open;      /* close callbacks still to come (handles and a pending getaddrinfo) */
  uv_getaddrinfo_t gai;
  int gai_pending;
  uv_connect_t connect_req;
  struct sockaddr_storage *addrs; /* what DNS gave (IPv4 and IPv6 only), ports set */
  size_t naddrs, next_addr;
  int last_err;              /* of the last address tried */
  uint64_t connect_deadline; /* for DNS, TCP and TLS together */
  apns__sockout out;         /* every write to the socket (never uv_write: see the file comment) */
  int out_ready;             /* out is initialized (TCP connected) */
  int unref;                 /* apns_conn_unref: no handle of ours keeps the loop alive, now or later */

  apns__tls_config *tls_cfg;
  apns__tls *tls;
  apns__h2 *h2;
  char *host, *authority, *verify_name;
  uint16_t port;
  char *auth_value; /* "bearer ..." or NULL */
  nghttp2_nv auth_nv;

  apns__list dl_fifo;  /* in-flight requests posted in deadline order, through link.q (see the file comment) */
  apns__heap dl_early; /* the other in-flight ones, by deadline, through link.dl */
  /* Requests dropped unsent at close, to end (APNS_ECANCELED, NOT_PROCESSED) once the handles are closed: no
   * callback runs inside apns_conn_close. Linked through link.q, oldest first. */
  apns__list unsent;
  int collecting_unsent;
  uint64_t timer_due; /* when the timer is armed for; 0 when not */

  uint64_t connect_timeout, ping_idle, ping_timeout;
  uint64_t last_read;
  int ping_outstanding;
  uint64_t ping_sent;

  int flush_scheduled;
  int capacity_pending; /* on_capacity to call from the next flush (a drain begun inside a submit) */
  int in_h2;            /* inside apns__h2_feed: nghttp2 must not be re-entered for output */
  int tcp_resetting;    /* the TCP handle is being closed to try the next address */
  int early_err;        /* a failure found inside apns_conn_open, reported on a later turn */
  int lost_reported;
  apns_conn_connect_cb on_connect;
  apns_conn_lost_cb on_lost;
  apns_conn_close_cb on_close;
  apns__conn_capacity_cb on_capacity;
  void *data;

  apns_conn_stats stats;
  uint64_t ok_responses; /* 2xx answers: how well the server served this connection (apns__conn_ok_responses) */
  int goaway_graceful;   /* GOAWAY(NO_ERROR) received, or stream ids spent */
  int server_goaway;     /* the server sent GOAWAY; goaway_last_sid is its last-stream-id (the latest one's) */
  int32_t goaway_last_sid;
  int32_t first_sid; /* the stream id of the first request: ours are consecutive from it */
  /* apns__conn_retire: the owner retired it; once drained, it waits for the ack of a last PING (retire_acks: the
   * acks still due before ours, ours included) so that a GOAWAY the server sent after its last answer is read. */
  int retired;
  int retire_acks;
  char goaway_reason[128]; /* the JSON "reason" of the server's GOAWAY, or "" */
  char errmsg[256];
  /* Through a proxy: host and port above are the proxy's, these the server's (see the proxy stage below). */
  apns__proxy_cfg *proxy_cfg;
  apns__proxy *proxy; /* the handshake, while it runs */
  int tunnel_up;
  char *target_host;
  uint16_t target_port;
  uint8_t readbuf[APNS__READ_BUF];
};

static void conn_handle_closed(apns_conn *c);

static void conn_set_error(apns_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void conn_set_error(apns_conn *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->errmsg, sizeof c->errmsg, fmt, ap);
  va_end(ap);
}

/* ---- TLS options ----------------------------------------------------------------------------------------------- */

int apns__tls_config_from_options(const apns_tls_options *o, apns__tls_config **out, char *errbuf, size_t errlen) {
  apns__tls_options t;
  memset(&t, 0, sizeof t);
  t.server = 0;
  t.ca_file = o->ca_file;
  t.ca_pem = o->ca_pem;
  t.cert_file = o->cert_file;
  t.cert_pem = o->cert_pem;
  t.key_file = o->key_file;
  t.key_pem = o->key_pem;
  t.key_passphrase = o->key_passphrase;
  t.insecure_skip_verify = o->insecure_skip_verify;
  return apns__tls_config_new(out, &t, errbuf, errlen);
}

/* ---- deadlines ------------------------------------------------------------------------------------------------- */

static void dl_remove(apns_conn *c, apns__req *r) {
  if (r->link.early)
    apns__heap_remove(&c->dl_early, &r->link.dl);
  else
    apns__list_remove(&r->link.q);
}

size_t apns__conn_cached_bytes(const apns_conn *c) {
  apns__blocks_stats st;
  if (c == NULL || c->h2 == NULL) return 0;
  apns__h2_blocks_stats(c->h2, &st);
  return st.cached;
}

uint64_t apns__conn_test_deadline_steps(const apns_conn *c) {
  return c->dl_early.steps;
}

/* The in-flight request whose deadline comes first, or NULL. Of equal ones, the first posted. */
static apns__req *dl_first(apns_conn *c) {
  apns__req *f = apns__req_of_q(apns__list_head(&c->dl_fifo)), *e = apns__req_of_dl(apns__heap_min(&c->dl_early));
  return e && (f == NULL || apns__req_deadline_less(&e->link.dl, &f->link.dl)) ? e : f;
}

static void on_timer(uv_timer_t *t);

static void timer_arm(apns_conn *c, uint64_t due) {
  uint64_t now = uv_now(c->loop);
  c->timer_due = due;
  if (due == UINT64_MAX) {
    uv_timer_stop(&c->timer); /* never: nothing to wait for */
    return;
  }
  uv_timer_start(&c->timer, on_timer, due > now ? due - now : 0, 0);
}

static void dl_insert(apns_conn *c, apns__req *r) {
  apns__req *last = apns__req_of_q(apns__list_tail(&c->dl_fifo));
  r->link.early = last != NULL && r->link.deadline < last->link.deadline;
  if (r->link.early)
    apns__heap_insert(&c->dl_early, &r->link.dl);
  else
    apns__list_push_tail(&c->dl_fifo, &r->link.q);
  if (c->timer_due == 0 || r->link.deadline < c->timer_due) timer_arm(c, r->link.deadline);
}

/* ---- output ---------------------------------------------------------------------------------------------------- */

static void conn_lost(apns_conn *c, int err, const char *reason);
static void on_ping_timer(uv_timer_t *t);

static void on_out(apns__sockout *o, int status) {
  apns_conn *c = o->data;
  if (status < 0 && c->state != APNS_CONN_CLOSING) {
    conn_set_error(c, "write failed: %s", uv_strerror(status));
    conn_lost(c, status, NULL);
  }
}

/* Moves everything pending through TLS to the socket in one write. */
static void conn_flush(apns_conn *c) {
  uint8_t *buf = NULL;
  size_t len = 0;
  if (c->state == APNS_CONN_CLOSING || c->state == APNS_CONN_LOST || c->tls == NULL) return;
  if (c->h2 != NULL) {
    /* Streams serialized now start behind everything queued so far: what close or a loss needs to tell the ones
     * the socket took from those it never did. */
    apns__h2_set_out_mark(c->h2, apns__sockout_queued(&c->out));
    int rv = apns__h2_take_output(c->h2, &buf, &len);
    if (rv < 0) {
      conn_set_error(c, "HTTP/2 output failed: %s", apns_strerror(rv));
      conn_lost(c, rv, NULL);
      return;
    }
    if (len > 0) {
      rv = apns__tls_write(c->tls, buf, len);
      apns__free(buf);
      if (rv < 0) {
        conn_set_error(c, "TLS write failed: %s", apns__tls_error(c->tls));
        conn_lost(c, rv, NULL);
        return;
      }
    }
  }
  apns__tls_take_output(c->tls, &buf, &len);
  if (len == 0) return;
  c->stats.writes++;
  c->stats.bytes_out += len;
  int rv = apns__sockout_write(&c->out, buf, len);
  if (rv < 0) {
    if (rv == APNS_ENOMEM)
      conn_set_error(c, "out of memory writing");
    else
      conn_set_error(c, "write failed: %s", uv_strerror(rv));
    conn_lost(c, rv, NULL);
  }
}

static void on_prepare(uv_prepare_t *p) {
  apns_conn *c = p->data;
  uv_prepare_stop(p);
  c->flush_scheduled = 0;
  if (c->capacity_pending) {
    c->capacity_pending = 0;
    if (c->on_capacity) c->on_capacity(c);
    if (c->state == APNS_CONN_CLOSING) return;
  }
  conn_flush(c);
}

static void conn_dirty(apns_conn *c) {
  if (c->flush_scheduled || c->state == APNS_CONN_CLOSING) return;
  c->flush_scheduled = 1;
  uv_prepare_start(&c->flusher, on_prepare);
}

/* ---- failure --------------------------------------------------------------------------------------------------- */

static void conn_stop_io(apns_conn *c) {
  uv_read_stop((uv_stream_t *)&c->tcp);
  /* Bytes still waiting for the socket would only keep the loop alive: the peer is gone or given up on. */
  if (c->out_ready) apns__sockout_stop(&c->out);
  uv_timer_stop(&c->timer);
  uv_timer_stop(&c->ping_timer);
  c->timer_due = 0;
}

/* Takes out, without calling back, every open request the server cannot have: HEADERS never serialized, or
 * serialized into bytes the socket never took (they are dropped with the connection). They wait on c->unsent,
 * oldest first, for conn_end_unsent. */
static void conn_collect_unsent(apns_conn *c, int err) {
  if (c->h2 == NULL) return;
  c->collecting_unsent = 1;
  apns__h2_cancel_unsent(c->h2, err, APNS_DELIVERY_NOT_PROCESSED, c->out_ready ? apns__sockout_sent(&c->out) : 0);
  c->collecting_unsent = 0;
}

static void conn_end_unsent(apns_conn *c, int err) {
  apns__req *r;
  /* Off the list before its callback: the owner may queue it again through the same node. */
  while ((r = apns__req_of_q(apns__list_pop_head(&c->unsent))) != NULL) {
    apns_response res;
    memset(&res, 0, sizeof res);
    res.delivery = APNS_DELIVERY_NOT_PROCESSED;
    res.attempts = 1;
    r->link.done(r, err, &res);
  }
}

/* The one state machine. Every event that can change the state comes here, and only here is c->state written
 * (after open):
 *
 *   CONNECTING --READY--> READY --GOAWAY, IDS_LOW--> DRAINING --STREAM_END, none left--> LOST
 *   CONNECTING --FAILED--> LOST (on_connect with the error)
 *   READY, DRAINING --FAILED--> LOST (open requests end APNS_ECLOSED, then on_lost once)
 *   any --CLOSE--> CLOSING (apns_conn_close does the rest)
 *
 * FAILED covers every fatal cause: DNS, TCP, TLS, a read or write error, EOF, a protocol error, an unanswered PING,
 * the connect timeout. STREAM_END comes after every stream's end, however it ended (response, reset, deadline,
 * GOAWAY above it), so a draining connection ends as soon as its last stream does, whatever woke us. LOST and
 * CLOSING take no event but CLOSE. Callbacks run last: each may close the connection. */
typedef enum { EV_READY, EV_FAILED, EV_GOAWAY, EV_RETIRE, EV_STREAM_END, EV_CLOSE } conn_event;

static int conn_retire_wait(apns_conn *c);

static void conn_step(apns_conn *c, conn_event ev, int err, const char *reason) {
  switch (c->state) {
  case APNS_CONN_CONNECTING:
    if (ev == EV_READY) {
      c->state = APNS_CONN_READY;
      if (c->on_connect) c->on_connect(c, 0);
    } else if (ev == EV_FAILED) {
      c->state = APNS_CONN_LOST;
      conn_stop_io(c);
      if (c->errmsg[0] == '\0') conn_set_error(c, "connect failed: %s", apns_strerror(err));
      if (c->on_connect) c->on_connect(c, err);
    } else if (ev == EV_CLOSE) {
      c->state = APNS_CONN_CLOSING;
    }
    return;
  case APNS_CONN_READY:
  case APNS_CONN_DRAINING:
    if (ev == EV_CLOSE) {
      c->state = APNS_CONN_CLOSING;
      return;
    }
    if ((ev == EV_GOAWAY || ev == EV_RETIRE) && c->state == APNS_CONN_READY) {
      c->state = APNS_CONN_DRAINING;
      if (ev == EV_RETIRE) {
        /* Raised inside a submit: the owner hears of it from this turn's flush, never inside its own call. */
        c->capacity_pending = 1;
        conn_dirty(c);
        return;
      }
      if (c->on_capacity) c->on_capacity(c);
      if (c->state != APNS_CONN_DRAINING) return;
      ev = EV_STREAM_END; /* nothing may be left open: then it ends now */
    } else if (ev == EV_GOAWAY) {
      ev = EV_STREAM_END; /* a retired connection waiting for its last PING's ack has its GOAWAY now */
    }
    if (ev == EV_STREAM_END) {
      if (c->state != APNS_CONN_DRAINING || apns__h2_in_flight(c->h2) > 0 || conn_retire_wait(c)) return;
      ev = EV_FAILED;
      err = APNS_ECLOSED;
      reason = c->goaway_reason[0] ? c->goaway_reason : NULL;
    }
    if (ev != EV_FAILED) return;
    c->state = APNS_CONN_LOST;
    /* What never reached the socket is safe to send elsewhere: it ends NOT_PROCESSED, after the rest. */
    conn_collect_unsent(c, APNS_ECLOSED);
    conn_stop_io(c);
    if (c->h2) apns__h2_fail_all(c->h2, APNS_ECLOSED, APNS_DELIVERY_UNKNOWN);
    conn_end_unsent(c, APNS_ECLOSED);
    if (c->state != APNS_CONN_LOST) return; /* closed from a request callback */
    if (!c->lost_reported) {
      c->lost_reported = 1;
      if (c->on_lost) c->on_lost(c, err, reason);
    }
    return;
  case APNS_CONN_LOST:
    if (ev == EV_CLOSE) c->state = APNS_CONN_CLOSING;
    return;
  case APNS_CONN_CLOSING:
    return;
  }
}

static void conn_lost(apns_conn *c, int err, const char *reason) {
  conn_step(c, EV_FAILED, err, reason);
}

/* ---- HTTP/2 callbacks ------------------------------------------------------------------------------------------ */

static void h2_on_response(void *ctx, apns__req *req, const apns_response *res) {
  apns_conn *c = ctx;
  dl_remove(c, req);
  c->stats.requests_completed++;
  if (res->status >= 200 && res->status < 300) c->ok_responses++;
  req->link.done(req, 0, res);
  conn_step(c, EV_STREAM_END, 0, NULL);
}

static void h2_on_stream_error(void *ctx, apns__req *req, int err, apns_delivery delivery) {
  apns_conn *c = ctx;
  apns_response res;
  dl_remove(c, req);
  if (c->collecting_unsent) {
    /* h2 hands them newest first: prepend, so the list runs oldest first. */
    apns__list_push_head(&c->unsent, &req->link.q);
    return;
  }
  memset(&res, 0, sizeof res);
  res.delivery = delivery;
  res.attempts = 1;
  req->link.done(req, err, &res);
  conn_step(c, EV_STREAM_END, 0, NULL);
}

static void h2_on_goaway(void *ctx, uint32_t error_code, int32_t last_stream_id, const char *reason) {
  apns_conn *c = ctx;
  conn_set_error(c, "server sent GOAWAY (error %u, last stream %d%s%s)", error_code, (int)last_stream_id,
                 reason ? ", reason " : "", reason ? reason : "");
  snprintf(c->goaway_reason, sizeof c->goaway_reason, "%s", reason ? reason : "");
  c->goaway_graceful = error_code == 0; /* NGHTTP2_NO_ERROR */
  c->server_goaway = 1;
  c->goaway_last_sid = last_stream_id;
  conn_step(c, EV_GOAWAY, APNS_ECLOSED, NULL);
}

static void h2_on_max_streams(void *ctx, uint32_t max_streams) {
  apns_conn *c = ctx;
  uint32_t before = c->stats.max_streams;
  c->stats.max_streams = max_streams;
  if (max_streams > before && c->on_capacity) c->on_capacity(c);
}

static void h2_on_ping_ack(void *ctx) {
  apns_conn *c = ctx;
  if (c->retire_acks > 0 && --c->retire_acks == 0) {
    c->retire_acks = -1;                  /* waited once: no second PING */
    conn_step(c, EV_STREAM_END, 0, NULL); /* everything the server sent before the ack has been read */
    if (c->state != APNS_CONN_DRAINING && c->state != APNS_CONN_READY) return;
  }
  if (!c->ping_outstanding) return;
  c->ping_outstanding = 0;
  uv_timer_start(&c->ping_timer, on_ping_timer, c->ping_idle, 0);
}

static const apns__h2_callbacks h2_callbacks = {
    h2_on_response, h2_on_stream_error, h2_on_goaway, h2_on_max_streams, h2_on_ping_ack,
};

/* ---- input ----------------------------------------------------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  apns_conn *c = h->data;
  (void)suggested;
  *buf = uv_buf_init((char *)c->readbuf, sizeof c->readbuf);
}

static void conn_ready(apns_conn *c);

/* Drains decrypted bytes into nghttp2. Returns 0 or the error that ended the connection. */
static int conn_pump_plaintext(apns_conn *c) {
  uint8_t plain[APNS__PLAIN_CHUNK];
  for (;;) {
    ssize_t n = apns__tls_read(c->tls, plain, sizeof plain);
    if (n == 0) return 0;
    if (n < 0) {
      if (n == APNS_ECLOSED)
        conn_set_error(c, "server closed the TLS session");
      else
        conn_set_error(c, "TLS read failed: %s", apns__tls_error(c->tls));
      return (int)n;
    }
    c->in_h2 = 1;
    int rv = apns__h2_feed(c->h2, plain, (size_t)n);
    c->in_h2 = 0;
    if (rv < 0) {
      conn_set_error(c, "HTTP/2 protocol error from the server");
      return rv;
    }
    if (c->state == APNS_CONN_CLOSING || c->state == APNS_CONN_LOST) return 0;
  }
}

static int conn_proxy_read(apns_conn *c, ssize_t nread);

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  apns_conn *c = s->data;
  (void)buf;
  if (nread == 0) return;
  if (c->state == APNS_CONN_CLOSING || c->state == APNS_CONN_LOST) return;
  if (c->proxy && (nread = conn_proxy_read(c, nread)) == 0) return;
  if (nread < 0) {
    conn_set_error(c, "%s", nread == UV_EOF ? "server closed the connection" : uv_strerror((int)nread));
    conn_lost(c, nread == UV_EOF ? APNS_ECLOSED : (int)nread, NULL);
    return;
  }
  c->stats.bytes_in += (uint64_t)nread;
  c->last_read = uv_now(c->loop);
  if (apns__tls_feed(c->tls, c->readbuf, (size_t)nread) < 0) {
    conn_set_error(c, "out of memory reading");
    conn_lost(c, APNS_ENOMEM, NULL);
    return;
  }
  if (c->handshaking) {
    int rv = apns__tls_handshake(c->tls);
    conn_dirty(c); /* handshake records to send, in either case */
    if (rv == 1) return;
    if (rv < 0) {
      conn_set_error(c, "%s", apns__tls_error(c->tls));
      conn_flush(c); /* let the alert go out */
      conn_lost(c, rv, NULL);
      return;
    }
    conn_ready(c);
    if (c->state != APNS_CONN_READY) return;
  }
  int rv = conn_pump_plaintext(c);
  if (rv < 0) {
    conn_lost(c, rv == APNS_ECLOSED ? APNS_ECLOSED : rv, NULL);
    return;
  }
  if (c->state == APNS_CONN_READY || c->state == APNS_CONN_DRAINING) {
    /* Flush now rather than at the end of the loop turn: libuv reads a busy socket up to 32 times in one turn, and
     * holding the new requests until then makes client and server take turns in large batches instead of
     * working side by side. But a read that filled the buffer is followed at once by another (libuv reads on
     * while reads come back full, in this same callback run): its flush would carry only part of what the bytes
     * already here will post, so it is left to the next read, or to the end of the turn if that one finds nothing. */
    if ((size_t)nread == sizeof c->readbuf)
      conn_dirty(c);
    else
      conn_flush(c);
  }
}

/* ---- health check ---------------------------------------------------------------------------------------------- */

static void on_ping_timer(uv_timer_t *t) {
  apns_conn *c = t->data;
  uint64_t now = uv_now(c->loop);
  if (c->state != APNS_CONN_READY && c->state != APNS_CONN_DRAINING) return;
  if (c->ping_outstanding) {
    /* The timer fired ping_timeout after the PING: anything read since (the ACK or not) proves the peer alive. */
    if (c->last_read < c->ping_sent) {
      conn_set_error(c, "no PING ACK within %llu ms", (unsigned long long)c->ping_timeout);
      conn_lost(c, APNS_ETIMEDOUT, NULL);
      return;
    }
    c->ping_outstanding = 0;
  }
  uint64_t idle = now - c->last_read;
  if (idle < c->ping_idle) {
    uv_timer_start(&c->ping_timer, on_ping_timer, c->ping_idle - idle, 0);
    return;
  }
  if (apns__h2_ping(c->h2) == 0) {
    c->ping_outstanding = 1;
    c->ping_sent = now;
    conn_dirty(c);
    uv_timer_start(&c->ping_timer, on_ping_timer, c->ping_timeout, 0);
  } else {
    uv_timer_start(&c->ping_timer, on_ping_timer, c->ping_idle, 0);
  }
}

/* ---- request deadlines and connect timeout --------------------------------------------------------------------- */

static void on_tcp_reset(uv_handle_t *h);

static void on_timer(uv_timer_t *t) {
  apns_conn *c = t->data;
  uint64_t now = uv_now(c->loop);
  c->timer_due = 0;
  if (c->state == APNS_CONN_CONNECTING) {
    if (now < c->connect_deadline) {
      if (c->tcp_resetting) return; /* the next attempt arms its own share */
      if (c->next_addr < c->naddrs && !c->out_ready) {
        /* This address had its share of the time: give up on it and try the next one. */
        c->last_err = UV_ETIMEDOUT;
        c->tcp_resetting = 1;
        uv_close((uv_handle_t *)&c->tcp, on_tcp_reset);
      } else {
        timer_arm(c, c->connect_deadline);
      }
      return;
    }
    conn_set_error(c, "connect timed out after %llu ms%s", (unsigned long long)c->connect_timeout,
                   c->proxy ? " in the proxy handshake" : "");
    conn_lost(c, APNS_ETIMEDOUT, NULL);
    return;
  }
  apns__req *r;
  while ((r = dl_first(c)) != NULL && r->link.deadline <= now) {
    /* Ends the stream at once: the callback runs and takes r out of the deadlines. */
    if (apns__h2_cancel(c->h2, r->link.stream_id, APNS_ETIMEDOUT, APNS_DELIVERY_UNKNOWN) < 0 && dl_first(c) == r) {
      /* nghttp2 no longer knew the stream: end the request here, so that it still ends exactly once. */
      h2_on_stream_error(c, r, APNS_ETIMEDOUT, APNS_DELIVERY_UNKNOWN);
    }
    if (c->state == APNS_CONN_CLOSING || c->state == APNS_CONN_LOST) return;
  }
  conn_dirty(c);
  if ((r = dl_first(c)) != NULL) timer_arm(c, r->link.deadline);
}

/* ---- connecting ------------------------------------------------------------------------------------------------ */

static int32_t test_first_stream_id;

void apns__conn_test_first_stream_id(int32_t id) {
  test_first_stream_id = id;
}

static void conn_ready(apns_conn *c) {
  int rv = apns__h2_new(&c->h2, c->authority, &h2_callbacks, c);
  c->handshaking = 0;
  if (rv == 0 && test_first_stream_id > 0) rv = apns__h2_test_set_next_stream_id(c->h2, test_first_stream_id);
  if (rv < 0) {
    conn_set_error(c, "cannot start HTTP/2: %s", apns_strerror(rv));
    conn_lost(c, rv, NULL);
    return;
  }
  c->stats.max_streams = apns__h2_max_streams(c->h2);
  uv_timer_stop(&c->timer);
  c->timer_due = 0;
  c->last_read = uv_now(c->loop);
  if (c->ping_idle != UINT64_MAX) uv_timer_start(&c->ping_timer, on_ping_timer, c->ping_idle, 0);
  conn_dirty(c);
  conn_step(c, EV_READY, 0, NULL);
}

static void conn_try_next_addr(apns_conn *c, int last_err);
static void conn_proxy_start(apns_conn *c);

static void on_connect(uv_connect_t *req, int status) {
  apns_conn *c = req->data;
  /* While the handle is being replaced, this is the end of an attempt given up on (UV_ECANCELED). */
  if (c->state != APNS_CONN_CONNECTING || c->tcp_resetting) return;
  if (status < 0) {
    conn_try_next_addr(c, status);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  int rv;
  if (!c->out_ready) {                 /* not again when the proxy's tunnel is up */
    timer_arm(c, c->connect_deadline); /* the proxy stage and the TLS handshake have what is left */
    rv = apns__sockout_init(&c->out, (uv_stream_t *)&c->tcp, on_out, c);
    c->out.unref = c->unref;
    if (rv < 0) {
      conn_set_error(c, "cannot write: %s", uv_strerror(rv));
      conn_lost(c, rv, NULL);
      return;
    }
    c->out_ready = 1;
  }
  if (c->proxy_cfg && !c->tunnel_up) {
    conn_proxy_start(c);
    return;
  }
  rv = apns__tls_new(&c->tls, c->tls_cfg, c->verify_name);
  if (rv < 0) {
    conn_set_error(c, "cannot start TLS: %s", apns_strerror(rv));
    conn_lost(c, rv, NULL);
    return;
  }
  c->handshaking = 1;
  rv = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  if (rv < 0) {
    conn_set_error(c, "cannot read: %s", uv_strerror(rv));
    conn_lost(c, rv, NULL);
    return;
  }
  rv = apns__tls_handshake(c->tls);
  if (rv < 0) {
    conn_set_error(c, "%s", apns__tls_error(c->tls));
    conn_lost(c, rv, NULL);
    return;
  }
  conn_dirty(c);
}

static void on_tcp_reset(uv_handle_t *h) {
  apns_conn *c = h->data;
  c->tcp_resetting = 0;
  if (c->state == APNS_CONN_CLOSING) {
    conn_handle_closed(c);
    return;
  }
  /* A fresh handle for the next address (a socket that failed to connect cannot be reused portably); in any other
   * state it only has to exist so that apns_conn_close can close it. */
  uv_tcp_init(c->loop, &c->tcp);
  c->tcp.data = c;
  if (c->unref) uv_unref((uv_handle_t *)&c->tcp);
  if (c->state == APNS_CONN_CONNECTING) conn_try_next_addr(c, c->last_err);
}

static void conn_try_next_addr(apns_conn *c, int last_err) {
  c->last_err = last_err;
  while (c->next_addr < c->naddrs) {
    if (uv_fileno((uv_handle_t *)&c->tcp, &(uv_os_fd_t){0}) == 0) {
      /* The handle holds the socket of a failed attempt: replace it, then come back here. */
      c->tcp_resetting = 1;
      uv_close((uv_handle_t *)&c->tcp, on_tcp_reset);
      return;
    }
    const struct sockaddr *sa = (const struct sockaddr *)&c->addrs[c->next_addr++];
    c->connect_req.data = c;
    int rv = uv_tcp_connect(&c->connect_req, &c->tcp, sa, on_connect);
    if (rv == 0) {
      /* Each address gets an equal share of the time left (the last one all of it), as curl does: one that drops
       * SYNs cannot eat the whole connect timeout. */
      uint64_t now = uv_now(c->loop), left = c->connect_deadline > now ? c->connect_deadline - now : 0;
      size_t addrs_left = c->naddrs - c->next_addr + 1;
      if (c->connect_deadline != UINT64_MAX) timer_arm(c, now + left / addrs_left);
      return;
    }
    c->last_err = rv;
  }
  conn_set_error(c, "cannot connect to %s:%u: %s", c->host, c->port, uv_strerror(c->last_err));
  conn_lost(c, c->last_err, NULL);
}

static struct sockaddr_storage test_addrs[8];
static size_t test_naddrs;

void apns__conn_test_addresses(const struct sockaddr_storage *addrs, size_t n) {
  test_naddrs = n < 8 ? n : 8;
  if (test_naddrs) memcpy(test_addrs, addrs, test_naddrs * sizeof *addrs);
}

/* Keeps the usable addresses, with our port, and lets the list go. Returns 0 or APNS_ENOMEM. */
static int conn_take_addrs(apns_conn *c, struct addrinfo *res) {
  size_t n = 0;
  for (struct addrinfo *ai = res; ai; ai = ai->ai_next)
    if (ai->ai_family == AF_INET || ai->ai_family == AF_INET6) n++;
  if (test_naddrs) n = test_naddrs;
  c->addrs = apns__calloc(n ? n : 1, sizeof *c->addrs);
  if (c->addrs == NULL) {
    uv_freeaddrinfo(res);
    return APNS_ENOMEM;
  }
  if (test_naddrs) {
    memcpy(c->addrs, test_addrs, n * sizeof *c->addrs);
  } else {
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
      struct sockaddr_storage *ss = &c->addrs[c->naddrs];
      if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
      memcpy(ss, ai->ai_addr, ai->ai_addrlen);
      if (ai->ai_family == AF_INET)
        ((struct sockaddr_in *)ss)->sin_port = htons(c->port);
      else
        ((struct sockaddr_in6 *)ss)->sin6_port = htons(c->port);
      c->naddrs++;
    }
  }
  c->naddrs = n;
  uv_freeaddrinfo(res);
  return 0;
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  apns_conn *c = req->data;
  c->gai_pending = 0;
  if (c->state == APNS_CONN_CLOSING) {
    if (res) uv_freeaddrinfo(res);
    conn_handle_closed(c);
    return;
  }
  if (c->state != APNS_CONN_CONNECTING) {
    if (res) uv_freeaddrinfo(res);
    return;
  }
  if (status < 0) {
    conn_set_error(c, "cannot resolve %s: %s", c->host, uv_strerror(status));
    conn_lost(c, status, NULL);
    return;
  }
  if (conn_take_addrs(c, res) < 0) {
    conn_set_error(c, "out of memory resolving %s", c->host);
    conn_lost(c, APNS_ENOMEM, NULL);
    return;
  }
  conn_try_next_addr(c, UV_EAI_NONAME);
}

/* A failure found inside apns_conn_open is reported on a later loop turn, never inside the call. */
static void on_early_failure(uv_timer_t *t) {
  apns_conn *c = t->data;
  conn_lost(c, c->early_err, NULL);
}

static char *default_authority(const char *host, uint16_t port) {
  char buf[300];
  if (port == 443)
    snprintf(buf, sizeof buf, "%s", host);
  else
    snprintf(buf, sizeof buf, "%s:%u", host, port);
  return apns__strdup(buf);
}

/* The handles, and the resolution of the host that starts the connection. From here on nothing fails synchronously:
 * the handles exist, teardown goes through apns_conn_close, and a failure to start is reported on a later turn. */
static void conn_start(apns_conn *c) {
  uv_tcp_init(c->loop, &c->tcp);
  uv_timer_init(c->loop, &c->timer);
  uv_timer_init(c->loop, &c->ping_timer);
  uv_prepare_init(c->loop, &c->flusher);
  c->tcp.data = c->timer.data = c->ping_timer.data = c->flusher.data = c;
  c->handles_open = 4;

  struct addrinfo hints;
  char port[8];
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  snprintf(port, sizeof port, "%u", c->port);
  c->gai.data = c;
  int rv = uv_getaddrinfo(c->loop, &c->gai, on_resolved, c->host, port, &hints);
  if (rv < 0) {
    conn_set_error(c, "cannot resolve %s: %s", c->host, uv_strerror(rv));
    c->early_err = rv;
    uv_timer_start(&c->timer, on_early_failure, 0, 0);
  } else {
    c->gai_pending = 1;
    c->connect_deadline = apns__add_sat(uv_now(c->loop), c->connect_timeout);
    timer_arm(c, c->connect_deadline);
  }
}

static int conn_proxy_open(apns_conn *c, const apns_proxy_options *o, char *errbuf, size_t errlen);

static int conn_open(uv_loop_t *loop, apns_conn **out, const apns_conn_options *opts, apns__tls_config *cfg,
                     char *errbuf, size_t errlen) {
  int rv = APNS_ENOMEM;
  apns_conn *c;
  apns_conn_options copt, *o = &copt;
  apns_tls_options tls = APNS_TLS_OPTIONS_INIT;
  *out = NULL;
  if (opts && (rv = APNS__ABI_READ(apns_conn_options, host, &copt, opts, errbuf, errlen)) < 0) return rv;
  if (opts && copt.tls && (rv = APNS__ABI_READ(apns_tls_options, ca_file, &tls, copt.tls, errbuf, errlen)) < 0)
    return rv;
  rv = APNS_ENOMEM;
  if (loop == NULL || opts == NULL || o->host == NULL || o->host[0] == '\0' || strlen(o->host) > 253) {
    apns__errbuf(errbuf, errlen, "a host name is required (at most 253 bytes)");
    return APNS_EINVAL;
  }
  if ((o->authority && !apns__header_value_valid(o->authority, strlen(o->authority))) ||
      (tls.verify_name && !apns__header_value_valid(tls.verify_name, strlen(tls.verify_name)))) {
    apns__errbuf(errbuf, errlen, "authority or verify_name has CR, LF or NUL");
    return APNS_EBADHEADER;
  }
  c = apns__calloc(1, sizeof *c);
  if (c == NULL) goto fail;
  apns__list_init(&c->dl_fifo);
  apns__heap_init(&c->dl_early, apns__req_deadline_less);
  apns__list_init(&c->unsent);
  c->loop = loop;
  c->port = o->port ? o->port : 443;
  c->host = apns__strdup(o->host);
  c->verify_name = apns__strdup(tls.verify_name ? tls.verify_name : o->host);
  c->authority = o->authority ? apns__strdup(o->authority) : default_authority(o->host, c->port);
  if (c->host == NULL || c->verify_name == NULL || c->authority == NULL) goto fail;
  rv = conn_proxy_open(c, o->proxy, errbuf, errlen);
  if (rv < 0) goto fail;
  rv = APNS_ENOMEM;
  if (cfg) {
    c->tls_cfg = apns__tls_config_ref(cfg);
  } else {
    rv = apns__tls_config_from_options(&tls, &c->tls_cfg, errbuf, errlen);
    if (rv < 0) goto fail;
  }
  c->connect_timeout = o->connect_timeout_ms ? o->connect_timeout_ms : APNS__DEFAULT_CONNECT_TIMEOUT_MS;
  c->ping_idle = o->ping_idle_ms ? o->ping_idle_ms : APNS__DEFAULT_PING_IDLE_MS;
  c->ping_timeout = o->ping_timeout_ms ? o->ping_timeout_ms : APNS__DEFAULT_PING_TIMEOUT_MS;
  c->on_connect = o->on_connect;
  c->on_lost = o->on_lost;
  c->data = o->data;
  c->state = APNS_CONN_CONNECTING;
  c->stats.max_streams = 1;
  conn_start(c);
  *out = c;
  return 0;

fail:
  if (c) {
    apns__proxy_cfg_free(c->proxy_cfg);
    apns__free(c->target_host);
    apns__tls_config_unref(c->tls_cfg);
    apns__free(c->host);
    apns__free(c->verify_name);
    apns__free(c->authority);
    apns__free(c);
  }
  if (rv == APNS_ENOMEM) apns__errbuf(errbuf, errlen, "out of memory");
  return rv;
}

int apns_conn_open(uv_loop_t *loop, apns_conn **out, const apns_conn_options *opts, char *errbuf, size_t errlen) {
  if (out == NULL) return APNS_EINVAL;
  return conn_open(loop, out, opts, NULL, errbuf, errlen);
}

int apns__conn_open_shared(uv_loop_t *loop, apns_conn **out, const apns_conn_options *opts,
                           struct apns__tls_config *tls_cfg) {
  if (out == NULL || tls_cfg == NULL) return APNS_EINVAL;
  return conn_open(loop, out, opts, tls_cfg, NULL, 0);
}

/* ---- requests -------------------------------------------------------------------------------------------------- */

int apns__conn_submit(apns_conn *c, apns__req *req) {
  if (c->state == APNS_CONN_CONNECTING) return APNS_EBLOCKED;
  if (c->state != APNS_CONN_READY) return APNS_ECLOSED;
  int32_t sid = apns__h2_submit(c->h2, req, c->auth_value ? &c->auth_nv : NULL, c->auth_value ? 1 : 0);
  if (sid < 0) return sid;
  req->link.stream_id = sid;
  dl_insert(c, req);
  if (c->stats.requests_sent++ == 0) c->first_sid = sid;
  conn_dirty(c);
  if (apns__h2_ids_low(c->h2)) {
    /* Drain as after a GOAWAY while the last ids are still ours; the owner hears of it on this loop turn, from
     * the flush, not inside this call. */
    conn_set_error(c, "stream ids nearly spent (next id %u): draining", (unsigned)(sid + 2));
    c->goaway_graceful = 1; /* retired by us, as a server's graceful GOAWAY would */
    conn_step(c, EV_RETIRE, 0, NULL);
  }
  return 0;
}

typedef struct {
  apns_response_cb cb;
  void *data;
} apns__conn_user;

static void conn_user_done(apns__req *req, int err, const apns_response *res) {
  apns__conn_user *u = apns__req_extra(req);
  u->cb(err, res, u->data);
  apns__req_free(req);
}

int apns_conn_post(apns_conn *c, const apns_request *desc, apns_response_cb cb, void *data) {
  apns__req *req;
  if (c == NULL || desc == NULL || cb == NULL) return APNS_EINVAL;
  if (c->state == APNS_CONN_CONNECTING) return APNS_EBLOCKED;
  if (c->state != APNS_CONN_READY) return APNS_ECLOSED;
  if (apns__h2_in_flight(c->h2) >= apns__h2_max_streams(c->h2)) return APNS_EBLOCKED;
  int rv = apns__req_new(&req, desc, sizeof(apns__conn_user));
  if (rv < 0) return rv;
  apns__conn_user *u = apns__req_extra(req);
  u->cb = cb;
  u->data = data;
  req->link.done = conn_user_done;
  req->link.deadline = apns__add_sat(uv_now(c->loop), apns__req_timeout(desc));
  rv = apns__conn_submit(c, req);
  if (rv < 0) apns__req_free(req);
  return rv;
}

int apns_conn_set_authorization(apns_conn *c, const char *value) {
  char *copy = NULL;
  if (c == NULL) return APNS_EINVAL;
  if (value) {
    if (!apns__header_value_valid(value, strlen(value))) return APNS_EBADHEADER;
    copy = apns__strdup(value);
    if (copy == NULL) return APNS_ENOMEM;
  }
  if (c->auth_value) {
    apns__zero(c->auth_value, strlen(c->auth_value));
    apns__free(c->auth_value);
  }
  c->auth_value = copy;
  if (copy) {
    c->auth_nv.name = (uint8_t *)"authorization";
    c->auth_nv.namelen = 13;
    c->auth_nv.value = (uint8_t *)copy;
    c->auth_nv.valuelen = strlen(copy);
    /* Never indexed: a bearer token must not sit in a shared HPACK table. */
    c->auth_nv.flags = NGHTTP2_NV_FLAG_NO_INDEX;
  }
  return 0;
}

/* ---- close ----------------------------------------------------------------------------------------------------- */

static void conn_free(apns_conn *c) {
  apns__free(c->addrs);
  apns__proxy_free(c->proxy);
  apns__proxy_cfg_free(c->proxy_cfg);
  apns__free(c->target_host);
  apns__h2_free(c->h2);
  apns__tls_free(c->tls);
  apns__tls_config_unref(c->tls_cfg);
  if (c->auth_value) {
    apns__zero(c->auth_value, strlen(c->auth_value));
    apns__free(c->auth_value);
  }
  apns__free(c->host);
  apns__free(c->verify_name);
  apns__free(c->authority);
  apns__free(c);
}

static void conn_handle_closed(apns_conn *c) {
  if (--c->handles_open > 0) return;
  /* Every handle is closed: no callback of libuv's can reach us any more. End what is still open (what was written
   * may have reached the server), then what close kept from being written, then tell. */
  if (c->h2) apns__h2_fail_all(c->h2, APNS_ECANCELED, APNS_DELIVERY_UNKNOWN);
  conn_end_unsent(c, APNS_ECANCELED);
  if (c->on_close) c->on_close(c);
  conn_free(c);
}

static void on_handle_closed(uv_handle_t *h) {
  conn_handle_closed(h->data);
}

static void on_out_closed(uv_handle_t *h) {
  conn_handle_closed(((apns__sockout *)h->data)->data);
}

/* uv_ref/uv_unref are flags on the handle that survive stop and start; handles made later (a fresh TCP handle for
 * the next address, the write watcher) look at c->unref when they are made. */
static void conn_set_ref(apns_conn *c, int ref) {
  uv_handle_t *h[4] = {(uv_handle_t *)&c->tcp, (uv_handle_t *)&c->timer, (uv_handle_t *)&c->ping_timer,
                       (uv_handle_t *)&c->flusher};
  c->unref = !ref;
  for (int i = 0; i < 4; i++) ref ? uv_ref(h[i]) : uv_unref(h[i]);
  if (c->out_ready) {
    c->out.unref = !ref;
    if (c->out.dupfd >= 0) ref ? uv_ref((uv_handle_t *)&c->out.poll) : uv_unref((uv_handle_t *)&c->out.poll);
  }
}

void apns_conn_ref(apns_conn *c) {
  if (c != NULL) conn_set_ref(c, 1);
}

void apns_conn_unref(apns_conn *c) {
  if (c != NULL) conn_set_ref(c, 0);
}

int apns_conn_close(apns_conn *c, apns_conn_close_cb cb) {
  if (c == NULL) return APNS_EINVAL;
  if (c->state == APNS_CONN_CLOSING) return APNS_EBUSY;
  conn_step(c, EV_CLOSE, 0, NULL);
  c->on_close = cb;
  /* What is not yet written never will be: take it out before the goodbye below serializes it, so that a request
   * the server may have is never reported as dropped, and one reported NOT_PROCESSED never reached it. */
  conn_collect_unsent(c, APNS_ECANCELED);
  /* Say goodbye when we can: GOAWAY and close_notify go out with the last write, best effort. Not behind bytes
   * the socket has not taken: those are dropped (requests in them were just reported NOT_PROCESSED). */
  if (c->h2 && c->tls && !c->in_h2 && apns__sockout_pending(&c->out) == 0) {
    uint8_t *buf = NULL;
    size_t len = 0;
    apns__h2_shutdown(c->h2);
    if (apns__h2_take_output(c->h2, &buf, &len) == 0 && len > 0) apns__tls_write(c->tls, buf, len);
    apns__free(buf);
    apns__tls_close_notify(c->tls);
    apns__tls_take_output(c->tls, &buf, &len);
    if (len > 0 && c->out_ready)
      (void)apns__sockout_write(&c->out, buf, len); /* what the socket does not take at once is dropped below */
    else
      apns__free(buf);
  }
  if (c->out_ready && apns__sockout_close(&c->out, on_out_closed)) c->handles_open++;
  if (c->gai_pending) {
    c->handles_open++;
    uv_cancel((uv_req_t *)&c->gai); /* on_resolved still runs, with UV_EAI_CANCELED */
  }
  /* While the TCP handle is being replaced, on_tcp_reset sees CLOSING and counts it as closed. */
  if (!c->tcp_resetting) uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
  uv_close((uv_handle_t *)&c->timer, on_handle_closed);
  uv_close((uv_handle_t *)&c->ping_timer, on_handle_closed);
  uv_close((uv_handle_t *)&c->flusher, on_handle_closed);
  return 0;
}

/* ---- the proxy stage ------------------------------------------------------------------------------------------
 *
 * Between TCP connected and TLS, still CONNECTING (so the connect timeout covers it): host and port are the
 * proxy's from open on (DNS, connect and their errors are about the proxy), the handshake of proxy.c runs over the
 * socket, and when the tunnel is up on_connect runs again to start TLS for the server's name, exactly as on a
 * direct connection. Bytes that came after the proxy's reply are handed to TLS as a read of their own. */

static int conn_proxy_open(apns_conn *c, const apns_proxy_options *o, char *errbuf, size_t errlen) {
  int rv = apns__proxy_cfg_new(&c->proxy_cfg, o, errbuf, errlen);
  if (rv < 0 || c->proxy_cfg == NULL) return rv;
  char *proxy_host = apns__strdup(c->proxy_cfg->host);
  if (proxy_host == NULL) return APNS_ENOMEM;
  c->target_host = c->host;
  c->target_port = c->port;
  c->host = proxy_host;
  c->port = c->proxy_cfg->port;
  return 0;
}

/* Sends what the handshake has to say, through the connection's own writer (its bytes may hold credentials:
 * zeroed when freed). Returns 0 or an error (the attempt has failed). */
static int conn_proxy_send(apns_conn *c) {
  uint8_t *buf;
  size_t len;
  apns__proxy_take_output(c->proxy, &buf, &len);
  if (len == 0) return 0;
  c->out.secret = 1;
  int rv = apns__sockout_write(&c->out, buf, len);
  if (rv < 0) {
    if (rv == APNS_ENOMEM)
      conn_set_error(c, "out of memory writing to the proxy %s:%u", c->host, c->port);
    else
      conn_set_error(c, "write to the proxy %s:%u failed: %s", c->host, c->port, uv_strerror(rv));
    conn_lost(c, rv, NULL);
  }
  return rv;
}

static void conn_proxy_start(apns_conn *c) {
  int rv = apns__proxy_new(&c->proxy, c->proxy_cfg, c->target_host, c->target_port);
  if (rv == 0) rv = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  if (rv < 0) {
    conn_set_error(c, "cannot start the proxy handshake with %s:%u: %s", c->host, c->port, apns_strerror(rv));
    conn_lost(c, rv, NULL);
    return;
  }
  conn_proxy_send(c);
}

/* A read while the handshake runs. Returns how many bytes of readbuf (moved to its start) belong to TLS, to be
 * read on as usual; 0 when the read is finished with. */
static int conn_proxy_read(apns_conn *c, ssize_t nread) {
  size_t used = 0;
  int rv;
  if (nread < 0)
    rv = nread == UV_EOF ? apns__proxy_eof(c->proxy) : (int)nread;
  else
    rv = apns__proxy_feed(c->proxy, c->readbuf, (size_t)nread, &used);
  if (rv < 0) {
    if (nread < 0 && nread != UV_EOF)
      conn_set_error(c, "reading from the proxy %s:%u failed: %s", c->host, c->port, uv_strerror((int)nread));
    else
      conn_set_error(c, "%s", apns__proxy_error(c->proxy));
    conn_lost(c, rv, NULL);
    return 0;
  }
  if (rv == 0) {
    conn_proxy_send(c);
    return 0;
  }
  apns__proxy_free(c->proxy);
  c->proxy = NULL;
  c->tunnel_up = 1;
  c->out.secret = 0; /* the proxy has answered: it had all our bytes, and they are gone */
  uv_read_stop((uv_stream_t *)&c->tcp);
  on_connect(&c->connect_req, 0); /* TLS now, as on a direct connection */
  if (c->state != APNS_CONN_CONNECTING || (size_t)nread == used) return 0;
  memmove(c->readbuf, c->readbuf + used, (size_t)nread - used);
  return (int)((size_t)nread - used);
}

/* ---- accessors ------------------------------------------------------------------------------------------------- */

void apns_conn_get_stats(const apns_conn *c, apns_conn_stats *out, size_t size) {
  apns_conn_stats st = c->stats;
  if (out == NULL) return;
  st.state = c->state;
  st.in_flight = c->h2 ? apns__h2_in_flight(c->h2) : 0;
  st.max_streams = c->h2 ? apns__h2_max_streams(c->h2) : c->stats.max_streams;
  apns__abi_write(out, size, &st, sizeof st);
}

apns_conn_state apns_conn_get_state(const apns_conn *c) {
  return c->state;
}

int apns_conn_writable(const apns_conn *c) {
  return c->state == APNS_CONN_READY && apns__h2_in_flight(c->h2) < apns__h2_max_streams(c->h2);
}

void *apns_conn_data(const apns_conn *c) {
  return c->data;
}

void apns_conn_set_data(apns_conn *c, void *data) {
  c->data = data;
}

uv_loop_t *apns_conn_loop(const apns_conn *c) {
  return c->loop;
}

const char *apns_conn_last_error(const apns_conn *c) {
  return c->errmsg;
}

int apns__conn_goaway_graceful(const apns_conn *c) {
  return c->goaway_graceful;
}

uint64_t apns__conn_ok_responses(const apns_conn *c) {
  return c->ok_responses;
}

int64_t apns__conn_goaway_accepted(const apns_conn *c) {
  if (!c->server_goaway || !c->goaway_graceful) return -1;
  if (c->stats.requests_sent == 0 || c->goaway_last_sid < c->first_sid) return 0;
  uint64_t n = (uint64_t)(c->goaway_last_sid - c->first_sid) / 2 + 1;
  return (int64_t)(n < c->stats.requests_sent ? n : c->stats.requests_sent);
}

void apns__conn_retire(apns_conn *c, const char *why) {
  if (c->state != APNS_CONN_READY) return;
  conn_set_error(c, "%s", why);
  c->retired = 1;
  conn_step(c, EV_RETIRE, 0, NULL);
}

/* A retired connection that has drained and has not had the server's GOAWAY waits for the ack of one last PING:
 * frames come in order, so a GOAWAY sent after the last answer (the mock does, nginx sends it before) is read by
 * then. Returns 1 while it waits. A PING that cannot be sent does not hold the end up; one never acked ends the
 * connection at the ping timeout. */
static int conn_retire_wait(apns_conn *c) {
  if (!c->retired || c->server_goaway) return 0;
  if (c->retire_acks > 0) return 1;
  if (c->retire_acks < 0 || apns__h2_ping(c->h2) != 0) return 0;
  c->retire_acks = c->ping_outstanding ? 2 : 1; /* a health check's PING may be acked before ours */
  c->ping_outstanding = 1;
  c->ping_sent = uv_now(c->loop);
  conn_dirty(c);
  uv_timer_start(&c->ping_timer, on_ping_timer, c->ping_timeout, 0);
  return 1;
}

void apns__conn_set_capacity_cb(apns_conn *c, apns__conn_capacity_cb cb) {
  c->on_capacity = cb;
}
