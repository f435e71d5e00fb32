/* libapns internal: the output side of a connected TCP socket, written without ever raising SIGPIPE. Layer 3
 * (libuv), shared by the connection (conn.c), apns-mock and the tests' relay.
 *
 * libuv writes a stream with writev(), which raises SIGPIPE when the peer has reset the connection: that would kill
 * a process that embeds us and has not ignored the signal. So nothing of ours calls uv_write or uv_try_write on a
 * socket: bytes go out with send(MSG_NOSIGNAL) on the handle's own descriptor (SO_NOSIGPIPE where MSG_NOSIGNAL does
 * not exist). When the socket is full, the rest waits here, and a uv_poll_t on a dup() of the descriptor, watching
 * for writability only, says when to go on; libuv's own watcher of the stream (reading) is left untouched, and since
 * libuv then never holds bytes of ours, it never writes on its own either.
 *
 * The owner keeps the uv_tcp_t; close this (apns__sockout_close) before or together with it, in the same call. */
#ifndef APNS_LIB_SOCKOUT_H
#define APNS_LIB_SOCKOUT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct apns__sockout apns__sockout;

/* Everything queued has been written (status 0), or a write failed (a negative libuv code: UV_EPIPE,
 * UV_ECONNRESET, ...; nothing more will be written). Runs from the loop, never inside apns__sockout_write. */
typedef void (*apns__sockout_cb)(apns__sockout *out, int status);

struct apns__sockout {
  uv_poll_t poll; /* on dupfd, for UV_WRITABLE; initialized at the first wait */
  uv_loop_t *loop;
  int fd;       /* the stream's descriptor (the stream owns it) */
  int dupfd;    /* ours, -1 until the first wait */
  uint8_t *buf; /* bytes not yet taken by the socket: buf[off, len) */
  size_t off, len, cap;
  uint64_t queued; /* bytes ever given to apns__sockout_write */
  uint64_t sent;   /* bytes the socket took */
  int err;         /* the write error, once there was one */
  /* Set while the bytes written may hold credentials (the proxy handshake): every buffer is zeroed before it is
   * freed. (A kept buffer that grows by realloc leaves its old copy unzeroed; the handshake never writes while
   * bytes are kept, since each message waits for the proxy's answer to the previous one.) */
  int secret;
  int waiting;
  int unref; /* the poll handle does not keep the loop alive (apns_conn_unref) */
  apns__sockout_cb cb;
  void *data; /* the owner's */
};

/* Takes the descriptor of a connected stream. Returns 0 or a libuv code. */
int apns__sockout_init(apns__sockout *out, uv_stream_t *stream, apns__sockout_cb cb, void *data);

/* Sends buf[0, len), which must come from apns__malloc: it is ours now (freed here or when written). What the
 * socket does not take at once is kept, in order, and written as the socket drains. Returns 0, the write error
 * (a negative libuv code; also for every later call) or APNS_ENOMEM. */
int apns__sockout_write(apns__sockout *out, uint8_t *buf, size_t len);

/* Bytes kept, not yet taken by the socket. */
size_t apns__sockout_pending(const apns__sockout *out);
/* Bytes ever given to apns__sockout_write, and those the socket took (a byte at offset >= sent never left). */
uint64_t apns__sockout_queued(const apns__sockout *out);
uint64_t apns__sockout_sent(const apns__sockout *out);

/* Drops what is kept and stops waiting (a connection given up on has nothing more to say; the wait would only keep
 * the loop alive). The callback does not run; later writes start afresh. */
void apns__sockout_stop(apns__sockout *out);

/* Drops what is kept and stops waiting. Returns 1 when close_cb will run for out->poll (handle->data is out), 0
 * when there is no handle to close. */
int apns__sockout_close(apns__sockout *out, uv_close_cb close_cb);

#endif
