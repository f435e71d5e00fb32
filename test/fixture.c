/* Shared pieces of the loop tests (see fixture.h). */
#include "fixture.h"

#include "alloc.h"
#include "sockout.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <mbedtls/ecp.h>
#include <mbedtls/pk.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

void fx_record(int err, const apns_response *res, void *data) {
  fx_rec *r = data;
  r->calls++;
  if (r->calls != 1) test__fail(__FILE__, __LINE__, "a request ended %d times", r->calls);
  ASSERT_NOT_NULL(res);
  r->err = err;
  r->status = res->status;
  r->reason = res->reason;
  r->delivery = res->delivery;
  r->attempts = res->attempts;
  r->timestamp_ms = res->timestamp_ms;
  if (res->apns_id) snprintf(r->apns_id, sizeof r->apns_id, "%s", res->apns_id);
  snprintf(r->error_text, sizeof r->error_text, "%s", res->error_text ? res->error_text : "");
  if (r->loop) r->t_end = uv_now(r->loop);
  if (r->counter) (*r->counter)++;
}

void fx_certs(apns__certgen_result *out, int other_ca) {
  apns__certgen_options o;
  char err[256] = "";
  memset(&o, 0, sizeof o);
  o.other_ca = other_ca;
  int rv = apns__certgen(&o, out, err, sizeof err);
  if (rv != 0) test__fail(__FILE__, __LINE__, "certgen: %s", err);
}

void fx_mock_options(apns_mock_options *o, const apns__certgen_result *c, int require_client_cert) {
  apns_mock_options_init(o);
  o->cert_pem = c->server_cert;
  o->key_pem = c->server_key;
  if (require_client_cert) o->ca_pem = c->ca_cert;
}

apns_mock *fx_mock_start(uv_loop_t *loop, const apns_mock_options *o) {
  apns_mock *m = NULL;
  char err[256] = "";
  int rv = apns_mock_start(&m, loop, o, err, sizeof err);
  if (rv != 0) test__fail(__FILE__, __LINE__, "apns_mock_start: %s (%s)", apns_strerror(rv), err);
  ASSERT_GT(apns_mock_port(m), 0);
  return m;
}

void fx_mock_stop_and_close_loop(uv_loop_t *loop, apns_mock *mock) {
  if (mock) apns_mock_stop(mock, NULL, NULL);
  uv_run(loop, UV_RUN_DEFAULT);
  ASSERT_EQ(uv_loop_close(loop), 0);
}

void fx_ec_key_pem(char *pem, size_t cap) {
  mbedtls_pk_context pk;
  mbedtls_pk_init(&pk);
  ASSERT_EQ(mbedtls_pk_setup(&pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)), 0);
  ASSERT_EQ(mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(pk), apns__certgen_rng, NULL), 0);
  ASSERT_EQ(mbedtls_pk_write_key_pem(&pk, (unsigned char *)pem, cap), 0);
  mbedtls_pk_free(&pk);
}

const char *fx_tmp_file(const char *name, const char *text) {
  static char paths[16][600];
  static int next;
  char *p = paths[next++ % 16];
  snprintf(p, 600, "%s/%s", test_tmpdir(), name);
  FILE *f = fopen(p, "w");
  ASSERT_NOT_NULL(f);
  fputs(text, f);
  ASSERT_EQ(fclose(f), 0);
  return p;
}

const apns_tls_options *fx_tls_client(apns_tls_options *t, const apns__certgen_result *c) {
  apns_tls_options_init(t);
  t->ca_pem = c->ca_cert;
  t->cert_pem = c->client_cert;
  t->key_pem = c->client_key;
  t->verify_name = "localhost";
  return t;
}

void fx_run_until(uv_loop_t *loop, const int *flag) {
  while (!*flag) {
    if (uv_run(loop, UV_RUN_ONCE) == 0 && !*flag) test__fail(__FILE__, __LINE__, "the loop ran dry while waiting");
  }
}

void fx_run_until_count(uv_loop_t *loop, const int *counter, int target) {
  while (*counter < target) {
    if (uv_run(loop, UV_RUN_ONCE) == 0 && *counter < target)
      test__fail(__FILE__, __LINE__, "the loop ran dry at %d of %d", *counter, target);
  }
}

