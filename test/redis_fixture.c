/* The redis-server of a test (see redis_fixture.h). */
#define _GNU_SOURCE /* strcasestr, memmem */
#include "redis_fixture.h"

#include "harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

static void launch(rfx *r) {
  char conf[500];
  snprintf(conf, sizeof conf, "%s/redis.conf", r->dir);
  test_need_program("redis-server");
  int out[2];
  ASSERT_EQ(pipe(out), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    /* A test that fails or times out must not leave its server behind. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    dup2(out[1], 1);
    dup2(out[1], 2);
    close(out[0]);
    close(out[1]);
    execlp("redis-server", "redis-server", conf, (char *)NULL);
    _exit(127);
  }
  close(out[1]);
  /* Ready when it says so; its log goes to the pipe until then (Redis ignores SIGPIPE once we stop reading). */
  char log[16384];
  size_t n = 0;
  for (;;) {
    ssize_t k = read(out[0], log + n, sizeof log - 1 - n);
    if (k <= 0) {
      log[n] = '\0';
      test__fail(__FILE__, __LINE__, "redis-server did not start:\n%s", log);
    }
    n += (size_t)k;
    log[n] = '\0';
    if (strcasestr(log, "ready to accept connections")) break;
    if (n > sizeof log - 512) n = 0; /* keep reading the tail */
  }
  close(out[0]);
  r->pid = pid;
  struct timeval tv = {10, 0};
  r->c = redisConnectUnixWithTimeout(r->sock, tv);
  ASSERT_TRUE(r->c != NULL && r->c->err == 0);
}

static void start(rfx *r, int aof, int tcp, int cluster) {
  static int next;
  memset(r, 0, sizeof *r);
  r->aof = aof;
  r->cluster = cluster;
  if (tcp) {
    int ports[2];
    rfx_free_ports(ports, cluster ? 2 : 1);
    r->port = ports[0];
    r->cluster_port = cluster ? ports[1] : 0;
  }
  snprintf(r->dir, sizeof r->dir, "%s/redis%d", test_tmpdir(), next++);
  ASSERT_EQ(mkdir(r->dir, 0700), 0);
  snprintf(r->sock, sizeof r->sock, "%s/redis.sock", r->dir);
  ASSERT_LT(strlen(r->sock), 100); /* sun_path */
  snprintf(r->url, sizeof r->url, "unix://%s", r->sock);
  char conf[500];
  snprintf(conf, sizeof conf, "%s/redis.conf", r->dir);
  FILE *f = fopen(conf, "w");
  ASSERT_NOT_NULL(f);
  fprintf(f,
          "port 0\nunixsocket %s\nunixsocketperm 700\ndir %s\nsave \"\"\nappendonly %s\nappendfsync always\n"
          "daemonize no\nlogfile \"\"\nloglevel notice\n",
          r->sock, r->dir, aof ? "yes" : "no");
  /* "-::1": the IPv6 loopback when the machine has one (a name like localhost may resolve to it first). */
  if (tcp) fprintf(f, "port %d\nbind 127.0.0.1 -::1\n", r->port);
  if (cluster)
    fprintf(f, "cluster-enabled yes\ncluster-port %d\ncluster-config-file %s/nodes.conf\ncluster-node-timeout 5000\n",
            r->cluster_port, r->dir);
  ASSERT_EQ(fclose(f), 0);
  launch(r);
}

void rfx_start(rfx *r, int aof) {
  start(r, aof, 0, 0);
}

void rfx_start_tcp(rfx *r, int aof) {
  start(r, aof, 1, 0);
}

void rfx_free_ports(int *ports, int n) {
  int fds[8];
  ASSERT_LE(n, 8);
  for (int i = 0; i < n; i++) {
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fds[i] = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fds[i], 0);
    ASSERT_EQ(bind(fds[i], (struct sockaddr *)&sa, sizeof sa), 0);
    ASSERT_EQ(getsockname(fds[i], (struct sockaddr *)&sa, &len), 0);
    ports[i] = ntohs(sa.sin_port);
  }
  for (int i = 0; i < n; i++) close(fds[i]);
}

/* A line of INFO or CLUSTER INFO: its value ("" when absent). */
static void info_field(const char *text, const char *name, char *out, size_t cap) {
  const char *p = strstr(text, name);
  out[0] = '\0';
  if (p == NULL) return;
  p += strlen(name);
  if (*p++ != ':') return;
  size_t n = strcspn(p, "\r\n");
  snprintf(out, cap, "%.*s", (int)(n < cap ? n : cap - 1), p);
}

/* Gossip settles in its own time: the only wait here that asks again and again (every 20 ms, bounded). */
static int cluster_settled(rcl *c) {
  for (int i = 0; i < RCL_NODES; i++) {
    redisReply *rep = rfx_cmd(&c->node[i], "CLUSTER INFO");
    char v[64];
    info_field(rep->str, "cluster_state", v, sizeof v);
    int ok = strcmp(v, "ok") == 0;
    info_field(rep->str, "cluster_known_nodes", v, sizeof v);
    ok = ok && atoi(v) == RCL_NODES;
    freeReplyObject(rep);
    if (!ok) return 0;
  }
  return 1;
}

