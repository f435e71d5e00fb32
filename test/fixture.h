/* Shared pieces of the loop tests: certificates made at run time, an in-process apns-mock on 127.0.0.1 with a
 * kernel-chosen port, client TLS options that trust it, and a recording response callback. */
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
