/* apns-relay: one connection to Redis through hiredis's async API on the loop (its libuv adapter), kept up:
 * lost or refused, it is made again after 100 ms, then twice as long each time up to 5 s (with jitter, so a
 * fleet does not come back in step). AUTH and SELECT go first on each new connection; hiredis answers commands in
 * order, so what is sent after them runs authenticated. hiredis 0.14 resolves a host name with a blocking
 * getaddrinfo, so a name is resolved here first, with uv_getaddrinfo, and hiredis gets the address. In a Redis
 * Cluster the connection follows -MOVED (rconn_redirect): closed once its replies are in, made again to the node
 * named, with the back-off of its own.
 *
 * The loop hooks are our own rather than hiredis 0.14's adapters/libuv.h: that adapter drops a poll error
 * (libuv stops the handle and reports UV_EBADF when the peer dies with data unread, as a killed Redis does), so the
 * connection was never seen to be lost. Here an error is handed to hiredis as a read, which finds the failure and
 * disconnects. */
#include "relay.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stddef.h>
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

/* ---- replies built in one arena each ----
 *
 * hiredis 0.14 allocates every object of a reply on its own: an entry of an XREADGROUP answer is ten
 * allocations (five objects, their strings and element arrays), a seventh of the relay's instructions with
 * the frees. Here a reply and everything in it are carved from a few large chunks that go in one free, when
 * hiredis frees the reply after its callback. The objects are hiredis's own redisReply, filled in as hiredis
 * does; only hiredis frees them (through these functions), never freeReplyObject. */

#define ARENA_CHUNK (16 * 1024)

typedef struct achunk {
  struct achunk *next;
  max_align_t data[];
} achunk;

typedef struct arena {
  redisReply top; /* first: the reply hiredis holds */
  achunk *chunks;
  char *p;
  size_t left;
  max_align_t space[16]; /* a small reply needs no chunk */
} arena;

static arena *arena_of(const redisReadTask *t) {
  while (t->parent) t = t->parent;
  return (arena *)t->obj;
}

static void *arena_alloc(arena *a, size_t n) {
  n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
  if (n > a->left) {
    size_t cap = n > ARENA_CHUNK / 4 ? n : ARENA_CHUNK;
    achunk *c = malloc(sizeof *c + cap);
    if (c == NULL) return NULL;
    c->next = a->chunks;
    a->chunks = c;
    if (n == cap) return c->data; /* a large one alone: the current chunk goes on */
    a->p = (char *)c->data;
    a->left = cap;
  }
  void *r = a->p;
  a->p += n;
  a->left -= n;
  return r;
}

/* A new object: the top of a new arena (no parent), or one in its parent's arena, set in the parent's array. */
static redisReply *arena_object(const redisReadTask *t, int type) {
  redisReply *r;
  if (t->parent == NULL) {
    arena *a = malloc(sizeof *a);
    if (a == NULL) return NULL;
    a->chunks = NULL;
    a->p = (char *)a->space;
    a->left = sizeof a->space;
    r = &a->top;
  } else {
    r = arena_alloc(arena_of(t->parent), sizeof *r);
    if (r == NULL) return NULL;
  }
  memset(r, 0, sizeof *r);
  r->type = type;
  if (t->parent) {
    redisReply *parent = t->parent->obj;
    parent->element[t->idx] = r;
  }
  return r;
}

static void *arena_string(const redisReadTask *t, char *str, size_t len) {
  redisReply *r = arena_object(t, t->type);
  if (r == NULL) return NULL;
  arena *a = t->parent ? arena_of(t->parent) : (arena *)r;
  if ((r->str = arena_alloc(a, len + 1)) == NULL) {
    if (t->parent == NULL) free(a);
    return NULL;
  }
  memcpy(r->str, str, len);
  r->str[len] = '\0';
  r->len = len;
  return r;
}