void rcl_start(rcl *c) {
  memset(c, 0, sizeof *c);
  for (int i = 0; i < RCL_NODES; i++) {
    start(&c->node[i], 0, 1, 1);
    redisReply *rep = rfx_cmd(&c->node[i], "CLUSTER MYID");
    ASSERT_EQ(rep->type, REDIS_REPLY_STRING);
    snprintf(c->node[i].id, sizeof c->node[i].id, "%s", rep->str);
    freeReplyObject(rep);
    unsigned lo = (unsigned)i * 16384 / RCL_NODES, hi = (unsigned)(i + 1) * 16384 / RCL_NODES - 1;
    rep = rfx_cmd(&c->node[i], "CLUSTER ADDSLOTSRANGE %u %u", lo, hi);
    if (rep->type == REDIS_REPLY_ERROR) test__fail(__FILE__, __LINE__, "ADDSLOTSRANGE: %s", rep->str);
    freeReplyObject(rep);
    memset(c->owner + lo, i, hi - lo + 1);
  }
  for (int i = 1; i < RCL_NODES; i++) {
    redisReply *rep = rfx_cmd(&c->node[0], "CLUSTER MEET 127.0.0.1 %d %d", c->node[i].port, c->node[i].cluster_port);
    if (rep->type == REDIS_REPLY_ERROR) test__fail(__FILE__, __LINE__, "CLUSTER MEET: %s", rep->str);
    freeReplyObject(rep);
  }
  uint64_t limit = uv_hrtime() + (uint64_t)30e9 * (uint64_t)test_time_factor();
  while (!cluster_settled(c)) {
    if (uv_hrtime() > limit) test__fail(__FILE__, __LINE__, "the cluster did not settle");
    usleep(20000);
  }
}

void rcl_stop(rcl *c) {
  for (int i = 0; i < RCL_NODES; i++) rfx_stop(&c->node[i], 1);
}

int rcl_owner(const rcl *c, unsigned slot) {
  return c->owner[slot & 16383];
}

unsigned rcl_slot(rcl *c, const char *key) {
  return (unsigned)rfx_int(&c->node[0], "CLUSTER KEYSLOT %s", key);
}

static void ok_reply(redisReply *rep, const char *what) {
  if (rep->type == REDIS_REPLY_ERROR) test__fail(__FILE__, __LINE__, "%s: %s", what, rep->str);
  freeReplyObject(rep);
}

void rcl_move_slot_begin(rcl *c, unsigned slot, int dst) {
  int src = rcl_owner(c, slot);
  rfx *s = &c->node[src], *d = &c->node[dst];
  ASSERT_NE(src, dst);
  ok_reply(rfx_cmd(d, "CLUSTER SETSLOT %u IMPORTING %s", slot, s->id), "SETSLOT IMPORTING");
  ok_reply(rfx_cmd(s, "CLUSTER SETSLOT %u MIGRATING %s", slot, d->id), "SETSLOT MIGRATING");
  for (;;) {
    redisReply *keys = rfx_cmd(s, "CLUSTER GETKEYSINSLOT %u 100", slot);
    ASSERT_EQ(keys->type, REDIS_REPLY_ARRAY);
    size_t n = keys->elements;
    if (n == 0) {
      freeReplyObject(keys);
      break;
    }
    const char *argv[110];
    size_t lens[110], k = 0;
    char port[16];
    snprintf(port, sizeof port, "%d", d->port);
    const char *head[] = {"MIGRATE", "127.0.0.1", port, "", "0", "10000", "KEYS"};
    for (size_t i = 0; i < 7; i++) argv[k] = head[i], lens[k++] = strlen(head[i]);
    for (size_t i = 0; i < n; i++) argv[k] = keys->element[i]->str, lens[k++] = keys->element[i]->len;
    redisReply *rep = redisCommandArgv(s->c, (int)k, argv, lens);
    if (rep == NULL) test__fail(__FILE__, __LINE__, "MIGRATE: %s", s->c->errstr);
    ok_reply(rep, "MIGRATE");
    freeReplyObject(keys);
  }
}

void rcl_move_slot_end(rcl *c, unsigned slot, int dst) {
  int src = rcl_owner(c, slot);
  rfx *s = &c->node[src], *d = &c->node[dst];
  /* The new owner first, then the old one (which from then on answers -MOVED), then the rest. */
  ok_reply(rfx_cmd(d, "CLUSTER SETSLOT %u NODE %s", slot, d->id), "SETSLOT NODE (destination)");
  ok_reply(rfx_cmd(s, "CLUSTER SETSLOT %u NODE %s", slot, d->id), "SETSLOT NODE (source)");
  for (int i = 0; i < RCL_NODES; i++)
    if (i != src && i != dst)
      ok_reply(rfx_cmd(&c->node[i], "CLUSTER SETSLOT %u NODE %s", slot, d->id), "SETSLOT NODE");
  c->owner[slot] = (unsigned char)dst;
}

void rcl_move_slot(rcl *c, unsigned slot, int dst) {
  rcl_move_slot_begin(c, slot, dst);
  rcl_move_slot_end(c, slot, dst);
}

void rfx_stop(rfx *r, int hard) {
  if (r->c) redisFree(r->c);
  r->c = NULL;
  if (r->pid <= 0) return;
  kill(r->pid, hard ? SIGKILL : SIGTERM);
  int st;
  ASSERT_EQ(waitpid(r->pid, &st, 0), r->pid);
  r->pid = 0;
}

void rfx_restart(rfx *r) {
  unlink(r->sock);
  launch(r);
}

static redisReply *vcmd(rfx *r, const char *fmt, va_list ap) {
  redisReply *rep = redisvCommand(r->c, fmt, ap);
  if (rep == NULL) test__fail(__FILE__, __LINE__, "redis: %s", r->c->errstr);
  return rep;
}

redisReply *rfx_cmd(rfx *r, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  redisReply *rep = vcmd(r, fmt, ap);
  va_end(ap);
  return rep;
}

long long rfx_int(rfx *r, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  redisReply *rep = vcmd(r, fmt, ap);
  va_end(ap);
  if (rep->type != REDIS_REPLY_INTEGER) test__fail(__FILE__, __LINE__, "%s: not an integer: %s", fmt, rep->str);
  long long v = rep->integer;
  freeReplyObject(rep);
  return v;
}