void fx_request(apns_request *r, const char *token, uint64_t timeout_ms) {
  static char path[300];
  static const apns_header headers[] = {
      {"apns-push-type", "alert"},
      {"apns-topic", "com.example.app"},
  };
  static const char body[] = "{\"aps\":{\"alert\":\"hello\"}}";
  snprintf(path, sizeof path, "/3/device/%s", token);
  apns_request_init(r);
  r->path = path;
  r->headers = headers;
  r->num_headers = 2;
  r->body = body;
  r->body_len = sizeof body - 1;
  r->timeout_ms = timeout_ms;
}

int fx_mock_fork(const apns_mock_options *o, pid_t *pid) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  fflush(stdout);
  fflush(stderr);
  *pid = fork();
  ASSERT_GE(*pid, 0);
  if (*pid == 0) {
    uv_loop_t loop;
    close(fds[0]);
    test_alloc_reset();
    if (uv_loop_init(&loop) != 0) _exit(3);
    apns_mock *m = fx_mock_start(&loop, o);
    int port = apns_mock_port(m);
    if (write(fds[1], &port, sizeof port) != (ssize_t)sizeof port) _exit(4);
    close(fds[1]);
    uv_run(&loop, UV_RUN_DEFAULT);
    _exit(0);
  }
  close(fds[1]);
  int port = 0;
  ASSERT_EQ(read(fds[0], &port, sizeof port), (ssize_t)sizeof port);
  close(fds[0]);
  return port;
}

void fx_mock_kill(pid_t pid) {
  int status;
  kill(pid, SIGKILL);
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
}

/* ---- a child process with its output collected ---- */

void fx_buf_add(fx_buf *b, const char *p, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (b->len + n + 1 > cap) cap *= 2;
    b->p = realloc(b->p, cap);
    ASSERT_NOT_NULL(b->p);
    b->cap = cap;
  }
  memcpy(b->p + b->len, p, n);
  b->len += n;
  b->p[b->len] = '\0';
}

const char *fx_buf_text(const fx_buf *b) {
  return b->p ? b->p : "";
}

static void child_closed(uv_handle_t *h) {
  fx_child *c = h->data;
  if (--c->open > 0) return;
  /* No child (apns-push, apns-mock, apns-relay, the examples) may print a key or a token the run made: with
   * APNS_TEST_SECRETS on, every child's whole output is searched for them here, as the runner does the test's. */
  test_secrets_assert_absent("a child's stdout", fx_buf_text(&c->out));
  test_secrets_assert_absent("a child's stderr", fx_buf_text(&c->err));
  c->done = 1;
  if (c->on_done) c->on_done(c);
}

static void child_exited(uv_process_t *p, int64_t status, int sig) {
  fx_child *c = p->data;
  c->exited = 1;
  c->status = status;
  c->term_signal = sig;
  uv_close((uv_handle_t *)p, child_closed);
  if (c->kill_after_ms > 0) uv_close((uv_handle_t *)&c->deadline, child_closed);
}

static void child_deadline(uv_timer_t *t) {
  fx_child *c = t->data;
  c->killed = 1;
  ASSERT_EQ(uv_process_kill(&c->proc, SIGKILL), 0);
}

/* Reads are copied out at once, so one buffer serves every pipe of every child. */
static void child_alloc(uv_handle_t *h, size_t n, uv_buf_t *b) {
  static char space[65536];
  (void)h, (void)n;
  *b = uv_buf_init(space, sizeof space);
}

static void child_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  fx_child *c = s->data;
  int from_err = s == (uv_stream_t *)&c->err_pipe;
  if (n > 0) {
    fx_buf_add(from_err ? &c->err : &c->out, b->base, (size_t)n);
    if (c->on_output) c->on_output(c, from_err, b->base, (size_t)n);
  }
  int hang_up = from_err ? c->hang_up_stderr : c->hang_up_stdout;
  if ((n < 0 || (n > 0 && hang_up)) && !uv_is_closing((uv_handle_t *)s)) uv_close((uv_handle_t *)s, child_closed);
}

static void child_stdin_shut(uv_shutdown_t *r, int status) {
  fx_child *c = r->data;
  (void)status; /* a child that exits without reading all of it is not our failure */
  uv_close((uv_handle_t *)&c->in_pipe, child_closed);
}

static void child_stdin_wrote(uv_write_t *w, int status) {
  fx_child *c = w->data;
  if (status != 0) { /* the child went away before reading it all */
    uv_close((uv_handle_t *)&c->in_pipe, child_closed);
    return;
  }
  c->sreq.data = c;
  ASSERT_EQ(uv_shutdown(&c->sreq, (uv_stream_t *)&c->in_pipe, child_stdin_shut), 0);
}

