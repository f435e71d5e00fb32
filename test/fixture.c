/* Shared pieces of the loop tests (see fixture.h). */
#include "fixture.h"

#include <signal.h>
#include <string.h>
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

void fx_tls_client(apns_tls_options *t, const apns__certgen_result *c) {
  memset(t, 0, sizeof *t);
  t->ca_pem = c->ca_cert;
  t->cert_pem = c->client_cert;
  t->key_pem = c->client_key;
  t->verify_name = "localhost";
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
  memset(r, 0, sizeof *r);
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
