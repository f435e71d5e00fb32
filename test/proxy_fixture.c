/* Real proxy daemons for the proxy tests (see proxy_fixture.h).
 *
 * Each daemon runs in the foreground as a child of the test, in a process group of its own (danted forks helpers:
 * one kill reaches them all) that dies with the test's process (see supervise), with stdout and stderr on a pipe. A
 * thread drains that pipe for as long as the daemon lives, so that its logging never blocks it, keeps the output for
 * failure messages, and says when the daemon's "listening" line has appeared: readiness is an event, not a guess. A
 * port is picked by binding port 0 and releasing it; if the daemon then cannot bind it (someone else took it
 * meanwhile), it is tried again on another. */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* unshare(), CLONE_NEWNS */
#endif
#include "proxy_fixture.h"

#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { TINYPROXY, DANTED };

#define OUT_CAP (64 * 1024)

struct fx_daemon {
  int kind;
  int port;
  pid_t pid;
  char conf[512];
  char passwd[512], shadow[512]; /* danted with a user: the files bind-mounted in its namespace */
  int with_user;

  pthread_t drainer;
  int drainer_running;
  int fd;
  int life; /* the test's end of the supervisor's lifeline */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int ready, eof;
  size_t out_len;
  char out[OUT_CAP + 1];
};

static const char *ready_line(const fx_daemon *d) {
  return d->kind == TINYPROXY ? "Accepting connections." : " running\n";
}

static void *drain(void *arg) {
  fx_daemon *d = arg;
  char buf[4096];
  for (;;) {
    ssize_t n = read(d->fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    pthread_mutex_lock(&d->mu);
    if (n <= 0) {
      d->eof = 1;
      pthread_cond_broadcast(&d->cv);
      pthread_mutex_unlock(&d->mu);
      return NULL;
    }
    if (d->out_len + (size_t)n > OUT_CAP) {
      /* Keep the most recent half. */
      size_t keep = OUT_CAP / 2;
      memmove(d->out, d->out + d->out_len - keep, keep);
      d->out_len = keep;
    }
    memcpy(d->out + d->out_len, buf, (size_t)n);
    d->out_len += (size_t)n;
    d->out[d->out_len] = '\0';
    if (!d->ready && strstr(d->out, ready_line(d))) {
      d->ready = 1;
      pthread_cond_broadcast(&d->cv);
    }
    pthread_mutex_unlock(&d->mu);
  }
}

static int free_port(void) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a;
  socklen_t len = sizeof a;
  ASSERT_GE(s, 0);
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(s, (struct sockaddr *)&a, sizeof a), 0);
  ASSERT_EQ(getsockname(s, (struct sockaddr *)&a, &len), 0);
  close(s);
  return ntohs(a.sin_port);
}

static void write_file(const char *path, const char *text, int mode) {
  FILE *f = fopen(path, "w");
  if (f == NULL) test__fail(__FILE__, __LINE__, "cannot write %s: %s", path, strerror(errno));
  fputs(text, f);
  fclose(f);
  chmod(path, (mode_t)mode);
}

static void write_config(fx_daemon *d, const char *user, const char *password, int connect_port) {
  char text[2048];
  if (d->kind == TINYPROXY) {
    int n = snprintf(text, sizeof text,
                     "Port %d\nListen 127.0.0.1\nTimeout 600\nMaxClients 200\nLogLevel Info\n"
                     "DisableViaHeader Yes\n",
                     d->port);
    if (user) n += snprintf(text + n, sizeof text - (size_t)n, "BasicAuth %s %s\n", user, password);
    if (connect_port) snprintf(text + n, sizeof text - (size_t)n, "ConnectPort %d\n", connect_port);
  } else {
    snprintf(text, sizeof text,
             "logoutput: stderr\n"
             "internal: 127.0.0.1 port = %d\n"
             "external: 127.0.0.1\n"
             "socksmethod: %s\n"
             "clientmethod: none\n"
             "user.privileged: root\n"
             "user.unprivileged: nobody\n"
             "client pass { from: 127.0.0.0/8 to: 0.0.0.0/0 }\n"
             "socks pass { from: 127.0.0.0/8 to: 0.0.0.0/0 log: connect }\n",
             d->port, user ? "username" : "none");
  }
  write_file(d->conf, text, 0600);
}

