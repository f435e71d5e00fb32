/* apns-push: broadcast push (iOS 18 channels). `apns-push channel create|read|delete|list` manages the app's
 * channels through an apns_channels object on the management host; `--channel ID` broadcasts one notification with
 * apns_client_broadcast. Each prints one JSON line on stdout, every outside string in it escaped (bulk_json_string),
 * and with --dry-run the exact request instead, built by the library's own builders. */
#include "push.h"

#include "bulk.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- one JSON line ---- */

typedef struct line {
  char p[16384];
  size_t n;
  int overflow;
} line;

static void put(line *l, const char *s) {
  size_t k = strlen(s);
  if (l->n + k >= sizeof l->p) {
    l->overflow = 1;
    return;
  }
  memcpy(l->p + l->n, s, k);
  l->n += k;
}

static void put_str(line *l, const char *s) {
  size_t room = sizeof l->p - l->n;
  size_t k = bulk_json_string(l->p + l->n, room, s, s ? strlen(s) : 0);
  if (k >= room) {
    l->overflow = 1;
    return;
  }
  l->n += k;
}

static void put_member(line *l, const char *key, const char *value) {
  put(l, ",\"");
  put(l, key);
  put(l, "\":");
  put_str(l, value);
}

static void put_int(line *l, const char *key, long long v) {
  char num[48];
  snprintf(num, sizeof num, ",\"%s\":%lld", key, v);
  put(l, num);
}

/* Where the lines go: stdout, or --results. */
static int out_fd = 1;

/* Writes the bytes to out_fd, all of them (a long list goes out in pieces). */
static int write_all(const char *p, size_t n) {
  while (n > 0) {
    ssize_t k = write(out_fd, p, n);
    if (k < 0) return -1;
    p += k;
    n -= (size_t)k;
  }
  return 0;
}

static int emit(line *l) {
  if (l->overflow) return -1;
  put(l, "}\n");
  return l->overflow ? -1 : write_all(l->p, l->n);
}

static void put_failure(line *l, int err, const apns_response *res) {
  if (err != 0) {
    put_member(l, "error", apns_err_name(err));
    put_member(l, "message", res && res->error_text ? res->error_text : apns_strerror(err));
  } else {
    put_member(l, "reason", res->reason_text ? res->reason_text : apns_reason_string(res->reason));
  }
}

/* ---- the client options of the command line ---- */

/* apns_args_client's, on one connection: a channel command or a broadcast is one request. tls is the storage
 * co->tls points to: it must live until the open. */
static void client_options(const push_opts *o, apns_client_options *co, apns_tls_options *tls) {
  apns_args_client(&o->apns, co, tls);
  co->connections = 1;
}

/* ---- channel commands ---- */

typedef struct chan_run {
  int rc;
  int write_failed;
} chan_run;

static void on_channels_closed(apns_channels *ch) {
  (void)ch;
}

static void on_channel(apns_channels *ch, int err, const apns_channel_result *res, void *data) {
  chan_run *run = apns_channels_data(ch);
  static line l; /* 16 KiB: not on the stack of a callback */
  (void)data;
  l.n = 0;
  l.overflow = 0;
  put(&l, "{\"op\":");
  put_str(&l, apns_channel_op_string(res->op));
  if (res->status)
    put_int(&l, "status", res->status);
  else
    put(&l, ",\"status\":null");
  if (res->channel_id) put_member(&l, "channel_id", res->channel_id);
  if (err == 0 && res->ok && res->op == APNS_CHANNEL_READ) {
    put_int(&l, "message-storage-policy", (long long)res->storage);
    put_member(&l, "push-type", res->push_type);
  }
  if (err == 0 && res->ok && res->op == APNS_CHANNEL_LIST) {
    put(&l, ",\"channels\":[");
    for (size_t i = 0; i < res->num_channels; i++) {
      /* 10 000 ids do not fit one buffer: what is built goes out first (an id escaped is at most 6 * 255 bytes). */
      if (l.n > sizeof l.p - 2048) {
        if (write_all(l.p, l.n) != 0) run->write_failed = 1;
        l.n = 0;
      }
      if (i) put(&l, ",");
      put_str(&l, res->channels[i]);
    }
    put(&l, "]");
  }
  if (err != 0 || !res->ok) put_failure(&l, err, res->response);
  put_member(&l, "request_id", res->request_id);
  if (emit(&l) != 0) run->write_failed = 1;
  run->rc = err == 0 && res->ok && !run->write_failed ? PUSH_EXIT_OK : PUSH_EXIT_FAILED;
  apns_channels_close(ch, 0, on_channels_closed);
}

/* The bundle id of --topic: the liveactivity suffix off, as broadcasts take it off, so that one --topic serves
 * a push-to-start, the channel commands and the broadcasts alike. */
