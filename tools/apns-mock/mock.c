/* apns-mock: the libuv side of the mock server (see mock.h): listener, connections, one timer per connection for
 * held responses, and write coalescing.
 *
 * Output is never written from a read callback: a connection with something to say goes on the server's dirty
 * list, and a check handle (which runs right after the poll phase) flushes every dirty connection once, so all
 * the requests read in one loop turn are answered by one uv_write. Work that becomes ready outside the poll phase
 * (a timer, a finished write, a call from the test) also starts an idle handle, so the loop does not block in poll
 * before the check phase gets to it. One write is in flight per connection; what comes meanwhile waits in nghttp2
 * and goes out in the next one. Writes go through sockout.c, never uv_write, so a client that resets the connection
 * while we write raises no SIGPIPE in the process that embeds the mock.
 *
 * Holds are timed from the clock at each read and flush (uv_update_time), not from the loop turn's start: a turn
 * that reads thousands of requests takes milliseconds, and with the turn's time every request read in it got the
 * same due, so its answers went out in one clump. Over a 50 ms hold that took a client at 1 connection from
 * 0.953-0.964 of the latency-bound limit (connections x streams / delay) to 0.933-0.936 (apns-bench --delay-ms 50
 * --mock, alternating the two builds); at 4 connections the runs' noise hides any change. */
#include "mock.h"

#include "alloc.h"
#include "jwt_verify.h"
#include "list.h"
#include "mock_channels.h"
#include "mock_server.h"
#include "sockout.h"
#include "tls.h"

#include <stdio.h>
#include <string.h>

/* Stop reading a client that does not read its responses once this much of a write is still unsent. */
#define MOCK_WRITE_HIGH_WATER (4u << 20)

typedef struct mock_conn mock_conn;
struct mock_conn {
  uv_tcp_t tcp;
  uv_timer_t timer;
  apns__sockout out; /* never uv_write: a client that resets mid-write must not raise SIGPIPE here */
  int out_ready;
  apns_mock *server;
  apns__mock_conn *mc;
  apns__list node;       /* on the server's conns: every open connection */
  apns__list dirty_node; /* on the server's dirty list, while it has something to say */
  uint64_t timer_due;
  int handles, writing, reading, closing, close_after_write;
};

struct apns_mock {
  uv_loop_t *loop;
  uv_tcp_t listener;
  uv_tcp_t manage_listener; /* split_management only */
  int split, manage_port;
  uv_check_t check;
  uv_idle_t idle;
  apns_mock_options opts; /* strings are our copies; TLS material is dropped once loaded */
  apns__tls_config *tls;
  apns__jwt_verifier *jwt; /* NULL: no token auth */
  apns__mock_channels *channels;
  apns_mock_stats stats;
  apns__list conns; /* mock_conn, by node */
  apns__list dirty; /* mock_conn, by dirty_node */
  uint64_t seed;
  int port;
  int handles;
  int stopping;
  /* A connection that came when memory ran out is accepted into this handle and closed (reject_connection). */
  uv_tcp_t reject;
  int reject_busy;
  uv_stream_t *reject_waiting[2]; /* listeners holding a connection while reject closes */
  apns_mock_stop_cb stop_cb;
  void *stop_data;
  uint8_t rbuf[65536]; /* every read is consumed before the next alloc_cb: one buffer serves all */
};

static void server_maybe_free(apns_mock *m);
static void on_idle(uv_idle_t *h);

void apns_mock_options_init(apns_mock_options *o) {
  memset(o, 0, sizeof *o);
  o->host = "127.0.0.1";
  o->max_streams = 1000;
  o->goaway_reason = "Shutdown";
}

/* ---- connections ---- */

static void conn_closed(uv_handle_t *h) {
  mock_conn *conn = h->data;
  apns_mock *m = conn->server;
  m->handles--;
  if (--conn->handles > 0) return;
  apns__mock_conn_free(conn->mc);
  apns__free(conn);
  server_maybe_free(m);
}

static void out_closed(uv_handle_t *h) {
  mock_conn *conn = ((apns__sockout *)h->data)->data;
  conn_closed((uv_handle_t *)&conn->tcp);
}