/* The throwaway password database danted's username method will see (and nothing else will). */
static void write_user_db(fx_daemon *d, const char *user, const char *password) {
  char text[1024];
  char hash[256] = "", cmd[600];
  /* openssl rather than libcrypt's crypt(): AddressSanitizer's interceptor of crypt() lets the linker drop
   * libcrypt, and then calls a NULL. The password is a throwaway of the test's. */
  snprintf(cmd, sizeof cmd, "openssl passwd -6 -salt apnsproxytest '%s'", password);
  FILE *f = popen(cmd, "r");
  if (f == NULL || fgets(hash, sizeof hash, f) == NULL || strncmp(hash, "$6$", 3) != 0)
    test__fail(__FILE__, __LINE__, "openssl passwd failed");
  pclose(f);
  hash[strcspn(hash, "\n")] = '\0';
  snprintf(text, sizeof text,
           "root:x:0:0:root:/root:/bin/sh\n"
           "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
           "%s:x:64999:65534:libapns proxy test:/nonexistent:/usr/sbin/nologin\n",
           user);
  write_file(d->passwd, text, 0644);
  snprintf(text, sizeof text,
           "root:*:19000:0:99999:7:::\n"
           "nobody:*:19000:0:99999:7:::\n"
           "%s:%s:19000:0:99999:7:::\n",
           user, hash);
  write_file(d->shadow, text, 0600);
}

static void exec_daemon(fx_daemon *d, int wfd) {
  dup2(wfd, 1);
  dup2(wfd, 2);
  if (wfd > 2) close(wfd);
  if (d->with_user) {
    /* A mount namespace of its own: the bind mounts below are seen by danted only, and vanish with it.
     * ("none": the kernel ignores source and type here, and valgrind wants no NULL.) */
    if (unshare(CLONE_NEWNS) != 0 || mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) != 0 ||
        mount(d->passwd, "/etc/passwd", "none", MS_BIND, NULL) != 0 ||
        mount(d->shadow, "/etc/shadow", "none", MS_BIND, NULL) != 0) {
      fprintf(stderr,
              "proxy fixture: cannot set up a mount namespace for danted's test user (needs root and "
              "CAP_SYS_ADMIN): %s\n",
              strerror(errno));
      _exit(127);
    }
  }
  if (d->kind == TINYPROXY) {
    execlp("tinyproxy", "tinyproxy", "-d", "-c", d->conf, (char *)NULL);
  } else {
    char pidfile[600];
    snprintf(pidfile, sizeof pidfile, "%s.pid", d->conf);
    execlp("danted", "danted", "-f", d->conf, "-p", pidfile, (char *)NULL);
  }
  fprintf(stderr, "proxy fixture: cannot run %s: %s (scripts/deps installs it)\n",
          d->kind == TINYPROXY ? "tinyproxy" : "danted", strerror(errno));
  _exit(127);
}

/* The forked child: a supervisor that starts the daemon in its process group and waits on the lifeline, a pipe
 * whose other end only the test holds. When the test ends, however it ends (an assertion's abort, the runner's
 * kill), the lifeline reads EOF and the supervisor kills the group. (PR_SET_PDEATHSIG alone would not do: danted
 * changes its user ids, which clears it.) */
static void supervise(fx_daemon *d, int wfd, int life) {
  setpgid(0, 0);
  /* Only the pipes of this daemon: a lifeline of another daemon held here would keep that one alive. */
  for (int fd = 3; fd < 1024; fd++)
    if (fd != wfd && fd != life) close(fd);
  pid_t daemon = fork();
  if (daemon < 0) _exit(127);
  if (daemon == 0) {
    close(life);
    exec_daemon(d, wfd);
  }
  close(wfd);
  char b;
  while (read(life, &b, 1) < 0 && errno == EINTR) continue;
  kill(0, SIGKILL);
  _exit(0);
}