static const char *bundle_of(const char *topic, char *buf, size_t cap) {
  static const char sfx[] = ".push-type.liveactivity";
  size_t n = strlen(topic), k = sizeof sfx - 1;
  if (n <= k || n - k >= cap || strcmp(topic + n - k, sfx) != 0) return topic;
  memcpy(buf, topic, n - k);
  buf[n - k] = '\0';
  return buf;
}

/* --dry-run: the request that would be sent, on stdout. */
static int channel_dry_run(const apns_channel_request *req) {
  char text[2048];
  size_t k = push_dry_run_request(text, sizeof text, req->method, req->path, req->headers, req->num_headers, "body",
                                  req->body_len ? req->body : NULL, req->body_len);
  if (k >= sizeof text || write_all(text, k) != 0) return PUSH_EXIT_FAILED;
  return PUSH_EXIT_OK;
}

/* The one request of `apns-push channel OP`, answered in on_channel. */
static int channel_submit(apns_channels *ch, const push_opts *o) {
  apns_channel_request_options ro = APNS_CHANNEL_REQUEST_OPTIONS_INIT;
  ro.request_id = o->request_id;
  switch (o->channel_op) {
  case APNS_CHANNEL_CREATE:
    return apns_channels_create(ch, o->storage, &ro, on_channel, NULL);
  case APNS_CHANNEL_READ:
    return apns_channels_read(ch, o->channel_op_id, &ro, on_channel, NULL);
  case APNS_CHANNEL_DELETE:
    return apns_channels_delete(ch, o->channel_op_id, &ro, on_channel, NULL);
  default:
    return apns_channels_list(ch, &ro, on_channel, NULL);
  }
}

int push_channel_main(const push_opts *o, int fd) {
  apns_channel_request req;
  out_fd = fd;
  char bundle_buf[APNS_BUNDLE_ID_MAX + 1];
  const char *bundle = bundle_of(o->send.topic, bundle_buf, sizeof bundle_buf);
  int rv = apns_build_channel_request(o->channel_op, bundle, o->channel_op_id, o->storage, o->request_id, &req,
                                      sizeof req);
  if (rv == APNS_EBADTOPIC) {
    push_err("--topic \"%s\": not a bundle id (1 to %d letters, digits, '-', '.' or '_')", bundle,
             APNS_BUNDLE_ID_MAX);
    return PUSH_EXIT_USAGE;
  }
  if (rv < 0) {
    push_err("channel %s: %s", apns_channel_op_string(o->channel_op), apns_strerror(rv));
    return PUSH_EXIT_USAGE;
  }
  if (o->dry_run) return channel_dry_run(&req);

  uv_loop_t loop;
  if (uv_loop_init(&loop) != 0) {
    push_err("out of memory");
    return PUSH_EXIT_USAGE;
  }
  apns_client_options co;
  apns_tls_options tls;
  client_options(o, &co, &tls);
  apns_channels_options cho = APNS_CHANNELS_OPTIONS_INIT;
  cho.client_options = &co;
  cho.bundle_id = bundle;
  /* One apns-mock serves pushes and management alike: without --management-host, --host names both. */
  if (o->manage_host) {
    cho.host = o->manage_host;
    cho.port = o->manage_port;
  } else if (o->apns.endpoint == APNS_ENDPOINT_CUSTOM) {
    cho.host = o->apns.host;
    cho.port = o->apns.port;
  }
  chan_run run = {PUSH_EXIT_FAILED, 0};
  cho.data = &run;
  apns_channels *ch = NULL;
  char errbuf[512] = "";
  rv = apns_channels_open(&loop, &ch, &cho, errbuf, sizeof errbuf);
  if (rv < 0) {
    push_err("%s (%s)", errbuf[0] ? errbuf : apns_strerror(rv), apns_err_name(rv));
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return PUSH_EXIT_USAGE;
  }
  if (o->apns.insecure) push_err("warning: --insecure: the server's certificate is not verified");
  rv = channel_submit(ch, o);
  if (rv < 0) {
    push_err("channel %s: %s", apns_channel_op_string(o->channel_op), apns_strerror(rv));
    apns_channels_close(ch, 0, on_channels_closed);
    run.rc = PUSH_EXIT_USAGE;
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&loop) != 0) push_err("internal: handles left open at exit");
  if (run.write_failed) push_err("writing the result: failed");
  return run.rc;
}

/* ---- broadcast ---- */

typedef struct bc_run {
  const push_opts *o;
  apns_client *client;
  uint64_t t0_ns;
  int rc;
} bc_run;

static void on_client_closed(apns_client *c) {
  (void)c;
}