static void *arena_array(const redisReadTask *t, int elements) {
  redisReply *r = arena_object(t, REDIS_REPLY_ARRAY);
  if (r == NULL) return NULL;
  if (elements > 0) {
    arena *a = t->parent ? arena_of(t->parent) : (arena *)r;
    if ((r->element = arena_alloc(a, (size_t)elements * sizeof *r->element)) == NULL) {
      if (t->parent == NULL) free(a);
      return NULL;
    }
    memset(r->element, 0, (size_t)elements * sizeof *r->element);
  }
  r->elements = (size_t)elements;
  return r;
}

static void *arena_integer(const redisReadTask *t, long long value) {
  redisReply *r = arena_object(t, REDIS_REPLY_INTEGER);
  if (r) r->integer = value;
  return r;
}

static void *arena_nil(const redisReadTask *t) {
  return arena_object(t, REDIS_REPLY_NIL);
}

static void arena_free(void *reply) {
  arena *a = reply; /* only a top reply is freed: its arena */
  for (achunk *c = a->chunks, *next; c; c = next) {
    next = c->next;
    free(c);
  }
  free(a);
}

static redisReplyObjectFunctions arena_functions = {arena_string, arena_array, arena_integer, arena_nil, arena_free};

static void schedule_retry(rconn *c);

static const char *where(const rconn *c, char *buf, size_t cap) {
  if (c->url->path[0])
    snprintf(buf, cap, "unix:%s", c->url->path);
  else if (c->addr[0] && strcmp(c->addr, c->host) != 0)
    snprintf(buf, cap, "%s:%d (%s)", c->host, c->port, c->addr);
  else
    snprintf(buf, cap, "%s:%d", c->host, c->port);
  return buf;
}

static void on_setup_reply(redisAsyncContext *ac, void *r, void *privdata) {
  redisReply *reply = r;
  rconn *c = privdata;
  if (reply && reply->type == REDIS_REPLY_ERROR) {
    relay_log("error", NULL, "redis %s: setup refused: %s", c->name, reply->str);
    redisAsyncDisconnect(ac);
  }
}

/* Stopping, and nothing (connection, resolution) is left to wait for. */
static void closed(rconn *c) {
  if (!uv_is_closing((uv_handle_t *)&c->retry)) uv_close((uv_handle_t *)&c->retry, NULL);
  if (c->on_closed) c->on_closed(c);
}

static void on_disconnect(const redisAsyncContext *ac, int status) {
  rconn *c = ac->data;
  char w[400];
  (void)status;
  int was_up = c->up || c->redirecting;
  c->ac = NULL;
  c->up = 0;
  if (was_up) {
    c->losses++;
    if (!c->stopping && !c->redirecting)
      relay_log("warn", NULL, "redis %s: connection to %s lost: %s", c->name, where(c, w, sizeof w),
                ac->errstr[0] ? ac->errstr : "closed");
    if (c->on_down) c->on_down(c);
  }
  if (c->stopping) {
    closed(c);
    return;
  }
  if (c->redirecting) { /* at once to the node that owns the slot now */
    c->redirecting = 0;
    c->delay_ms = 0;
    c->addr[0] = '\0';
    uv_timer_start(&c->retry, c->retry.timer_cb, 0, 0);
    return;
  }
  schedule_retry(c);
}

static void on_connect(const redisAsyncContext *ac, int status) {
  rconn *c = ac->data;
  char w[400];
  if (status != REDIS_OK) {
    /* hiredis frees the context after this callback; no disconnect callback follows. */
    relay_log("warn", NULL, "redis %s: cannot connect to %s: %s", c->name, where(c, w, sizeof w), ac->errstr);
    c->ac = NULL;
    c->redirecting = 0;
    c->attempts++;
    if (c->stopping) {
      closed(c);
      return;
    }
    schedule_retry(c);
    return;
  }
  if (c->redirecting) { /* moved while connecting: to the new address */
    redisAsyncDisconnect((redisAsyncContext *)ac);
    return;
  }
  c->up = 1;
  c->attempts = 0;
  c->connects++;
  c->delay_ms = 0;
  relay_log("info", NULL, "redis %s: connected to %s", c->name, where(c, w, sizeof w));
  if (c->on_up) c->on_up(c);
}