int fx_child_try_start(fx_child *c, uv_loop_t *loop, const char *const *argv) {
  uv_process_options_t po;
  uv_stdio_container_t stdio[3];
  int fd = -1, piped_in = c->input != NULL || c->keep_stdin;
  memset(&po, 0, sizeof po);
  c->proc.data = c->in_pipe.data = c->out_pipe.data = c->err_pipe.data = c;
  c->open = 2; /* the process and stdout */
  ASSERT_EQ(uv_pipe_init(loop, &c->out_pipe, 0), 0);
  if (piped_in) {
    ASSERT_EQ(uv_pipe_init(loop, &c->in_pipe, 0), 0);
    c->open++;
    stdio[0].flags = UV_CREATE_PIPE | UV_READABLE_PIPE;
    stdio[0].data.stream = (uv_stream_t *)&c->in_pipe;
  } else if (c->stdin_file) {
    fd = open(c->stdin_file, O_RDONLY);
    if (fd < 0) test__fail(__FILE__, __LINE__, "%s: %s", c->stdin_file, strerror(errno));
    stdio[0].flags = UV_INHERIT_FD;
    stdio[0].data.fd = fd;
  } else {
    stdio[0].flags = UV_IGNORE;
  }
  stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
  stdio[1].data.stream = (uv_stream_t *)&c->out_pipe;
  if (c->stderr_fd > 0) {
    stdio[2].flags = UV_INHERIT_FD;
    stdio[2].data.fd = c->stderr_fd;
  } else {
    ASSERT_EQ(uv_pipe_init(loop, &c->err_pipe, 0), 0);
    c->open++;
    stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[2].data.stream = (uv_stream_t *)&c->err_pipe;
  }
  po.file = argv[0];
  po.args = (char **)argv;
  po.env = c->env;
  po.stdio = stdio;
  po.stdio_count = 3;
  po.exit_cb = child_exited;
  int rv = uv_spawn(loop, &c->proc, &po);
  if (fd >= 0) close(fd);
  if (rv != 0) {
    /* No process, but libuv made the handle all the same: it and the pipes close on the loop, and done says
     * when. */
    c->exited = 1;
    uv_close((uv_handle_t *)&c->proc, child_closed);
    uv_close((uv_handle_t *)&c->out_pipe, child_closed);
    if (piped_in) uv_close((uv_handle_t *)&c->in_pipe, child_closed);
    if (c->stderr_fd <= 0) uv_close((uv_handle_t *)&c->err_pipe, child_closed);
    return rv;
  }
  if (c->kill_after_ms > 0) {
    c->deadline.data = c;
    ASSERT_EQ(uv_timer_init(loop, &c->deadline), 0);
    ASSERT_EQ(uv_timer_start(&c->deadline, child_deadline, c->kill_after_ms, 0), 0);
    c->open++;
  }
  ASSERT_EQ(uv_read_start((uv_stream_t *)&c->out_pipe, child_alloc, child_read), 0);
  if (c->stderr_fd <= 0) ASSERT_EQ(uv_read_start((uv_stream_t *)&c->err_pipe, child_alloc, child_read), 0);
  if (c->input) {
    uv_buf_t b = uv_buf_init((char *)c->input, (unsigned)strlen(c->input));
    c->wreq.data = c;
    ASSERT_EQ(uv_write(&c->wreq, (uv_stream_t *)&c->in_pipe, &b, 1, child_stdin_wrote), 0);
  }
  return 0;
}

void fx_child_start(fx_child *c, uv_loop_t *loop, const char *const *argv) {
  int rv = fx_child_try_start(c, loop, argv);
  if (rv != 0) test__fail(__FILE__, __LINE__, "cannot run %s: %s", argv[0], uv_strerror(rv));
}

void fx_child_wait(fx_child *c, uv_loop_t *loop) {
  if (c->keep_stdin && c->input == NULL && !uv_is_closing((uv_handle_t *)&c->in_pipe))
    uv_close((uv_handle_t *)&c->in_pipe, child_closed);
  fx_run_until(loop, &c->done);
}

