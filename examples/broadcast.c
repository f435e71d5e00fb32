/* Broadcast push for Live Activities from the command line: manage channels and broadcast updates to them.
 *
 *   broadcast [options] create [none|latest]       the new channel id on stdout
 *   broadcast [options] read ID                    "storage=none|latest push-type=LiveActivity"
 *   broadcast [options] delete ID
 *   broadcast [options] list                       the app's channel ids, one a line
 *   broadcast [options] update ID STATE_JSON       an "update" event with this content-state
 *   broadcast [options] end ID STATE_JSON          an "end" event (dismissed an hour later)
 * Options: --development (default: production), --p8 FILE --key-id ID --team-id ID or --cert FILE --key FILE,
 * --bundle ID (required), and for servers other than Apple's --host HOST:PORT (broadcasts),
 * --management-host HOST:PORT (channels), --ca FILE, --verify-name NAME; --expiration T for update and end
 * (UNIX seconds; default 0, which a channel made with "none" requires).
 * Exit status: 0 done, 1 refused or failed (the status and reason on stderr), 2 usage. */
#include <apns.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int exit_code = 1;
static apns_client *client;
static apns_channels *channels;

static void on_client_closed(apns_client *c) {
  (void)c;
}

static void on_channels_closed(apns_channels *ch) {
  (void)ch;
}

static void on_channel(apns_channels *ch, int err, const apns_channel_result *res, void *data) {
  (void)data;
  if (err)
    fprintf(stderr, "%s failed: %s (%s)\n", apns_channel_op_string(res->op), apns_strerror(err), apns_err_name(err));
  else if (!res->ok)
    fprintf(stderr, "%s refused: %d %s\n", apns_channel_op_string(res->op), res->status,
            res->response->reason_text ? res->response->reason_text : "");
  else {
    exit_code = 0;
    if (res->op == APNS_CHANNEL_CREATE) printf("%s\n", res->channel_id);
    if (res->op == APNS_CHANNEL_READ)
      printf("storage=%s push-type=%s\n", res->storage == APNS_CHANNEL_STORAGE_LATEST ? "latest" : "none",
             res->push_type);
    for (size_t i = 0; i < res->num_channels; i++) printf("%s\n", res->channels[i]);
  }
  apns_channels_close(ch, 0, on_channels_closed);
}

static void on_broadcast(int err, const apns_response *res, void *data) {
  (void)data;
  const char *rid = apns_response_header(res, "apns-request-id");
  if (err)
    fprintf(stderr, "broadcast failed: %s (%s)\n", apns_strerror(err), apns_err_name(err));
  else if (res->status != 200)
    fprintf(stderr, "broadcast refused: %d %s\n", res->status, res->reason_text ? res->reason_text : "");
  else {
    printf("broadcast, apns-request-id %s\n", rid ? rid : "-");
    exit_code = 0;
  }
  apns_client_close(client, 0, on_client_closed);
}

/* "host:port" into host (rewritten in place) and port. */
static int split_host(char *spec, const char **host, uint16_t *port) {
  char *colon = strrchr(spec, ':');
  *host = spec;
  *port = 0;
  if (colon != NULL) {
    *colon = '\0';
    long p = strtol(colon + 1, NULL, 10);
    if (p <= 0 || p > 65535) return -1;
    *port = (uint16_t)p;
  }
  return 0;
}

static int usage(const char *argv0) {
  fprintf(stderr,
          "usage: %s [--development] (--p8 FILE --key-id ID --team-id ID | --cert FILE --key FILE) --bundle ID\n"
          "          [--host HOST:PORT] [--management-host HOST:PORT] [--ca FILE] [--verify-name NAME]\n"
          "          [--expiration T] create [none|latest] | read ID | delete ID | list | update ID STATE | end "
          "ID STATE\n",
          argv0);
  return 2;
}