/* The connect proper, to an address (or the unix socket). */
static void connect_to(rconn *c, const char *ip) {
  redisAsyncContext *ac = c->url->path[0] ? redisAsyncConnectUnix(c->url->path) : redisAsyncConnect(ip, c->port);
  char w[400];
  if (ac == NULL || ac->err) {
    relay_log("warn", NULL, "redis %s: cannot connect to %s: %s", c->name, where(c, w, sizeof w),
              ac ? ac->errstr : "out of memory");
    if (ac) redisAsyncFree(ac);
    schedule_retry(c);
    return;
  }
  ac->data = c;
  ac->c.reader->fn = &arena_functions;
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

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  rconn *c = req->data;
  char w[400];
  c->resolving = 0;
  if (c->stopping) {
    uv_freeaddrinfo(res);
    closed(c);
    return;
  }
  if (status < 0 || res == NULL) {
    relay_log("warn", NULL, "redis %s: cannot resolve %s: %s", c->name, where(c, w, sizeof w),
              status < 0 ? uv_strerror(status) : "no address");
    uv_freeaddrinfo(res);
    schedule_retry(c);
    return;
  }
  /* A name with several addresses (localhost: ::1 and 127.0.0.1): each failed connect tries the next. */
  unsigned count = 0;
  for (struct addrinfo *a = res; a; a = a->ai_next) count++;
  struct addrinfo *a = res;
  for (unsigned i = c->attempts % count; i > 0; i--) a = a->ai_next;
  int rv = a->ai_family == AF_INET6 ? uv_ip6_name((const struct sockaddr_in6 *)a->ai_addr, c->addr, sizeof c->addr)
                                    : uv_ip4_name((const struct sockaddr_in *)a->ai_addr, c->addr, sizeof c->addr);
  uv_freeaddrinfo(res);
  if (rv != 0) {
    relay_log("warn", NULL, "redis %s: cannot resolve %s: %s", c->name, where(c, w, sizeof w), uv_strerror(rv));
    schedule_retry(c);
    return;
  }
  connect_to(c, c->addr);
}

/* hiredis 0.14's redisAsyncConnect would resolve a name with a blocking getaddrinfo: names are resolved on
 * libuv's thread pool first, and hiredis is given the address. */
static void try_connect(rconn *c) {
  if (c->url->path[0]) {
    connect_to(c, NULL);
    return;
  }
  struct in6_addr a6;
  if (inet_pton(AF_INET, c->host, &a6) == 1 || inet_pton(AF_INET6, c->host, &a6) == 1) {
    c->addr[0] = '\0'; /* an address already: the logs show it once */
    connect_to(c, c->host);
    return;
  }
  struct addrinfo hints;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  c->gai.data = c;
  int rv = uv_getaddrinfo(c->loop, &c->gai, on_resolved, c->host, NULL, &hints);
  if (rv != 0) {
    char w[400];
    relay_log("warn", NULL, "redis %s: cannot resolve %s: %s", c->name, where(c, w, sizeof w), uv_strerror(rv));
    schedule_retry(c);
    return;
  }
  c->resolving = 1;
}

static void on_retry(uv_timer_t *t) {
  rconn *c = t->data;
  if (!c->stopping && !c->resolving && c->ac == NULL) try_connect(c);
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
  snprintf(c->host, sizeof c->host, "%s", url->host);
  c->port = url->port;
  uv_timer_init(loop, &c->retry);
  c->retry.data = c;
  c->retry.timer_cb = on_retry;
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
  if (c->resolving) {
    uv_cancel((uv_req_t *)&c->gai); /* on_resolved follows (canceled, or done) */
    return;
  }
  closed(c);
}

