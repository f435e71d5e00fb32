/* Shared pieces of the loop tests: certificates made at run time, an in-process apns-mock on 127.0.0.1 with a
 * kernel-chosen port, client TLS options that trust it, a recording response callback, and child processes with
 * their output collected. */
#ifndef APNS_TEST_FIXTURE_H
#define APNS_TEST_FIXTURE_H

#include "harness.h"

#include "../tools/apns-mock/mock.h"
#include "certgen.h"
#include <apns.h>
#include <sys/types.h>
#include <uv.h>

/* One request's outcome, filled by fx_record. */
typedef struct {
  int calls; /* exactly-once: fx_record fails the test on a second call */
  int err;
  int status;
  apns_reason reason;
  apns_delivery delivery;
  unsigned attempts;
  int64_t timestamp_ms;
  char apns_id[40];
  char error_text[256]; /* res->error_text, or "" when NULL */
  uint64_t t_end;       /* uv_now of the callback */
  int *counter;         /* when set, incremented on each call */
  uv_loop_t *loop;
} fx_rec;

/* apns_response_cb that records into the fx_rec passed as data. */
void fx_record(int err, const apns_response *res, void *data);

/* Throwaway certificates (asserts success). other_ca adds an unrelated CA. Free with apns__certgen_free. */
void fx_certs(apns__certgen_result *out, int other_ca);

/* Mock options with TLS from the certificates; require_client_cert makes it ask for one signed by the CA. */
void fx_mock_options(apns_mock_options *o, const apns__certgen_result *c, int require_client_cert);
apns_mock *fx_mock_start(uv_loop_t *loop, const apns_mock_options *o);
/* Stops the mock and runs the loop until every handle is closed; asserts uv_loop_close() == 0. */
void fx_mock_stop_and_close_loop(uv_loop_t *loop, apns_mock *mock);

/* Runs apns-mock in a child process of its own (its own loop and allocator budget), for tests that starve this
 * process of memory. Returns the port; *pid is the child's (SIGKILL and reap it with fx_mock_kill). */
int fx_mock_fork(const apns_mock_options *o, pid_t *pid);
void fx_mock_kill(pid_t pid);

/* A child process (apns-push, apns-mock, openssl, curl, an example) with its stdout and stderr collected in
 * growing buffers, on the caller's loop. Zero the struct, set the options wanted, then fx_child_start: the loop
 * collects the output until the child has exited and both pipes have reached end of file (done). Buffers are
 * NUL-terminated as they grow; fx_child_free frees them (the handles are closed by then). */
typedef struct fx_buf {
  char *p; /* NULL until the first byte */
  size_t len, cap;
} fx_buf;
void fx_buf_add(fx_buf *b, const char *p, size_t n); /* appends, keeps a NUL after the end */
const char *fx_buf_text(const fx_buf *b);            /* "" while empty */

typedef struct fx_child fx_child;
struct fx_child {
  /* Options, read by fx_child_start (zero: the default given) */
  char **env;             /* the child's environment; NULL: this process's */
  const char *input;      /* written to the child's stdin through a pipe, then end of file */
  const char *stdin_file; /* without input: stdin read from this file; NULL: /dev/null */
  int keep_stdin;         /* without input: stdin a pipe held open until fx_child_wait (openssl s_server ends its
                           * connection when its stdin ends) */
  int stderr_fd;          /* > 0: the child's stderr is this descriptor (a file, the test's own 2), not collected */
  int hang_up_stdout;     /* close our end of stdout after its first bytes (a reader that goes away) */
  int hang_up_stderr;     /* the same for stderr */
  uint64_t kill_after_ms; /* > 0: SIGKILL once it has run this long (a bound for a command that could hang) */
  /* After each read of n bytes at p is added to out or err (from_stderr says which): to watch for a line, to echo
   * or sample the child. */
  void (*on_output)(fx_child *c, int from_stderr, const char *p, size_t n);
  void (*on_done)(fx_child *c); /* once done */
  void *data;
  /* Results */
  uv_process_t proc; /* proc.pid; uv_process_kill(&c->proc, signum) while it runs */
  fx_buf out, err;
  int exited;
  int64_t status;
  int term_signal;
  int done;   /* exited, and every pipe closed */
  int killed; /* kill_after_ms ran out */
  /* Inside */
  uv_pipe_t in_pipe, out_pipe, err_pipe;
  int open; /* handles not yet closed */
  uv_write_t wreq;
  uv_shutdown_t sreq;
  uv_timer_t deadline;
};

