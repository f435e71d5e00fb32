/* The redis-server of a test (see redis_fixture.h). */
#define _GNU_SOURCE /* strcasestr, memmem */
#include "redis_fixture.h"

#include "harness.h"

#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

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

void rfx_start(rfx *r, int aof) {
  static int next;
  memset(r, 0, sizeof *r);
  r->aof = aof;
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
  ASSERT_EQ(fclose(f), 0);
  launch(r);
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