void rconn_redirect(rconn *c, const char *host, int port) {
  if (c->stopping || c->url->path[0] || (strcmp(c->host, host) == 0 && c->port == port)) return;
  char from[400];
  where(c, from, sizeof from);
  snprintf(c->host, sizeof c->host, "%s", host);
  c->port = port;
  relay_log("info", NULL, "redis %s: moved from %s to %s:%d", c->name, from, host, port);
  if (c->ac) {
    int was_connected = c->up;
    c->up = 0;
    c->redirecting = 1;
    if (was_connected) redisAsyncDisconnect(c->ac); /* else on_connect sees the flag */
    return;
  }
  if (!c->resolving) { /* waiting to retry: go now, to the new address */
    c->delay_ms = 0;
    c->addr[0] = '\0';
    uv_timer_start(&c->retry, on_retry, 0, 0);
  }
}

static char *put_num(char *p, char mark, size_t v) {
  char tmp[24];
  int k = 0;
  do tmp[k++] = (char)('0' + v % 10);
  while ((v /= 10) != 0);
  *p++ = mark;
  while (k) *p++ = tmp[--k];
  *p++ = '\r';
  *p++ = '\n';
  return p;
}

/* The command in RESP, formatted here in one pass into one buffer: hiredis 0.14's redisAsyncCommandArgv builds it
 * with an sdscatfmt per argument, which was a twentieth of the relay's time with the result script's hundreds of
 * arguments. */
int rconn_command(rconn *c, redisCallbackFn *cb, void *privdata, int argc, const char **argv, const size_t *lens) {
  if (!c->up || c->ac == NULL || c->stopping || argc <= 0) return -1;
  size_t total = 1 + 20 + 2;
  for (int i = 0; i < argc; i++) total += 1 + 20 + 2 + lens[i] + 2;
  char *buf = malloc(total), *p = buf;
  if (buf == NULL) return -1;
  p = put_num(p, '*', (size_t)argc);
  for (int i = 0; i < argc; i++) {
    p = put_num(p, '$', lens[i]);
    memcpy(p, argv[i], lens[i]);
    p += lens[i];
    *p++ = '\r';
    *p++ = '\n';
  }
  int rv = redisAsyncFormattedCommand(c->ac, cb, privdata, buf, (size_t)(p - buf));
  free(buf);
  return rv == REDIS_OK ? 0 : -1;
}

/* CRC16-CCITT (XMODEM), as Redis Cluster's key slot uses it. */
static unsigned crc16(const unsigned char *p, size_t n) {
  unsigned crc = 0;
  for (size_t i = 0; i < n; i++) {
    crc ^= (unsigned)p[i] << 8;
    for (int b = 0; b < 8; b++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

unsigned redis_key_slot(const char *key, size_t len) {
  const char *open = memchr(key, '{', len);
  if (open) {
    const char *close = memchr(open + 1, '}', len - (size_t)(open + 1 - key));
    if (close && close > open + 1) /* a tag that is not empty: only it is hashed */
      return crc16((const unsigned char *)open + 1, (size_t)(close - open - 1)) & 16383;
  }
  return crc16((const unsigned char *)key, len) & 16383;
}

int redis_parse_redirect(const char *err, char *host, size_t hostcap, int *port) {
  const char *sp = strchr(err, ' ');
  if (sp == NULL || (sp = strchr(sp + 1, ' ')) == NULL) return -1;
  const char *hp = sp + 1, *colon = strrchr(hp, ':');
  if (colon == NULL || colon == hp || (size_t)(colon - hp) >= hostcap) return -1;
  char *end;
  long p = strtol(colon + 1, &end, 10);
  if (end == colon + 1 || (*end && *end != ' ' && *end != '\r' && *end != '\n') || p < 1 || p > 65535) return -1;
  memcpy(host, hp, (size_t)(colon - hp));
  host[colon - hp] = '\0';
  *port = (int)p;
  return 0;
}