int fx_child_run(fx_child *c, const char *const *argv) {
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  fx_child_start(c, &loop, argv);
  fx_child_wait(c, &loop);
  ASSERT_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
  ASSERT_EQ(uv_loop_close(&loop), 0);
  if (c->killed)
    test__fail(__FILE__, __LINE__, "%s ran past %llu ms and was killed:\n%s%s", argv[0],
               (unsigned long long)c->kill_after_ms, fx_child_out(c), fx_child_err(c));
  if (c->term_signal)
    test__fail(__FILE__, __LINE__, "%s died of signal %d:\n%s", argv[0], c->term_signal, fx_child_err(c));
  return (int)c->status;
}

const char *fx_child_out(const fx_child *c) {
  return fx_buf_text(&c->out);
}

const char *fx_child_err(const fx_child *c) {
  return fx_buf_text(&c->err);
}

void fx_child_free(fx_child *c) {
  free(c->out.p);
  free(c->err.p);
  c->out = c->err = (fx_buf){0};
}

/* ---- the relay ---- */

typedef struct fx_pipe fx_pipe;
struct fx_proxy {
  uv_loop_t *loop;
  uv_tcp_t server;
  int target_port, port, frozen, held, stopping, open;
  fx_pipe *pipes;
};

/* Its writes go through sockout.c, as the library's do: the tests run with SIGPIPE at its default. */
struct fx_pipe {
  fx_proxy *proxy;
  uv_tcp_t a, b; /* a: accepted from the client, b: to the server */
  apns__sockout out_a, out_b;
  int ready; /* both connected, both outs initialized */
  uv_connect_t connect;
  int closing, handles;
  fx_pipe *next;
};

static void pipe_closed(uv_handle_t *h) {
  fx_pipe *pp = h->data;
  fx_proxy *p = pp->proxy;
  if (--pp->handles > 0) return;
  for (fx_pipe **it = &p->pipes; *it; it = &(*it)->next)
    if (*it == pp) {
      *it = pp->next;
      break;
    }
  free(pp);
  if (--p->open == 0 && p->stopping) free(p);
}

static void pipe_out_closed(uv_handle_t *h) {
  fx_pipe *pp = ((apns__sockout *)h->data)->data;
  pipe_closed((uv_handle_t *)&pp->a);
}

static void pipe_close(fx_pipe *pp) {
  if (pp->closing) return;
  pp->closing = 1;
  if (pp->ready) {
    pp->handles += apns__sockout_close(&pp->out_a, pipe_out_closed);
    pp->handles += apns__sockout_close(&pp->out_b, pipe_out_closed);
  }
  uv_close((uv_handle_t *)&pp->a, pipe_closed);
  uv_close((uv_handle_t *)&pp->b, pipe_closed);
}

static void relay_out(apns__sockout *o, int status) {
  if (status < 0) pipe_close(o->data);
}

static void relay_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf) {
  (void)h;
  buf->base = apns__malloc(size);
  buf->len = buf->base ? size : 0;
}

static void relay_read(uv_stream_t *from, ssize_t n, const uv_buf_t *buf) {
  fx_pipe *pp = from->data;
  apns__sockout *to = from == (uv_stream_t *)&pp->a ? &pp->out_b : &pp->out_a;
  if (n < 0) {
    apns__free(buf->base);
    pipe_close(pp);
    return;
  }
  if (n == 0 || pp->proxy->frozen || pp->closing) {
    apns__free(buf->base); /* frozen: the bytes are lost, as if the peer never answered */
    return;
  }
  if (apns__sockout_write(to, (uint8_t *)buf->base, (size_t)n) != 0) pipe_close(pp);
}

static void relay_connected(uv_connect_t *c, int status) {
  fx_pipe *pp = c->data;
  if (status < 0 || pp->closing) {
    pipe_close(pp);
    return;
  }
  if (apns__sockout_init(&pp->out_a, (uv_stream_t *)&pp->a, relay_out, pp) != 0 ||
      apns__sockout_init(&pp->out_b, (uv_stream_t *)&pp->b, relay_out, pp) != 0) {
    pipe_close(pp);
    return;
  }
  pp->ready = 1;
  if (!pp->proxy->held) uv_read_start((uv_stream_t *)&pp->a, relay_alloc, relay_read);
  uv_read_start((uv_stream_t *)&pp->b, relay_alloc, relay_read);
}

