/* Writing a TCP socket without SIGPIPE (see sockout.h). */
#include "sockout.h"

#include "alloc.h"

#include <apns.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifdef MSG_NOSIGNAL
#define APNS__SEND_FLAGS (MSG_NOSIGNAL | MSG_DONTWAIT)
#else
#define APNS__SEND_FLAGS MSG_DONTWAIT /* macOS and older BSDs: SO_NOSIGPIPE is set at init instead */
#endif

int apns__sockout_init(apns__sockout *o, uv_stream_t *stream, apns__sockout_cb cb, void *data) {
  uv_os_fd_t fd;
  memset(o, 0, sizeof *o);
  o->dupfd = -1;
  o->cb = cb;
  o->data = data;
  o->loop = stream->loop;
  int rv = uv_fileno((uv_handle_t *)stream, &fd);
  if (rv < 0) return rv;
  o->fd = fd;
#if !defined(MSG_NOSIGNAL) && defined(SO_NOSIGPIPE)
  int one = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one) != 0) return -errno;
#endif
  return 0;
}

/* Frees what is kept; zeroed first while secret is set (the proxy handshake's credentials). */
static void release(apns__sockout *o) {
  if (o->secret && o->buf) apns__zero(o->buf, o->cap);
  apns__free(o->buf);
  o->buf = NULL;
  o->off = o->len = o->cap = 0;
}

static void free_given(const apns__sockout *o, uint8_t *buf, size_t len) {
  if (o->secret && buf) apns__zero(buf, len);
  apns__free(buf);
}

/* Writes from buf[off] on. Returns 0 when all is written, 1 when the socket is full, or the error. */
static int send_some(apns__sockout *o) {
  while (o->off < o->len) {
    ssize_t n = send(o->fd, o->buf + o->off, o->len - o->off, APNS__SEND_FLAGS);
    if (n >= 0) {
      o->off += (size_t)n;
      o->sent += (uint64_t)n;
      continue;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return 1;
    return -errno; /* libuv's codes are negated errno values on every platform with send() */
  }
  release(o);
  return 0;
}

static void wait_stop(apns__sockout *o) {
  if (o->waiting) uv_poll_stop(&o->poll);
  o->waiting = 0;
}

static void fail(apns__sockout *o, int err) {
  o->err = err;
  wait_stop(o);
  release(o);
}

static void on_writable(uv_poll_t *h, int status, int events) {
  apns__sockout *o = h->data;
  (void)events;
  /* libuv reports an error condition on the socket as UV_EBADF and stops the handle; send() tells the real one. */
  int rv = send_some(o);
  if (rv == 1 && status < 0) rv = status;
  if (rv == 1) return;
  if (rv < 0)
    fail(o, rv);
  else
    wait_stop(o);
  o->cb(o, rv);
}

static int wait_start(apns__sockout *o) {
  if (o->waiting) return 0;
  if (o->dupfd < 0) {
    /* A descriptor of its own: libuv watches each descriptor once, and the stream's is watched for reading. */
    int fd = fcntl(o->fd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) return -errno;
    int rv = uv_poll_init_socket(o->loop, &o->poll, fd);
    if (rv < 0) {
      close(fd);
      return rv;
    }
    o->dupfd = fd;
    o->poll.data = o;
    if (o->unref) uv_unref((uv_handle_t *)&o->poll);
  }
  int rv = uv_poll_start(&o->poll, UV_WRITABLE, on_writable);
  if (rv < 0) return rv;
  o->waiting = 1;
  return 0;
}

int apns__sockout_write(apns__sockout *o, uint8_t *buf, size_t len) {
  if (o->err) {
    free_given(o, buf, len);
    return o->err;
  }
  if (len == 0) {
    apns__free(buf);
    return 0;
  }
  o->queued += len;
  if (o->buf == NULL) {
    o->buf = buf;
    o->off = 0;
    o->len = o->cap = len;
  } else {
    /* Behind bytes still kept: append, compacting first. */
    if (o->off > 0) {
      memmove(o->buf, o->buf + o->off, o->len - o->off);
      o->len -= o->off;
      o->off = 0;
    }
    if (len > o->cap - o->len) {
      size_t cap = o->cap;
      while (len > cap - o->len) cap = cap > SIZE_MAX / 2 ? SIZE_MAX : cap * 2;
      uint8_t *p = apns__realloc(o->buf, cap);
      if (p == NULL) {
        free_given(o, buf, len);
        o->queued -= len;
        return APNS_ENOMEM;
      }
      o->buf = p;
      o->cap = cap;
    }
    memcpy(o->buf + o->len, buf, len);
    o->len += len;
    free_given(o, buf, len);
    return 0; /* the wait in progress takes these too */
  }
  int rv = send_some(o);
  if (rv == 1) rv = wait_start(o);
  if (rv < 0) fail(o, rv);
  return rv;
}

void apns__sockout_stop(apns__sockout *o) {
  wait_stop(o);
  release(o);
}

size_t apns__sockout_pending(const apns__sockout *o) {
  return o->len - o->off;
}

uint64_t apns__sockout_queued(const apns__sockout *o) {
  return o->queued;
}

uint64_t apns__sockout_sent(const apns__sockout *o) {
  return o->sent;
}

int apns__sockout_close(apns__sockout *o, uv_close_cb close_cb) {
  release(o);
  o->waiting = 0;
  if (o->dupfd < 0) return 0;
  /* uv_close stops the watcher at once (the descriptor leaves epoll now), so ours may close right away: the
   * socket itself goes with the stream's descriptor. */
  uv_close((uv_handle_t *)&o->poll, close_cb);
  close(o->dupfd);
  o->dupfd = -1;
  return 1;
}