int main(int argc, char **argv) {
  static const struct option longopts[] = {{"development", no_argument, NULL, 'd'},
                                           {"p8", required_argument, NULL, 'p'},
                                           {"key-id", required_argument, NULL, 'i'},
                                           {"team-id", required_argument, NULL, 't'},
                                           {"cert", required_argument, NULL, 'c'},
                                           {"key", required_argument, NULL, 'k'},
                                           {"bundle", required_argument, NULL, 'b'},
                                           {"host", required_argument, NULL, 'H'},
                                           {"management-host", required_argument, NULL, 'M'},
                                           {"ca", required_argument, NULL, 'a'},
                                           {"verify-name", required_argument, NULL, 'v'},
                                           {"expiration", required_argument, NULL, 'e'},
                                           {NULL, 0, NULL, 0}};
  apns_client_options co;
  apns_tls_options co_tls = APNS_TLS_OPTIONS_INIT;
  apns_channels_options cho;
  apns_broadcast_options bo;
  apns_client_options_init(&co);
  co.tls = &co_tls;
  apns_channels_options_init(&cho);
  apns_broadcast_options_init(&bo);
  co.endpoint = APNS_ENDPOINT_PRODUCTION;
  int c;
  while ((c = getopt_long(argc, argv, "+", longopts, NULL)) != -1) {
    switch (c) {
    case 'd':
      co.endpoint = APNS_ENDPOINT_DEVELOPMENT;
      break;
    case 'p':
      co.token_key_file = optarg;
      break;
    case 'i':
      co.key_id = optarg;
      break;
    case 't':
      co.team_id = optarg;
      break;
    case 'c':
      co_tls.cert_file = optarg;
      break;
    case 'k':
      co_tls.key_file = optarg;
      break;
    case 'b':
      co.topic = optarg;
      break;
    case 'H':
      co.endpoint = APNS_ENDPOINT_CUSTOM;
      if (split_host(optarg, &co.host, &co.port) != 0) return usage(argv[0]);
      break;
    case 'M':
      if (split_host(optarg, &cho.host, &cho.port) != 0) return usage(argv[0]);
      break;
    case 'a':
      co_tls.ca_file = optarg;
      break;
    case 'v':
      co_tls.verify_name = optarg;
      break;
    case 'e':
      bo.expiration = strtoll(optarg, NULL, 10);
      break;
    default:
      return usage(argv[0]);
    }
  }
  if (optind >= argc || co.topic == NULL) return usage(argv[0]);
  const char *cmd = argv[optind], *id = optind + 1 < argc ? argv[optind + 1] : NULL;
  const char *state = optind + 2 < argc ? argv[optind + 2] : NULL;
  int is_send = strcmp(cmd, "update") == 0 || strcmp(cmd, "end") == 0;
  if ((strcmp(cmd, "read") == 0 || strcmp(cmd, "delete") == 0 || is_send) && id == NULL) return usage(argv[0]);
  if (is_send && state == NULL) return usage(argv[0]);

  uv_loop_t *loop = uv_default_loop();
  char err[256] = "";
  int rv;
  if (is_send) {
    /* A custom --host alone still names the management host of the default environment: say both. */
    if ((rv = apns_client_open(loop, &client, &co, err, sizeof err)) < 0) {
      fprintf(stderr, "%s: %s\n", apns_strerror(rv), err);
      return 2;
    }
    apns_notification *n;
    apns_notification_new(&n);
    apns_notification_set_timestamp(n, (int64_t)time(NULL));
    apns_notification_set_event(n, cmd);
    rv = apns_notification_set_content_state(n, state);
    if (rv == 0 && strcmp(cmd, "end") == 0) rv = apns_notification_set_dismissal_date(n, (int64_t)time(NULL) + 3600);
    if (rv == 0) rv = apns_client_broadcast(client, id, n, &bo, on_broadcast, NULL);
    apns_notification_free(n);
    if (rv < 0) {
      fprintf(stderr, "not sent: %s (%s)\n", apns_strerror(rv), apns_err_name(rv));
      apns_client_close(client, 0, on_client_closed);
      exit_code = 2;
    }
  } else {
    cho.client_options = &co;
    if (co.endpoint == APNS_ENDPOINT_CUSTOM && cho.host == NULL) {
      fprintf(stderr, "--host needs --management-host for channel commands\n");
      return 2;
    }
    if ((rv = apns_channels_open(loop, &channels, &cho, err, sizeof err)) < 0) {
      fprintf(stderr, "%s: %s\n", apns_strerror(rv), err);
      return 2;
    }
    if (strcmp(cmd, "create") == 0) {
      apns_channel_storage st =
          id && strcmp(id, "latest") == 0 ? APNS_CHANNEL_STORAGE_LATEST : APNS_CHANNEL_STORAGE_NONE;
      rv = id && strcmp(id, "latest") != 0 && strcmp(id, "none") != 0
               ? APNS_EINVAL
               : apns_channels_create(channels, st, NULL, on_channel, NULL);
    } else if (strcmp(cmd, "read") == 0) {
      rv = apns_channels_read(channels, id, NULL, on_channel, NULL);
    } else if (strcmp(cmd, "delete") == 0) {
      rv = apns_channels_delete(channels, id, NULL, on_channel, NULL);
    } else if (strcmp(cmd, "list") == 0) {
      rv = apns_channels_list(channels, NULL, on_channel, NULL);
    } else {
      rv = APNS_EINVAL;
    }
    if (rv < 0) {
      fprintf(stderr, "not sent: %s (%s)\n", apns_strerror(rv), apns_err_name(rv));
      apns_channels_close(channels, 0, on_channels_closed);
      exit_code = 2;
    }
  }
  uv_run(loop, UV_RUN_DEFAULT);
  uv_loop_close(loop);
  return exit_code;
}