static void relay_accept(uv_stream_t *server, int status) {
  fx_proxy *p = server->data;
  if (status < 0) return;
  fx_pipe *pp = calloc(1, sizeof *pp);
  pp->proxy = p;
  uv_tcp_init(p->loop, &pp->a);
  uv_tcp_init(p->loop, &pp->b);
  pp->a.data = pp->b.data = pp->connect.data = pp;
  pp->handles = 2;
  pp->next = p->pipes;
  p->pipes = pp;
  p->open++;
  if (uv_accept(server, (uv_stream_t *)&pp->a) != 0) {
    pipe_close(pp);
    return;
  }
  struct sockaddr_in addr;
  uv_ip4_addr("127.0.0.1", p->target_port, &addr);
  if (uv_tcp_connect(&pp->connect, &pp->b, (const struct sockaddr *)&addr, relay_connected) != 0) pipe_close(pp);
}

static void proxy_server_closed(uv_handle_t *h) {
  fx_proxy *p = h->data;
  if (--p->open == 0) free(p);
}

fx_proxy *fx_proxy_start(uv_loop_t *loop, int target_port) {
  fx_proxy *p = calloc(1, sizeof *p);
  struct sockaddr_in addr;
  int len = sizeof addr;
  p->loop = loop;
  p->target_port = target_port;
  p->open = 1; /* the listener */
  ASSERT_EQ(uv_tcp_init(loop, &p->server), 0);
  p->server.data = p;
  uv_ip4_addr("127.0.0.1", 0, &addr);
  ASSERT_EQ(uv_tcp_bind(&p->server, (const struct sockaddr *)&addr, 0), 0);
  ASSERT_EQ(uv_listen((uv_stream_t *)&p->server, 16, relay_accept), 0);
  ASSERT_EQ(uv_tcp_getsockname(&p->server, (struct sockaddr *)&addr, &len), 0);
  p->port = ntohs(addr.sin_port);
  return p;
}

int fx_proxy_port(const fx_proxy *p) {
  return p->port;
}

void fx_proxy_freeze(fx_proxy *p, int frozen) {
  p->frozen = frozen;
}

void fx_proxy_hold(fx_proxy *p, int hold) {
  p->held = hold;
  for (fx_pipe *pp = p->pipes; pp; pp = pp->next) {
    if (!pp->ready || pp->closing) continue;
    if (hold)
      uv_read_stop((uv_stream_t *)&pp->a);
    else
      uv_read_start((uv_stream_t *)&pp->a, relay_alloc, relay_read);
  }
}

void fx_proxy_reset(fx_proxy *p) {
  for (fx_pipe *pp = p->pipes; pp; pp = pp->next) {
    uv_os_fd_t fd;
    struct linger lg = {1, 0};
    if (pp->closing) continue;
    /* SO_LINGER 0: close() sends RST instead of FIN, and what the client still sends is answered with RST too. */
    if (uv_fileno((uv_handle_t *)&pp->a, &fd) == 0)
      ASSERT_EQ(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
    pipe_close(pp);
  }
}

void fx_proxy_stop(fx_proxy *p) {
  p->stopping = 1;
  for (fx_pipe *pp = p->pipes; pp; pp = pp->next) pipe_close(pp);
  uv_close((uv_handle_t *)&p->server, proxy_server_closed);
}

static void child_env(const char *const *set, const char *const *unset) {
  for (; set && *set; set++) {
    const char *eq = strchr(*set, '=');
    char name[256];
    size_t k = eq ? (size_t)(eq - *set) : 0;
    if (k == 0 || k >= sizeof name) _exit(126);
    memcpy(name, *set, k);
    name[k] = '\0';
    setenv(name, eq + 1, 1);
  }
  for (; unset && *unset; unset++) unsetenv(*unset);
}

int fx_run_self(const char *test, const char *const *set, const char *const *unset, char *out, size_t cap) {
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  ASSERT_GT(n, 0);
  self[n] = '\0';
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  fflush(stdout); /* or the child's copy of our buffer comes out twice */
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    dup2(fds[1], 1);
    dup2(fds[1], 2);
    close(fds[0]);
    child_env(set, unset);
    execl(self, self, "-j", "1", test, (char *)NULL);
    dprintf(2, "exec %s: %s\n", self, strerror(errno));
    _exit(127);
  }
  close(fds[1]);
  size_t len = 0;
  ssize_t r;
  while (len + 1 < cap && (r = read(fds[0], out + len, cap - 1 - len)) > 0) len += (size_t)r;
  out[len] = '\0';
  close(fds[0]);
  int status;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  return WEXITSTATUS(status);
}
