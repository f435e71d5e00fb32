/* apns-relay: GET /metrics (Prometheus text format 0.0.4) and GET /health, served by libmicrohttpd on the relay's
 * own loop. The daemon runs in external mode with epoll: its one epoll descriptor is watched by a uv_poll_t, and a
 * timer honours MHD_get_timeout; no thread, so the counters are read without locks. */
#include "relay.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct relay_metrics {
  struct MHD_Daemon *d;
  uv_poll_t poll;
  uv_timer_t timer;
  int port;
  int closing;
  metrics_text_cb cb;
  void *data;
};

static void run_daemon(relay_metrics *m);

static void on_poll(uv_poll_t *p, int status, int events) {
  (void)status;
  (void)events;
  run_daemon(p->data);
}

static void on_timer(uv_timer_t *t) {
  run_daemon(t->data);
}

static void run_daemon(relay_metrics *m) {
  if (m->closing) return;
  MHD_run(m->d);
  MHD_UNSIGNED_LONG_LONG ms;
  if (MHD_get_timeout(m->d, &ms) == MHD_YES)
    uv_timer_start(&m->timer, on_timer, ms, 0);
  else
    uv_timer_stop(&m->timer);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **state) {
  relay_metrics *m = cls;
  (void)version;
  (void)upload;
  (void)upload_size;
  (void)state;
  char buf[8192];
  int healthy = 0;
  unsigned code = MHD_HTTP_OK;
  size_t len;
  if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
    code = MHD_HTTP_METHOD_NOT_ALLOWED;
    len = (size_t)snprintf(buf, sizeof buf, "GET only\n");
  } else if (strcmp(url, "/metrics") == 0) {
    len = m->cb(m->data, buf, sizeof buf, &healthy);
  } else if (strcmp(url, "/health") == 0) {
    m->cb(m->data, buf, sizeof buf, &healthy);
    code = healthy ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE;
    len = (size_t)snprintf(buf, sizeof buf, "%s\n", healthy ? "ok" : "unavailable");
  } else {
    code = MHD_HTTP_NOT_FOUND;
    len = (size_t)snprintf(buf, sizeof buf, "not found: /metrics or /health\n");
  }
  struct MHD_Response *res = MHD_create_response_from_buffer(len, buf, MHD_RESPMEM_MUST_COPY);
  if (res == NULL) return MHD_NO;
  MHD_add_response_header(res, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
  enum MHD_Result rv = MHD_queue_response(conn, code, res);
  MHD_destroy_response(res);
  return rv;
}

relay_metrics *relay_metrics_start(uv_loop_t *loop, const char *hostport, metrics_text_cb cb, void *data) {
  char host[64];
  const char *colon = strrchr(hostport, ':');
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  if (colon == NULL || (size_t)(colon - hostport) >= sizeof host) {
    relay_log("error", NULL, "--metrics %s: IPv4 HOST:PORT wanted", hostport);
    return NULL;
  }
  snprintf(host, sizeof host, "%.*s", (int)(colon - hostport), hostport);
  if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
    relay_log("error", NULL, "--metrics %s: an IPv4 address wanted (127.0.0.1 keeps it on this machine)", hostport);
    return NULL;
  }
  sa.sin_port = htons((uint16_t)atoi(colon + 1));
  relay_metrics *m = calloc(1, sizeof *m);
  if (m == NULL) return NULL;
  m->cb = cb;
  m->data = data;
  m->d = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0, NULL, NULL, on_request, m, MHD_OPTION_SOCK_ADDR,
                          (struct sockaddr *)&sa, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
                          MHD_OPTION_CONNECTION_LIMIT, (unsigned)64, MHD_OPTION_END);
  if (m->d == NULL) {
    relay_log("error", NULL, "--metrics %s: cannot listen there", hostport);
    free(m);
    return NULL;
  }
  const union MHD_DaemonInfo *fd = MHD_get_daemon_info(m->d, MHD_DAEMON_INFO_EPOLL_FD);
  const union MHD_DaemonInfo *port = MHD_get_daemon_info(m->d, MHD_DAEMON_INFO_BIND_PORT);
  if (fd == NULL || port == NULL || uv_poll_init(loop, &m->poll, fd->epoll_fd) != 0) {
    relay_log("error", NULL, "--metrics %s: no epoll descriptor from libmicrohttpd", hostport);
    MHD_stop_daemon(m->d);
    free(m);
    return NULL;
  }
  m->port = port->port;
  uv_timer_init(loop, &m->timer);
  m->poll.data = m->timer.data = m;
  uv_poll_start(&m->poll, UV_READABLE, on_poll);
  run_daemon(m);
  return m;
}

int relay_metrics_port(const relay_metrics *m) {
  return m->port;
}

static void on_closed(uv_handle_t *h) {
  relay_metrics *m = h->data;
  if (--m->closing == 0) free(m);
}

void relay_metrics_stop(relay_metrics *m) {
  if (m == NULL) return;
  /* The poll handle lets go of the epoll descriptor before the daemon closes it. */
  m->closing = 2;
  uv_close((uv_handle_t *)&m->poll, on_closed);
  uv_close((uv_handle_t *)&m->timer, on_closed);
  MHD_stop_daemon(m->d);
}