static void on_broadcast(int err, const apns_response *res, void *data) {
  bc_run *run = data;
  line l;
  /* The line of a bulk "channel" line (bulk_result_format): one format for both. */
  bulk_result br;
  memset(&br, 0, sizeof br);
  br.line = 1;
  br.channel = run->o->channel;
  br.status = err == 0 ? res->status : 0;
  br.reason = err == 0 && res->status != 200 ? (res->reason_text ? res->reason_text : "") : NULL;
  br.request_id = apns_response_header(res, "apns-request-id");
  br.unique_id = apns_response_header(res, "apns-unique-id");
  br.attempts = res->attempts;
  br.latency_ms = (double)(uv_hrtime() - run->t0_ns) / 1e6;
  if (err != 0) {
    br.error = apns_err_name(err);
    br.message = res->error_text ? res->error_text : apns_strerror(err);
  }
  l.overflow = 0;
  l.n = bulk_result_format(&br, l.p, sizeof l.p);
  if (l.n >= sizeof l.p) l.overflow = 1, l.n = 0;
  int werr = l.overflow ? -1 : write_all(l.p, l.n);
  run->rc = err == 0 && res->status == 200 && werr == 0 ? PUSH_EXIT_OK : PUSH_EXIT_FAILED;
  if (err == 0 && res->status != 200) { /* push_err escapes the server's text */
    push_err("broadcast refused: %d %s", res->status,
             res->reason_text ? res->reason_text : apns_reason_string(res->reason));
  } else if (err != 0) {
    push_err("broadcast failed: %s (%s)", res->error_text ? res->error_text : apns_strerror(err), apns_err_name(err));
  }
  apns_client_close(run->client, 0, on_client_closed);
}

/* The flag a broadcast's argument error points at. */
static const char *bc_flag_of(int rv) {
  switch (rv) {
  case APNS_EBADCHANNELID:
    return "--channel";
  case APNS_EBADTOPIC:
    return "--topic";
  case APNS_EBADPRIORITY:
    return "--priority";
  case APNS_EBADAPNSID:
    return "--request-id";
  case APNS_EINVAL:
    return "--expiration";
  default:
    return "payload";
  }
}

int push_broadcast_main(const push_opts *o, apns_notification *n, int fd) {
  apns_broadcast_options bo;
  out_fd = fd;
  apns_broadcast_options_init(&bo);
  bo.priority = o->send.priority;
  bo.expiration = o->send.has_expiration ? o->send.expiration : 0;
  bo.request_id = o->request_id;
  bo.timeout_ms = o->apns.timeout_ms;
  apns_broadcast_request br;
  int rv = apns_build_broadcast_request(o->send.topic, o->channel, &bo, &br, sizeof br);
  if (rv < 0) {
    push_err("%s: %s", bc_flag_of(rv), apns_strerror(rv));
    return PUSH_EXIT_USAGE;
  }
  const char *json;
  size_t len;
  rv = apns_notification_serialize(n, APNS_PAYLOAD_MAX_BROADCAST, &json, &len);
  if (rv == APNS_EPAYLOADTOOLARGE) {
    push_err("payload: %zu bytes, more than the %d a broadcast may carry", len, APNS_PAYLOAD_MAX_BROADCAST);
    return PUSH_EXIT_USAGE;
  }
  if (rv < 0) {
    push_err("payload: %s", apns_strerror(rv));
    return PUSH_EXIT_USAGE;
  }
  if (o->dry_run) {
    char small[8192], *text = small;
    size_t k =
        push_dry_run_request(small, sizeof small, NULL, br.path, br.headers, br.num_headers, "payload", json, len);
    if (k >= sizeof small) {
      if ((text = malloc(k + 1)) == NULL) return PUSH_EXIT_FAILED;
      push_dry_run_request(text, k + 1, NULL, br.path, br.headers, br.num_headers, "payload", json, len);
    }
    rv = write_all(text, k);
    if (text != small) free(text);
    return rv == 0 ? PUSH_EXIT_OK : PUSH_EXIT_FAILED;
  }

  uv_loop_t loop;
  if (uv_loop_init(&loop) != 0) {
    push_err("out of memory");
    return PUSH_EXIT_USAGE;
  }
  apns_client_options co;
  apns_tls_options tls;
  client_options(o, &co, &tls);
  bc_run run = {o, NULL, 0, PUSH_EXIT_FAILED};
  char errbuf[512] = "";
  apns_proxy_options *proxy = NULL;
  if (push_proxy(o, &proxy) != 0) {
    uv_loop_close(&loop);
    return PUSH_EXIT_USAGE;
  }
  co.proxy = proxy;
  rv = apns_client_open(&loop, &run.client, &co, errbuf, sizeof errbuf);
  apns_proxy_options_free(proxy);
  if (rv < 0) {
    push_err("%s (%s)", errbuf[0] ? errbuf : apns_strerror(rv), apns_err_name(rv));
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return PUSH_EXIT_USAGE;
  }
  if (o->apns.insecure) push_err("warning: --insecure: the server's certificate is not verified");
  run.t0_ns = uv_hrtime();
  rv = apns_client_broadcast(run.client, o->channel, n, &bo, on_broadcast, &run);
  if (rv < 0) {
    push_err("%s: %s", bc_flag_of(rv), apns_strerror(rv));
    apns_client_close(run.client, 0, on_client_closed);
    run.rc = PUSH_EXIT_USAGE;
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&loop) != 0) push_err("internal: handles left open at exit");
  return run.rc;
}
