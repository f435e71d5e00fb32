/* The aapns Quickstart, in C: one alert with a localized body (key "Hello World!", args foo and bar) and badge 42,
 * sent with immediate priority; prints the apns-id.
 *
 *   quickstart HOST[:PORT] CERT_FILE KEY_FILE DEVICE_TOKEN [CA_FILE [VERIFY_NAME]]
 *
 * Against Apple's development server: quickstart api.sandbox.push.apple.com cert.pem key.pem <token>
 * Against apns-mock (see README): quickstart 127.0.0.1:PORT DIR/client.pem DIR/client-key.pem <token> DIR/ca.pem
 * localhost (the mock's certificate names localhost; mbedTLS never matches an IP address). The topic comes from
 * APNS_TOPIC (default com.example.app). */
#include <apns.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int exit_code = 1;

static void on_closed(apns_client *client) {
  (void)client;
}

static void on_sent(int err, const apns_response *res, void *data) {
  apns_client *client = data;
  if (err)
    fprintf(stderr, "not sent: %s (%s)\n", apns_strerror(err), apns_err_name(err));
  else if (res->status != 200)
    fprintf(stderr, "rejected: %d %s\n", res->status, res->reason_text ? res->reason_text : "");
  else {
    printf("Sent push notification with ID %s\n", res->apns_id);
    exit_code = 0;
  }
  apns_client_close(client, 0, on_closed);
}

int main(int argc, char **argv) {
  /* A server that resets the connection while we write raises SIGPIPE, which kills a process by default: a
   * program that writes to sockets ignores it and takes the EPIPE error instead. */
  signal(SIGPIPE, SIG_IGN);
  if (argc < 5) {
    fprintf(stderr, "usage: %s HOST[:PORT] CERT_FILE KEY_FILE DEVICE_TOKEN [CA_FILE [VERIFY_NAME]]\n", argv[0]);
    return 2;
  }
  char host[256];
  snprintf(host, sizeof host, "%s", argv[1]);
  char *colon = strrchr(host, ':');
  uint16_t port = 443;
  if (colon) {
    *colon = '\0';
    port = (uint16_t)atoi(colon + 1);
  }

  apns_client_options o = APNS_CLIENT_OPTIONS_INIT;
  apns_tls_options tlso = APNS_TLS_OPTIONS_INIT;
  o.tls = &tlso;
  o.endpoint = APNS_ENDPOINT_CUSTOM;
  o.host = host;
  o.port = port;
  tlso.cert_file = argv[2];
  tlso.key_file = argv[3];
  tlso.ca_file = argc > 5 ? argv[5] : NULL;
  tlso.verify_name = argc > 6 ? argv[6] : NULL;
  o.topic = getenv("APNS_TOPIC") ? getenv("APNS_TOPIC") : "com.example.app";
  o.connections = 1;

  uv_loop_t *loop = uv_default_loop();
  apns_client *client;
  char err[512];
  int rv = apns_client_open(loop, &client, &o, err, sizeof err);
  if (rv) {
    fprintf(stderr, "%s: %s\n", apns_err_name(rv), err);
    return 2;
  }

  apns_notification *n;
  const char *args[] = {"foo", "bar"};
  if (apns_notification_new(&n) || apns_notification_set_alert_loc_key(n, "Hello World!") ||
      apns_notification_set_alert_loc_args(n, args, 2) || apns_notification_set_badge(n, 42))
    return 1;
  apns_send_options so = APNS_SEND_OPTIONS_INIT;
  so.priority = 10; /* Priority.immediately */
  rv = apns_client_send(client, argv[4], n, &so, on_sent, client);
  apns_notification_free(n);
  if (rv) {
    fprintf(stderr, "send: %s\n", apns_strerror(rv));
    apns_client_close(client, 0, on_closed);
  }
  uv_run(loop, UV_RUN_DEFAULT);
  uv_loop_close(loop);
  return rv ? 2 : exit_code;
}
