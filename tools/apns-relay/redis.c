/* apns-relay: one connection to Redis through hiredis's async API on the loop (its libuv adapter), kept up:
 * lost or refused, it is made again after 100 ms, then twice as long each time up to 5 s (with jitter, so a
 * fleet does not come back in step). AUTH and SELECT go first on each new connection; hiredis answers commands in
 * order, so what is sent after them runs authenticated. hiredis 0.14 resolves a host name with a blocking
 * getaddrinfo: give an address (or a name /etc/hosts has) for a relay that must never stall.
 *
 * The loop hooks are our own rather than hiredis 0.14's adapters/libuv.h: that adapter drops a poll error
 * (libuv stops the handle and reports UV_EBADF when the peer dies with data unread, as a killed Redis does), so the
 * connection was never seen to be lost. Here an error is handed to hiredis as a read, which finds the failure and
 * disconnects. */
#include "relay.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RCONN_MIN_DELAY_MS 100
#define RCONN_MAX_DELAY_MS 5000

int redis_url_parse(const char *url, redis_url *out, char *why, size_t whylen) {
  memset(out, 0, sizeof *out);
  out->port = 6379;
  if (strncmp(url, "unix://", 7) == 0) {
    const char *p = url + 7, *q = strchr(p, '?');
    size_t len = q ? (size_t)(q - p) : strlen(p);
    if (len == 0 || p[0] != '/' || len >= sizeof out->path) {
      snprintf(why, whylen, "%s: unix:///absolute/path wanted", url);
      return -1;
    }
    memcpy(out->path, p, len);
    if (q) {
      char *end;
      if (strncmp(q, "?db=", 4) != 0 || (out->db = (int)strtol(q + 4, &end, 10)) < 0 || *end || end == q + 4) {
        snprintf(why, whylen, "%s: only ?db=N may follow the path", url);
        return -1;
      }
    }
    return 0;
  }
  if (strncmp(url, "redis://", 8) != 0) {
    snprintf(why, whylen, "%s: redis://[user:pass@]host:port/db or unix:///path wanted", url);
    return -1;
  }
  const char *p = url + 8, *at = strrchr(p, '@');
  if (at) {
    const char *colon = memchr(p, ':', (size_t)(at - p));
    if (colon == NULL || (size_t)(colon - p) >= sizeof out->user || (size_t)(at - colon - 1) >= sizeof out->pass) {
      snprintf(why, whylen, "redis URL: user:pass@ wanted before the host (user may be empty)");
      return -1;
    }
    memcpy(out->user, p, (size_t)(colon - p));
    memcpy(out->pass, colon + 1, (size_t)(at - colon - 1));
    p = at + 1;
  }
  const char *slash = strchr(p, '/');
  size_t hl = slash ? (size_t)(slash - p) : strlen(p);
  const char *hostend = p + hl, *colon = NULL;
  if (p[0] == '[') {
    const char *close = memchr(p, ']', hl);
    if (!close) {
      snprintf(why, whylen, "%s: bad [IPv6] host", url);
      return -1;
    }
    if (close + 1 < hostend && close[1] == ':') colon = close + 1;
    snprintf(out->host, sizeof out->host, "%.*s", (int)(close - p - 1), p + 1);
  } else {
    colon = memchr(p, ':', hl);
    snprintf(out->host, sizeof out->host, "%.*s", (int)(colon ? colon - p : (long)hl), p);
  }
  if (out->host[0] == '\0') {
    snprintf(why, whylen, "%s: no host", url);
    return -1;
  }
  if (colon) {
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (end != hostend || port < 1 || port > 65535) {
      snprintf(why, whylen, "%s: bad port", url);
      return -1;
    }
    out->port = (int)port;
  }
  if (slash && slash[1]) {
    char *end;
    long db = strtol(slash + 1, &end, 10);
    if (*end || db < 0 || db > 100000) {
      snprintf(why, whylen, "%s: bad database number", url);
      return -1;
    }
    out->db = (int)db;
  }
  return 0;
}