/* Starts argv[0] (a path; argv NULL-terminated). fx_child_start fails the test when it cannot; fx_child_try_start
 * returns the libuv error instead (UV_ENOENT: not installed), its handles then closing on the loop (done follows). */
void fx_child_start(fx_child *c, uv_loop_t *loop, const char *const *argv);
int fx_child_try_start(fx_child *c, uv_loop_t *loop, const char *const *argv);
/* Closes a kept stdin, then runs the loop until done (fails the test when the loop runs dry first). */
void fx_child_wait(fx_child *c, uv_loop_t *loop);
/* Starts and waits on a loop of its own (asserts it closes clean); fails the test when the child died of a
 * signal (kill_after_ms's included). Returns its exit status. */
int fx_child_run(fx_child *c, const char *const *argv);
/* What it wrote so far ("" before anything). */
const char *fx_child_out(const fx_child *c);
const char *fx_child_err(const fx_child *c);
void fx_child_free(fx_child *c);

/* Runs this test binary on one test (-j 1) in a child whose environment is this one's with each "NAME=VALUE" of
 * set (NULL-terminated, or NULL) put in and each NAME of unset taken out. Its stdout and stderr, together, fill out
 * (NUL-terminated, at most cap - 1 bytes). Returns its exit status; fails the test when it did not exit. For tests
 * of the runner itself, whose child must print what a test of fx_child would refuse. */
int fx_run_self(const char *test, const char *const *set, const char *const *unset, char *out, size_t cap);

/* A TCP relay on 127.0.0.1 between a client and a server, for faults the server would never make: frozen, it
 * stops forwarding in both directions (a peer that went silent without closing); held, it stops reading from the
 * client (whose writes then back up in its socket); reset, it closes the client's side with RST (SO_LINGER 0). */
typedef struct fx_proxy fx_proxy;
fx_proxy *fx_proxy_start(uv_loop_t *loop, int target_port);
int fx_proxy_port(const fx_proxy *p);
void fx_proxy_freeze(fx_proxy *p, int frozen);
void fx_proxy_hold(fx_proxy *p, int hold);
void fx_proxy_reset(fx_proxy *p); /* every relayed connection; the listener stays */
void fx_proxy_stop(fx_proxy *p);  /* closes everything; freed once the loop has run the close callbacks */

/* A fresh P-256 private key as PEM (SEC1, "BEGIN EC PRIVATE KEY"; the JWT signer reads it as it reads Apple's
 * PKCS#8 .p8) into pem (cap bytes), drawn from the support library's generator. Asserts success. */
void fx_ec_key_pem(char *pem, size_t cap);

/* Writes text to test_tmpdir()/name (replacing it) and returns the path; the path stays valid for the next 15
 * calls. */
const char *fx_tmp_file(const char *name, const char *text);

/* Client TLS options trusting the test CA, with the client certificate, verifying the name "localhost". The
 * strings point into c. */
const apns_tls_options *fx_tls_client(apns_tls_options *t, const apns__certgen_result *c);

/* Runs the loop one turn at a time until *flag becomes non-zero (asserts the loop did not run dry first). */
void fx_run_until(uv_loop_t *loop, const int *flag);
/* Runs until *counter reaches target. */
void fx_run_until_count(uv_loop_t *loop, const int *counter, int target);

/* A request for POST /3/device/<token> with a small alert payload. */
void fx_request(apns_request *r, const char *token, uint64_t timeout_ms);

#endif