static void conn_close(mock_conn *conn) {
  if (conn->closing) return;
  conn->closing = 1;
  apns_mock *m = conn->server;
  apns__list_remove(&conn->node);
  apns__list_remove(&conn->dirty_node); /* a closing connection is never flushed */
  m->stats.connections_open--;
  if (conn->mc != NULL && apns__mock_conn_dropped(conn->mc)) m->stats.drops++;
  if (conn->out_ready && apns__sockout_close(&conn->out, out_closed)) {
    conn->handles++;
    m->handles++;
  }
  uv_close((uv_handle_t *)&conn->tcp, conn_closed);
  uv_close((uv_handle_t *)&conn->timer, conn_closed);
}

static void mark_dirty(mock_conn *conn) {
  if (apns__list_linked(&conn->dirty_node) || conn->closing) return;
  apns_mock *m = conn->server;
  apns__list_push_tail(&m->dirty, &conn->dirty_node);
  uv_idle_start(&m->idle, on_idle);
}

static void timer_fired(uv_timer_t *t) {
  mock_conn *conn = t->data;
  conn->timer_due = APNS__MOCK_NEVER;
  mark_dirty(conn);
}

static void arm_timer(mock_conn *conn) {
  uint64_t due = apns__mock_conn_next_due(conn->mc);
  if (due == conn->timer_due) return;
  conn->timer_due = due;
  if (due == APNS__MOCK_NEVER) {
    uv_timer_stop(&conn->timer);
    return;
  }
  uint64_t now = uv_now(conn->server->loop);
  uv_timer_start(&conn->timer, timer_fired, due > now ? due - now : 0, 0);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

/* The write in progress is done (or failed): read again if we had stopped, and send what came meanwhile. */
static void write_done(mock_conn *conn, int status) {
  conn->writing = 0;
  if (conn->closing) return;
  if (status < 0 || conn->close_after_write) {
    conn_close(conn);
    return;
  }
  if (!conn->reading && uv_read_start((uv_stream_t *)&conn->tcp, on_alloc, on_read) == 0) conn->reading = 1;
}

static void on_drained(apns__sockout *o, int status) {
  mock_conn *conn = o->data;
  write_done(conn, status);
  if (!conn->closing) mark_dirty(conn);
}

static void conn_flush(mock_conn *conn) {
  if (conn->closing || conn->writing) return;
  uint8_t *out;
  size_t len;
  uv_update_time(conn->server->loop);
  uint64_t now = uv_now(conn->server->loop);
  if (apns__mock_conn_flush(conn->mc, now, &out, &len) != 0 || apns__mock_conn_want_close(conn->mc))
    conn->close_after_write = 1;
  if (len > 0) {
    if (apns__sockout_write(&conn->out, out, len) != 0) {
      conn_close(conn);
      return;
    }
    if (apns__sockout_pending(&conn->out) == 0) {
      write_done(conn, 0); /* the socket took it all */
      if (conn->closing) return;
    } else {
      conn->writing = 1;
      if (conn->reading && apns__sockout_pending(&conn->out) > MOCK_WRITE_HIGH_WATER) {
        uv_read_stop((uv_stream_t *)&conn->tcp);
        conn->reading = 0;
      }
    }
  } else if (conn->close_after_write) {
    conn_close(conn);
    return;
  }
  arm_timer(conn);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  mock_conn *conn = h->data;
  *buf = uv_buf_init((char *)conn->server->rbuf, sizeof conn->server->rbuf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  mock_conn *conn = s->data;
  if (nread == 0 || conn->closing) return;
  if (nread < 0) {
    conn_close(conn);
    return;
  }
  uv_update_time(conn->server->loop);
  if (apns__mock_conn_feed(conn->mc, (const uint8_t *)buf->base, (size_t)nread, uv_now(conn->server->loop)) != 0) {
    /* Send what is pending (a TLS alert, a GOAWAY), then close. */
    conn->close_after_write = 1;
    uv_read_stop(s);
    conn->reading = 0;
  }
  mark_dirty(conn);
}

static void on_connection(uv_stream_t *listener, int status);

static void on_reject_closed(uv_handle_t *h) {
  apns_mock *m = h->data;
  m->reject_busy = 0;
  m->handles--;
  for (int i = 0; i < 2; i++) {
    uv_stream_t *l = m->reject_waiting[i];
    m->reject_waiting[i] = NULL;
    if (l && !m->stopping) on_connection(l, 0);
  }
  server_maybe_free(m);
}

/* Memory ran out for a new connection: it is accepted and closed at once (the client sees the connection end).
 * Left unaccepted, libuv would hold it and stop watching the listener: the mock would serve no one again, even
 * with memory back. One handle does it, so a connection that comes while it closes waits for it. */
static void reject_connection(apns_mock *m, uv_stream_t *listener) {
  if (m->reject_busy) {
    m->reject_waiting[listener == (uv_stream_t *)&m->manage_listener] = listener;
    return;
  }
  m->reject_busy = 1;
  m->handles++;
  uv_tcp_init(m->loop, &m->reject);
  m->reject.data = m;
  (void)uv_accept(listener, (uv_stream_t *)&m->reject);
  uv_close((uv_handle_t *)&m->reject, on_reject_closed);
}

static void on_connection(uv_stream_t *listener, int status) {
  apns_mock *m = listener->data;
  if (status < 0 || m->stopping) return;
  mock_conn *conn = apns__calloc(1, sizeof *conn);
  if (conn == NULL) {
    reject_connection(m, listener);
    return;
  }
  conn->server = m;
  apns__list_init(&conn->dirty_node);
  conn->timer_due = APNS__MOCK_NEVER;
  uv_tcp_init(m->loop, &conn->tcp);
  uv_timer_init(m->loop, &conn->timer);
  conn->tcp.data = conn->timer.data = conn;
  conn->handles = 2;
  m->handles += 2;
  apns__list_push_head(&m->conns, &conn->node);
  m->stats.connections++;
  m->stats.connections_open++;
  if (uv_accept(listener, (uv_stream_t *)&conn->tcp) != 0) {
    conn_close(conn);
    return;
  }
  m->seed += 0x9e3779b97f4a7c15ULL;
  if (apns__mock_conn_new(&conn->mc, &m->opts, m->tls, m->jwt, &m->stats, m->seed) != 0) {
    conn_close(conn);
    return;
  }
  apns__mock_conn_set_channels(conn->mc, m->channels,
                               !m->split                                        ? APNS__MOCK_SERVE_ALL
                               : listener == (uv_stream_t *)&m->manage_listener ? APNS__MOCK_SERVE_MANAGE
                                                                                : APNS__MOCK_SERVE_PUSH);
  uv_tcp_nodelay(&conn->tcp, 1);
  if (apns__sockout_init(&conn->out, (uv_stream_t *)&conn->tcp, on_drained, conn) != 0) {
    conn_close(conn);
    return;
  }
  conn->out_ready = 1;
  if (uv_read_start((uv_stream_t *)&conn->tcp, on_alloc, on_read) != 0) {
    conn_close(conn);
    return;
  }
  conn->reading = 1;
  /* Without TLS the server speaks first (its SETTINGS); with TLS the client does. */
  if (m->tls == NULL) mark_dirty(conn);
}

/* ---- the server ---- */

static void on_check(uv_check_t *h) {
  apns_mock *m = h->data;
  apns__list work;
  apns__list *n;
  /* Detached first: a flush that makes a connection dirty again puts it on m->dirty for the next turn, and one that
   * closes another takes it off work. */
  apns__list_move(&m->dirty, &work);
  uv_idle_stop(&m->idle);
  while ((n = apns__list_pop_head(&work)) != NULL) conn_flush(APNS__CONTAINER_OF(n, mock_conn, dirty_node));
}

static void on_idle(uv_idle_t *h) {
  (void)h; /* only here so that poll does not block while connections are dirty */
}

static void server_handle_closed(uv_handle_t *h) {
  apns_mock *m = h->data;
  m->handles--;
  server_maybe_free(m);
}

static void server_maybe_free(apns_mock *m) {
  if (!m->stopping || m->handles > 0) return;
  if (m->stop_cb) m->stop_cb(m, m->stop_data);
  apns__tls_config_unref(m->tls);
  apns__jwt_verifier_free(m->jwt);
  apns__mock_channels_free(m->channels);
  apns__free((char *)m->opts.host);
  apns__free((char *)m->opts.bad_prefix);
  apns__free((char *)m->opts.unregistered_prefix);
  apns__free((char *)m->opts.goaway_reason);
  apns__free(m);
}

static int copy_str(const char **dst, const char *src) {
  *dst = NULL;
  if (src == NULL) return 0;
  *dst = apns__strdup(src);
  return *dst ? 0 : APNS_ENOMEM;
}

static void errmsg(char *errbuf, size_t errlen, const char *fmt, const char *arg) {
  if (errbuf != NULL && errlen > 0) snprintf(errbuf, errlen, fmt, arg);
}

/* The options that cannot work together or cannot be used, each refused with a message naming it; addr is host's
 * address and port. */
static int check_options(const apns_mock_options *opts, const char *host, struct sockaddr_storage *addr, char *errbuf,
                         size_t errlen) {
  if (opts->port < 0 || opts->port > 65535) {
    errmsg(errbuf, errlen, "port out of range%s", "");
    return APNS_EINVAL;
  }
  if (uv_ip4_addr(host, opts->port, (struct sockaddr_in *)addr) != 0 &&
      uv_ip6_addr(host, opts->port, (struct sockaddr_in6 *)addr) != 0) {
    errmsg(errbuf, errlen, "not an IP address: %s", host);
    return APNS_EINVAL;
  }
  int has_cert = opts->cert_file || opts->cert_pem, has_key = opts->key_file || opts->key_pem;
  if (has_cert != has_key) {
    errmsg(errbuf, errlen, "%s", "a certificate needs its key and a key its certificate");
    return APNS_EINVAL;
  }
  if (!has_cert && (opts->ca_file || opts->ca_pem)) {
    errmsg(errbuf, errlen, "%s", "client certificates (a CA) need TLS (a server certificate)");
    return APNS_EINVAL;
  }
  if (opts->num_token_keys > 0 && opts->token_keys == NULL) {
    errmsg(errbuf, errlen, "%s", "num_token_keys without token_keys");
    return APNS_EINVAL;
  }
  if (opts->goaway_reason && strlen(opts->goaway_reason) > 100) {
    errmsg(errbuf, errlen, "%s", "goaway reason longer than 100 bytes");
    return APNS_EINVAL;
  }
  return 0;
}

/* m->opts is the caller's options without their pointers, which are either copied (the strings) or kept in the
 * form the server uses (the TLS config, the verifier, the channel store). */
static int copy_options(apns_mock *m, const apns_mock_options *opts, const char *host) {
  m->opts = *opts;
  m->opts.cert_file = m->opts.cert_pem = m->opts.key_file = m->opts.key_pem = NULL;
  m->opts.ca_file = m->opts.ca_pem = NULL;
  m->opts.host = m->opts.bad_prefix = m->opts.unregistered_prefix = m->opts.goaway_reason = NULL;
  m->opts.token_keys = NULL; /* kept as the verifier */
  m->opts.num_token_keys = 0;
  m->opts.broadcast_disabled = NULL; /* the store keeps its copy */
  if (m->opts.max_streams == 0) m->opts.max_streams = 1000;
  if (copy_str(&m->opts.host, host) || copy_str(&m->opts.bad_prefix, opts->bad_prefix) ||
      copy_str(&m->opts.unregistered_prefix, opts->unregistered_prefix) ||
      copy_str(&m->opts.goaway_reason, opts->goaway_reason ? opts->goaway_reason : "Shutdown"))
    return APNS_ENOMEM;
  return 0;
}

/* The server's certificate (and the CA its clients' certificates must chain to) as a TLS config, if it has one. */
static int load_tls(apns_mock *m, const apns_mock_options *opts, char *errbuf, size_t errlen) {
  if (!(opts->cert_file || opts->cert_pem)) return 0;
  apns__tls_options to;
  memset(&to, 0, sizeof to);
  to.server = 1;
  to.cert_file = opts->cert_pem ? NULL : opts->cert_file;
  to.cert_pem = opts->cert_pem;
  to.key_file = opts->key_pem ? NULL : opts->key_file;
  to.key_pem = opts->key_pem;
  to.ca_file = opts->ca_pem ? NULL : opts->ca_file;
  to.ca_pem = opts->ca_pem;
  return apns__tls_config_new(&m->tls, &to, errbuf, errlen);
}

/* The token keys as a verifier of the providers' JWTs, if there are any. */
static int load_token_keys(apns_mock *m, const apns_mock_options *opts, char *errbuf, size_t errlen) {
  if (opts->num_token_keys == 0) return 0;
  int rv = apns__jwt_verifier_new(&m->jwt);
  for (size_t i = 0; rv == 0 && i < opts->num_token_keys; i++) {
    const apns_mock_token_key *k = &opts->token_keys[i];
    const char *pem = k->pem, *file = pem ? NULL : k->file;
    rv = apns__jwt_verifier_add(m->jwt, k->key_id, file, pem, pem ? strlen(pem) + 1 : 0, errbuf, errlen);
  }
  return rv;
}

static int sockaddr_port(const struct sockaddr_storage *addr) {
  return addr->ss_family == AF_INET6 ? ntohs(((const struct sockaddr_in6 *)addr)->sin6_port)
                                     : ntohs(((const struct sockaddr_in *)addr)->sin_port);
}

/* Binds l (initialized) to addr and listens; addr is then the address bound, with the port the kernel chose for 0. */
static int listen_on(uv_tcp_t *l, struct sockaddr_storage *addr) {
  int rv = uv_tcp_bind(l, (const struct sockaddr *)addr, 0);
  if (rv == 0) rv = uv_listen((uv_stream_t *)l, 511, on_connection);
  if (rv == 0) {
    int alen = sizeof *addr;
    rv = uv_tcp_getsockname(l, (struct sockaddr *)addr, &alen);
  }
  return rv;
}

/* Channel management on a listener of its own, as Apple's api-manage-broadcast hosts; addr is the main listener's
 * address. */
static int listen_for_management(apns_mock *m, struct sockaddr_storage *addr) {
  uint16_t want = (uint16_t)m->opts.manage_port;
  if (addr->ss_family == AF_INET6)
    ((struct sockaddr_in6 *)addr)->sin6_port = htons(want);
  else
    ((struct sockaddr_in *)addr)->sin_port = htons(want);
  uv_tcp_init(m->loop, &m->manage_listener);
  m->manage_listener.data = m;
  m->split = 1;
  m->handles++;
  int rv = listen_on(&m->manage_listener, addr);
  if (rv == 0) m->manage_port = sockaddr_port(addr);
  return rv;
}

int apns_mock_start(apns_mock **out, uv_loop_t *loop, const apns_mock_options *opts, char *errbuf, size_t errlen) {
  int rv;
  struct sockaddr_storage addr;
  if (errbuf != NULL && errlen > 0) errbuf[0] = '\0';
  if (out == NULL || loop == NULL || opts == NULL) return APNS_EINVAL;
  *out = NULL;
  const char *host = opts->host ? opts->host : "127.0.0.1";
  rv = check_options(opts, host, &addr, errbuf, errlen);
  if (rv != 0) return rv;

  apns_mock *m = apns__calloc(1, sizeof *m);
  if (m == NULL) return APNS_ENOMEM;
  apns__list_init(&m->conns);
  apns__list_init(&m->dirty);
  m->loop = loop;
  rv = copy_options(m, opts, host);
  if (rv == 0) rv = load_tls(m, opts, errbuf, errlen);
  if (rv == 0) rv = load_token_keys(m, opts, errbuf, errlen);
  if (rv == 0) {
    uv_random(NULL, NULL, &m->seed, sizeof m->seed, 0, NULL);
    rv = apns__mock_channels_new(&m->channels, opts, m->seed ^ 0x5bd1e995u);
  }
  if (rv != 0) {
    m->stopping = 1;
    server_maybe_free(m);
    return rv;
  }

  /* From here on handles exist: failures close them on the loop. */
  uv_tcp_init(loop, &m->listener);
  uv_check_init(loop, &m->check);
  uv_idle_init(loop, &m->idle);
  m->listener.data = m->check.data = m->idle.data = m;
  m->handles = 3;
  uv_check_start(&m->check, on_check);
  uv_unref((uv_handle_t *)&m->check);
  rv = listen_on(&m->listener, &addr);
  if (rv != 0) {
    errmsg(errbuf, errlen, "listen: %s", uv_strerror(rv));
    apns_mock_stop(m, NULL, NULL);
    return rv;
  }
  m->port = sockaddr_port(&addr);
  if (opts->split_management) {
    rv = listen_for_management(m, &addr);
    if (rv != 0) {
      errmsg(errbuf, errlen, "listen (management): %s", uv_strerror(rv));
      apns_mock_stop(m, NULL, NULL);
      return rv;
    }
  }
  *out = m;
  return 0;
}

int apns_mock_port(const apns_mock *m) {
  return m->port;
}

int apns_mock_manage_port(const apns_mock *m) {
  return m->manage_port;
}

void apns_mock_set_paused(apns_mock *m, int paused) {
  m->opts.paused = paused != 0;
  for (apns__list *n = apns__list_head(&m->conns); n != NULL; n = apns__list_next(&m->conns, n)) {
    mock_conn *c = APNS__CONTAINER_OF(n, mock_conn, node);
    apns__mock_conn_set_paused(c->mc, paused);
    mark_dirty(c);
  }
}

void apns_mock_set_goaway_after(apns_mock *m, uint32_t n) {
  m->opts.goaway_after = n;
}

void apns_mock_drop_connections(apns_mock *m) {
  apns__list *n;
  while ((n = apns__list_head(&m->conns)) != NULL) conn_close(APNS__CONTAINER_OF(n, mock_conn, node));
}

void apns_mock_foreach_channel(const apns_mock *m, apns_mock_channel_cb cb, void *data) {
  apns__mock_channels_foreach(m->channels, cb, data);
}

void apns_mock_get_stats(const apns_mock *m, apns_mock_stats *out) {
  *out = m->stats;
}

void apns_mock_format_stats(const apns_mock_stats *st, char *buf, size_t len) {
  if (len == 0) return;
  int n = snprintf(buf, len,
                   "connections=%llu requests=%llu responses=%llu handshake_failures=%llu protocol_errors=%llu "
                   "goaways=%llu drops=%llu max_concurrent=%llu tokens_accepted=%llu streams_raised=%llu",
                   (unsigned long long)st->connections, (unsigned long long)st->requests,
                   (unsigned long long)st->responses, (unsigned long long)st->handshake_failures,
                   (unsigned long long)st->protocol_errors, (unsigned long long)st->goaways,
                   (unsigned long long)st->drops, (unsigned long long)st->max_concurrent,
                   (unsigned long long)st->tokens_accepted, (unsigned long long)st->streams_raised);
  for (int s = 100; s < 600 && n >= 0 && (size_t)n < len; s++)
    if (st->status[s]) n += snprintf(buf + n, len - (size_t)n, " %d=%llu", s, (unsigned long long)st->status[s]);
  for (int f = 0; f < APNS_MOCK_CHAOS_COUNT && n >= 0 && (size_t)n < len; f++)
    if (st->chaos[f])
      n += snprintf(buf + n, len - (size_t)n, " chaos-%s=%llu", apns_mock_chaos_name(f),
                    (unsigned long long)st->chaos[f]);
}

void apns_mock_stop(apns_mock *m, apns_mock_stop_cb cb, void *data) {
  if (m == NULL || m->stopping) return;
  m->stopping = 1;
  m->stop_cb = cb;
  m->stop_data = data;
  apns_mock_drop_connections(m); /* each leaves the dirty list too */
  uv_close((uv_handle_t *)&m->listener, server_handle_closed);
  if (m->split) uv_close((uv_handle_t *)&m->manage_listener, server_handle_closed);
  uv_close((uv_handle_t *)&m->check, server_handle_closed);
  uv_close((uv_handle_t *)&m->idle, server_handle_closed);
}