/* ---- hiredis's event hooks on a uv_poll_t ---- */

typedef struct uvev {
  redisAsyncContext *ac;
  uv_poll_t poll;
  int events;
} uvev;

static void uvev_cb(uv_poll_t *h, int status, int events) {
  uvev *e = h->data;
  if (e->ac == NULL) return;
  if (status < 0) { /* the handle is stopped: let hiredis read, meet the error and disconnect */
    e->events = 0;
    redisAsyncHandleRead(e->ac);
    return;
  }
  if (events & UV_READABLE) redisAsyncHandleRead(e->ac);
  if (e->ac && (events & UV_WRITABLE)) redisAsyncHandleWrite(e->ac);
}

static void uvev_update(uvev *e) {
  if (e->events)
    uv_poll_start(&e->poll, e->events, uvev_cb);
  else
    uv_poll_stop(&e->poll);
}

static void uvev_add_read(void *p) {
  uvev *e = p;
  e->events |= UV_READABLE;
  uvev_update(e);
}

static void uvev_del_read(void *p) {
  uvev *e = p;
  e->events &= ~UV_READABLE;
  uvev_update(e);
}

static void uvev_add_write(void *p) {
  uvev *e = p;
  e->events |= UV_WRITABLE;
  uvev_update(e);
}

static void uvev_del_write(void *p) {
  uvev *e = p;
  e->events &= ~UV_WRITABLE;
  uvev_update(e);
}

static void uvev_closed(uv_handle_t *h) {
  free(h->data);
}

static void uvev_cleanup(void *p) {
  uvev *e = p;
  e->ac = NULL;
  uv_close((uv_handle_t *)&e->poll, uvev_closed);
}

static int uvev_attach(redisAsyncContext *ac, uv_loop_t *loop) {
  uvev *e = calloc(1, sizeof *e);
  if (e == NULL) return REDIS_ERR;
  if (uv_poll_init(loop, &e->poll, ac->c.fd) != 0) {
    free(e);
    return REDIS_ERR;
  }
  e->ac = ac;
  e->poll.data = e;
  ac->ev.data = e;
  ac->ev.addRead = uvev_add_read;
  ac->ev.delRead = uvev_del_read;
  ac->ev.addWrite = uvev_add_write;
  ac->ev.delWrite = uvev_del_write;
  ac->ev.cleanup = uvev_cleanup;
  return REDIS_OK;
}

static void schedule_retry(rconn *c);

static const char *where(const rconn *c, char *buf, size_t cap) {
  if (c->url->path[0])
    snprintf(buf, cap, "unix:%s", c->url->path);
  else
    snprintf(buf, cap, "%s:%d", c->url->host, c->url->port);
  return buf;
}

static void on_setup_reply(redisAsyncContext *ac, void *r, void *privdata) {
  redisReply *reply = r;
  rconn *c = privdata;
  if (reply && reply->type == REDIS_REPLY_ERROR) {
    relay_log("error", NULL, "redis %s: %s refused: %s", c->name, ac->data ? "setup" : "setup", reply->str);
    redisAsyncDisconnect(ac);
  }
}

static void on_disconnect(const redisAsyncContext *ac, int status) {
  rconn *c = ac->data;
  char w[300];
  (void)status;
  int was_up = c->up;
  c->ac = NULL;
  c->up = 0;
  if (was_up) {
    c->losses++;
    if (!c->stopping)
      relay_log("warn", NULL, "redis %s: connection to %s lost: %s", c->name, where(c, w, sizeof w),
                ac->errstr[0] ? ac->errstr : "closed");
    if (c->on_down) c->on_down(c);
  }
  if (c->stopping) {
    if (!uv_is_closing((uv_handle_t *)&c->retry)) uv_close((uv_handle_t *)&c->retry, NULL);
    if (c->on_closed) c->on_closed(c);
    return;
  }
  schedule_retry(c);
}