/* One try: 1 when the daemon listens, 0 when it exited first (its output says why). */
static int spawn(fx_daemon *d) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  d->ready = d->eof = 0;
  d->out_len = 0;
  d->out[0] = '\0';
  fflush(stdout);
  fflush(stderr);
  int life[2];
  ASSERT_EQ(pipe(life), 0);
  d->pid = fork();
  ASSERT_GE(d->pid, 0);
  if (d->pid == 0) {
    close(fds[0]);
    close(life[1]);
    supervise(d, fds[1], life[0]);
  }
  close(life[0]);
  d->life = life[1];
  setpgid(d->pid, d->pid); /* also here, so a kill right after fork reaches the group */
  close(fds[1]);
  d->fd = fds[0];
  ASSERT_EQ(pthread_create(&d->drainer, NULL, drain, d), 0);
  d->drainer_running = 1;

  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += 20 * test_time_factor();
  pthread_mutex_lock(&d->mu);
  while (!d->ready && !d->eof) {
    if (pthread_cond_timedwait(&d->cv, &d->mu, &until) == ETIMEDOUT) break;
  }
  int ready = d->ready, eof = d->eof;
  pthread_mutex_unlock(&d->mu);
  if (ready) return 1;
  fx_daemon_kill(d);
  if (!eof) test__fail(__FILE__, __LINE__, "proxy daemon did not start listening in time:\n%s", d->out);
  return 0;
}

static fx_daemon *start(int kind, const char *user, const char *password, int connect_port) {
  fx_daemon *d = calloc(1, sizeof *d);
  ASSERT_NOT_NULL(d);
  d->kind = kind;
  d->pid = -1;
  d->fd = -1;
  pthread_mutex_init(&d->mu, NULL);
  pthread_cond_init(&d->cv, NULL);
  snprintf(d->conf, sizeof d->conf, "%s/%s.conf", test_tmpdir(), kind == TINYPROXY ? "tinyproxy" : "danted");
  if (kind == DANTED && user) {
    d->with_user = 1;
    snprintf(d->passwd, sizeof d->passwd, "%s/passwd", test_tmpdir());
    snprintf(d->shadow, sizeof d->shadow, "%s/shadow", test_tmpdir());
    write_user_db(d, user, password);
  }
  for (int attempt = 0; attempt < 5; attempt++) {
    d->port = free_port();
    write_config(d, user, password, connect_port);
    if (spawn(d)) return d;
    if (strstr(d->out, "proxy fixture:")) break; /* not a port race: no use trying again */
  }
  test__fail(__FILE__, __LINE__, "%s would not start:\n%s", kind == TINYPROXY ? "tinyproxy" : "danted", d->out);
}

fx_daemon *fx_tinyproxy_start(const char *user, const char *password, int connect_port) {
  test_need_program("tinyproxy");
  return start(TINYPROXY, user, password, connect_port);
}

fx_daemon *fx_danted_start(const char *user, const char *password) {
  test_need_program("danted");
  return start(DANTED, user, password, 0);
}

int fx_daemon_port(const fx_daemon *d) {
  return d->port;
}

void fx_daemon_kill(fx_daemon *d) {
  if (d->pid > 0) {
    int status;
    kill(-d->pid, SIGKILL);
    ASSERT_EQ(waitpid(d->pid, &status, 0), d->pid);
    d->pid = -1;
    close(d->life);
  }
  if (d->drainer_running) {
    /* EOF comes once every process of the group is gone. */
    pthread_join(d->drainer, NULL);
    d->drainer_running = 0;
    close(d->fd);
    d->fd = -1;
  }
}

void fx_daemon_restart(fx_daemon *d) {
  fx_daemon_kill(d);
  /* The same port: the clients were told it. A listening socket leaves no TIME_WAIT behind, so this binds unless
   * another process took the port meanwhile. */
  for (int attempt = 0; attempt < 5; attempt++)
    if (spawn(d)) return;
  test__fail(__FILE__, __LINE__, "proxy daemon would not restart on port %d:\n%s", d->port, d->out);
}

const char *fx_daemon_output(fx_daemon *d) {
  static char copy[OUT_CAP + 1];
  pthread_mutex_lock(&d->mu);
  memcpy(copy, d->out, d->out_len + 1);
  pthread_mutex_unlock(&d->mu);
  return copy;
}

void fx_daemon_stop(fx_daemon *d) {
  if (d == NULL) return;
  fx_daemon_kill(d);
  pthread_mutex_destroy(&d->mu);
  pthread_cond_destroy(&d->cv);
  free(d);
}
