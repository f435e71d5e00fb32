/* aapns's low-level example, in C: one connection, and what to do when it is blocked.
 *
 *   conn HOST[:PORT] CERT_FILE KEY_FILE DEVICE_TOKEN [CA_FILE [VERIFY_NAME]]
 *
 * Sends ten notifications over one connection as fast as it takes them: a post that finds every stream the server
 * allows in use (or the connection not ready) returns APNS_EBLOCKED at once, and is tried again after the next
 * answer. The topic comes from APNS_TOPIC (default com.example.app). */
#include <apns.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { TOTAL = 10 };

static apns_request req = APNS_REQUEST_INIT;
static int posted, answered, accepted;

static void on_closed(apns_conn *conn) {
  (void)conn;
}

static void post_more(apns_conn *conn);

static void on_response(int err, const apns_response *res, void *data) {
  apns_conn *conn = data;
  answered++;
  if (err == 0 && res->status == 200)
    accepted++;
  else if (err == 0)
    printf("rejected: %d %s\n", res->status, res->reason_text ? res->reason_text : "");
  else
    printf("%s: %s\n", apns_err_name(err), apns_strerror(err)); /* Timeout, Closed, ... */
  if (answered == TOTAL) {
    printf("%d of %d accepted on one connection\n", accepted, TOTAL);
    apns_conn_close(conn, on_closed);
    return;
  }
  post_more(conn); /* a stream is free again */
}

static void post_more(apns_conn *conn) {
  while (posted < TOTAL) {
    int rv = apns_conn_post(conn, &req, on_response, conn);
    if (rv == APNS_EBLOCKED) return; /* the connection is busy: try again after an answer */
    if (rv != 0) {
      fprintf(stderr, "post: %s\n", apns_strerror(rv));
      apns_conn_close(conn, on_closed);
      return;
    }
    posted++;
  }
}

static void on_connect(apns_conn *conn, int status) {
  if (status != 0) {
    fprintf(stderr, "connect: %s: %s\n", apns_err_name(status), apns_conn_last_error(conn));
    apns_conn_close(conn, on_closed);
    return;
  }
  post_more(conn);
}

static void on_lost(apns_conn *conn, int err, const char *reason) {
  fprintf(stderr, "connection lost: %s %s\n", apns_strerror(err), reason ? reason : ""); /* no longer usable */
  apns_conn_close(conn, on_closed);
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
  static const char body[] = "{\"aps\":{\"alert\":{\"body\":\"Wakey-wakey, ham and bakey!\"}}}";
  static apns_header headers[2];
  headers[0] = (apns_header){"apns-push-type", "alert"};
  headers[1] = (apns_header){"apns-topic", topic};
  req.path = path;
  req.headers = headers;
  req.num_headers = 2;
  req.body = body;
  req.body_len = sizeof body - 1;
  req.timeout_ms = 10000;

  apns_conn_options o = APNS_CONN_OPTIONS_INIT;
  apns_tls_options tlso = APNS_TLS_OPTIONS_INIT;
  o.tls = &tlso;
  o.host = host;
  o.port = port;
  tlso.cert_file = argv[2];
  tlso.key_file = argv[3];
  tlso.ca_file = argc > 5 ? argv[5] : NULL;
  tlso.verify_name = argc > 6 ? argv[6] : NULL;
  o.on_connect = on_connect;
  o.on_lost = on_lost;

  uv_loop_t *loop = uv_default_loop();
  apns_conn *conn;
  char err[512];
  int rv = apns_conn_open(loop, &conn, &o, err, sizeof err);
  if (rv) {
    fprintf(stderr, "%s: %s\n", apns_err_name(rv), err);
    return 2;
  }
  uv_run(loop, UV_RUN_DEFAULT);
  uv_loop_close(loop);
  return accepted == TOTAL ? 0 : 1;
}