static void on_connect(const redisAsyncContext *ac, int status) {
  rconn *c = ac->data;
  char w[300];
  if (status != REDIS_OK) {
    /* hiredis frees the context after this callback; no disconnect callback follows. */
    relay_log("warn", NULL, "redis %s: cannot connect to %s: %s", c->name, where(c, w, sizeof w), ac->errstr);
    c->ac = NULL;
    if (c->stopping) {
      if (!uv_is_closing((uv_handle_t *)&c->retry)) uv_close((uv_handle_t *)&c->retry, NULL);
      if (c->on_closed) c->on_closed(c);
      return;
    }
    schedule_retry(c);
    return;
  }
  c->up = 1;
  c->connects++;
  c->delay_ms = 0;
  relay_log("info", NULL, "redis %s: connected to %s", c->name, where(c, w, sizeof w));
  if (c->on_up) c->on_up(c);
}

static void try_connect(rconn *c) {
  redisAsyncContext *ac =
      c->url->path[0] ? redisAsyncConnectUnix(c->url->path) : redisAsyncConnect(c->url->host, c->url->port);
  char w[300];
  if (ac == NULL || ac->err) {
    relay_log("warn", NULL, "redis %s: cannot connect to %s: %s", c->name, where(c, w, sizeof w),
              ac ? ac->errstr : "out of memory");
    if (ac) redisAsyncFree(ac);
    schedule_retry(c);
    return;
  }
  ac->data = c;
  if (uvev_attach(ac, c->loop) != REDIS_OK) {
    redisAsyncFree(ac);
    schedule_retry(c);
    return;
  }
  c->ac = ac;
  redisAsyncSetConnectCallback(ac, on_connect);
  redisAsyncSetDisconnectCallback(ac, on_disconnect);
  /* Queued now, written first once connected. */
  if (c->url->pass[0]) {
    if (c->url->user[0])
      redisAsyncCommand(ac, on_setup_reply, c, "AUTH %s %s", c->url->user, c->url->pass);
    else
      redisAsyncCommand(ac, on_setup_reply, c, "AUTH %s", c->url->pass);
  }
  if (c->url->db) redisAsyncCommand(ac, on_setup_reply, c, "SELECT %d", c->url->db);
}

static void on_retry(uv_timer_t *t) {
  rconn *c = t->data;
  if (!c->stopping) try_connect(c);
}

static void schedule_retry(rconn *c) {
  c->delay_ms = c->delay_ms ? c->delay_ms * 2 : RCONN_MIN_DELAY_MS;
  if (c->delay_ms > RCONN_MAX_DELAY_MS) c->delay_ms = RCONN_MAX_DELAY_MS;
  uint64_t d = c->delay_ms / 2 + (uint64_t)rand() % (c->delay_ms / 2 + 1);
  uv_timer_start(&c->retry, on_retry, d, 0);
}

void rconn_init(rconn *c, uv_loop_t *loop, const redis_url *url, const char *name, void *data) {
  memset(c, 0, sizeof *c);
  c->loop = loop;
  c->url = url;
  c->name = name;
  c->data = data;
  uv_timer_init(loop, &c->retry);
  c->retry.data = c;
}

void rconn_start(rconn *c) {
  try_connect(c);
}

void rconn_stop(rconn *c) {
  if (c->stopping) return;
  c->stopping = 1;
  uv_timer_stop(&c->retry);
  if (c->ac) {
    redisAsyncDisconnect(c->ac); /* on_disconnect follows, once pending replies are in */
    return;
  }
  uv_close((uv_handle_t *)&c->retry, NULL);
  if (c->on_closed) c->on_closed(c);
}

int rconn_command(rconn *c, redisCallbackFn *cb, void *privdata, int argc, const char **argv, const size_t *lens) {
  if (!c->up || c->ac == NULL || c->stopping) return -1;
  return redisAsyncCommandArgv(c->ac, cb, privdata, argc, argv, lens) == REDIS_OK ? 0 : -1;
}
