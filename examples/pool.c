/* aapns's mid-level example, in C: a pool of connections, a generic request, and what each outcome means.
 *
 *   pool HOST[:PORT] CERT_FILE KEY_FILE DEVICE_TOKEN [CA_FILE [VERIFY_NAME]]
 *
 * The pool keeps its connections up, queues what finds no free stream, and retries with back-off until the
 * request's timeout. The topic comes from APNS_TOPIC (default com.example.app). */
#include <apns.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int exit_code = 1;

static void on_closed(apns_pool *pool) {
  (void)pool;
}

static void on_response(int err, const apns_response *res, void *data) {
  apns_pool *pool = data;
  if (err == 0 && res->status == 200) {
    printf("accepted, apns-id %s, after %u attempt(s)\n", res->apns_id, res->attempts);
    exit_code = 0;
  } else if (err == 0) {
    printf("rejected: %d %s\n", res->status, res->reason_text ? res->reason_text : "");
  } else if (err == APNS_ETIMEDOUT) {
    printf("the notification has expired (%u attempts)\n", res->attempts); /* aapns: Timeout */
  } else if (err == APNS_ECLOSED || err == APNS_ESTOPPED) {
    printf("the connection pool is done: %s\n", apns_strerror(err)); /* aapns: Closed */
  } else {
    printf("failed: %s\n", apns_strerror(err)); /* aapns: APNSError */
  }
  apns_pool_close(pool, 0, on_closed);
}

int main(int argc, char **argv) {
  /* A server that resets the connection while we write raises SIGPIPE, which kills a process by default: a
   * program that writes to sockets ignores it and takes the EPIPE error instead. */
  signal(SIGPIPE, SIG_IGN);
  if (argc < 5) {
    fprintf(stderr, "usage: %s HOST[:PORT] CERT_FILE KEY_FILE DEVICE_TOKEN [CA_FILE [VERIFY_NAME]]\n", argv[0]);
    return 2;
  }
  char host[256], path[300];
  snprintf(host, sizeof host, "%s", argv[1]);
  char *colon = strrchr(host, ':');
  uint16_t port = 443;
  if (colon) {
    *colon = '\0';
    port = (uint16_t)atoi(colon + 1);
  }
  snprintf(path, sizeof path, "/3/device/%s", argv[4]);
  const char *topic = getenv("APNS_TOPIC") ? getenv("APNS_TOPIC") : "com.example.app";

  apns_pool_options o = APNS_POOL_OPTIONS_INIT;
  apns_tls_options tlso = APNS_TLS_OPTIONS_INIT;
  o.tls = &tlso;
  o.host = host;
  o.port = port;
  tlso.cert_file = argv[2];
  tlso.key_file = argv[3];
  tlso.ca_file = argc > 5 ? argv[5] : NULL;
  tlso.verify_name = argc > 6 ? argv[6] : NULL;
  o.connections = 10; /* aapns's default */

  uv_loop_t *loop = uv_default_loop();
  apns_pool *pool;
  char err[512];
  int rv = apns_pool_open(loop, &pool, &o, err, sizeof err);
  if (rv) {
    fprintf(stderr, "%s: %s\n", apns_err_name(rv), err);
    return 2;
  }

  static const char body[] = "{\"aps\":{\"alert\":{\"body\":\"Wakey-wakey, ham and bakey!\"}}}";
  apns_header headers[] = {{"apns-push-type", "alert"}, {"apns-topic", topic}};
  apns_request req = APNS_REQUEST_INIT;
  req.path = path;
  req.headers = headers;
  req.num_headers = 2;
  req.body = body;
  req.body_len = sizeof body - 1;
  req.timeout_ms = 10000; /* or the pool may retry until the default, 10 s */
  rv = apns_pool_post(pool, &req, on_response, pool);
  if (rv) {
    fprintf(stderr, "post: %s\n", apns_strerror(rv));
    apns_pool_close(pool, 0, on_closed);
  }
  uv_run(loop, UV_RUN_DEFAULT);
  uv_loop_close(loop);
  return rv ? 2 : exit_code;
}
