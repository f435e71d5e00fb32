/* apns-push: streaming the bulk input, line by line, on the loop.
 *
 * A regular file (or character device) is read with uv_fs_read in chunks (the thread pool does the blocking
 * read); a pipe or a terminal through a libuv stream. Either way the bytes go into one fixed buffer and complete
 * lines are handed to the caller, who may answer PUSH_LINE_PAUSE (the client's queue is full): reading then stops
 * until push_input_resume. Memory stays at the buffer's size whatever the input's length. */
#include "push.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BUF_CAP (4 * PUSH_MAX_LINE)

enum { IN_FILE, IN_PIPE, IN_TTY };

struct push_input {
  uv_loop_t *loop;
  int kind;
  uv_file fd;
  int own_fd;
  int64_t size;
  uv_fs_t req;
  union {
    uv_pipe_t pipe;
    uv_tty_t tty;
  } h;
  int reading; /* a uv_fs_read in flight, or the stream started */
  int paused;
  int eof;
  int ended;    /* on_end called */
  int skipping; /* inside a line longer than PUSH_MAX_LINE */
  int closing;
  int err;
  int in_pump;
  uint64_t lineno;
  uint64_t bytes;
  char *buf;
  size_t start, end;
  push_line_cb on_line;
  push_end_cb on_end;
  void *ctx;
};

static void pump(push_input *in);

static void finish(push_input *in) {
  if (in->ended) return;
  in->ended = 1;
  in->on_end(in->ctx, in->err);
}

static void maybe_free(push_input *in) {
  /* Freed once closed, no read is in flight (its callback still needs the struct) and pump() has returned (it
   * may have closed the input from inside, through on_end). */
  if (in->closing == 2 && !in->reading && !in->in_pump) {
    if (in->own_fd) close(in->fd);
    free(in->buf);
    free(in);
  }
}

static void on_fs_read(uv_fs_t *req) {
  push_input *in = req->data;
  ssize_t n = req->result;
  uv_fs_req_cleanup(req);
  in->reading = 0;
  if (in->closing) {
    maybe_free(in);
    return;
  }
  if (n < 0) {
    in->err = (int)n;
    in->eof = 1;
  } else if (n == 0) {
    in->eof = 1;
  } else {
    in->end += (size_t)n;
    in->bytes += (uint64_t)n;
  }
  pump(in);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  push_input *in = h->data;
  (void)suggested;
  *buf = uv_buf_init(in->buf + in->end, (unsigned)(BUF_CAP - in->end));
}

static void on_stream_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  push_input *in = s->data;
  (void)buf;
  if (n == 0) return;
  if (n < 0) {
    if (n != UV_EOF) in->err = (int)n;
    in->eof = 1;
    uv_read_stop(s);
    in->reading = 0;
  } else {
    in->end += (size_t)n;
    in->bytes += (uint64_t)n;
    if (in->end == BUF_CAP) { /* full: pump() makes room and starts again */
      uv_read_stop(s);
      in->reading = 0;
    }
  }
  pump(in);
}

/* Called from pump() only: a read that cannot start sets eof and err for pump to see. */
static void start_read(push_input *in) {
  if (in->reading || in->eof || in->closing) return;
  if (in->kind == IN_FILE) {
    uv_buf_t b = uv_buf_init(in->buf + in->end, (unsigned)(BUF_CAP - in->end));
    int rv = uv_fs_read(in->loop, &in->req, in->fd, &b, 1, -1, on_fs_read);
    if (rv < 0) {
      in->err = rv;
      in->eof = 1;
      return;
    }
    in->reading = 1;
  } else {
    int rv = uv_read_start((uv_stream_t *)&in->h, on_alloc, on_stream_read);
    if (rv < 0) {
      in->err = rv;
      in->eof = 1;
      return;
    }
    in->reading = 1;
  }
}

static void stop_read(push_input *in) {
  if (in->kind != IN_FILE && in->reading) {
    uv_read_stop((uv_stream_t *)&in->h);
    in->reading = 0;
  }
}

static int blank(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') return 0;
  return 1;
}

/* Hands one line (without its newline) to the caller. Returns 0 to go on, 1 to stop pumping. */
static int deliver(push_input *in, const char *text, size_t len, size_t consumed) {
  if (len > 0 && text[len - 1] == '\r') len--;
  in->lineno++;
  if (blank(text, len)) {
    in->start += consumed;
    return 0;
  }
  int r = in->on_line(in->ctx, text, len, in->lineno, 0);
  if (r == PUSH_LINE_PAUSE) {
    in->lineno--;
    in->paused = 1;
    stop_read(in);
    return 1;
  }
  in->start += consumed;
  if (r == PUSH_LINE_STOP) {
    in->eof = 1;
    stop_read(in);
    finish(in);
    return 1;
  }
  return 0;
}

static void pump(push_input *in) {
  if (in->in_pump) return; /* a line callback that resumes: the outer loop goes on */
  in->in_pump = 1;
  while (!in->paused && !in->ended && !in->closing) {
    char *p = in->buf + in->start;
    size_t avail = in->end - in->start;
    char *nl = memchr(p, '\n', avail);
    if (nl) {
      size_t len = (size_t)(nl - p);
      if (in->skipping) {
        in->skipping = 0;
        in->start += len + 1;
        continue;
      }
      if (len > PUSH_MAX_LINE) { /* found whole in one read, but too long all the same */
        in->lineno++;
        in->on_line(in->ctx, p, PUSH_MAX_LINE, in->lineno, 1);
        in->start += len + 1;
        continue;
      }
      if (deliver(in, p, len, len + 1)) break;
      continue;
    }
    if (in->eof) {
      if (avail > PUSH_MAX_LINE && !in->skipping) {
        in->lineno++;
        in->on_line(in->ctx, p, PUSH_MAX_LINE, in->lineno, 1);
      } else if (avail > 0 && !in->skipping) {
        if (deliver(in, p, avail, avail)) break;
      }
      in->start = in->end = 0;
      finish(in);
      break;
    }
    if (avail >= PUSH_MAX_LINE && !in->skipping) {
      in->lineno++;
      in->on_line(in->ctx, p, PUSH_MAX_LINE, in->lineno, 1);
      in->skipping = 1;
    }
    if (in->skipping) {
      in->start = in->end = 0;
    } else if (in->start > 0) {
      memmove(in->buf, p, avail);
      in->start = 0;
      in->end = avail;
    }
    start_read(in);
    if (in->eof && !in->reading) continue; /* the read could not start: end on the next round */
    break;
  }
  in->in_pump = 0;
  maybe_free(in);
}

int push_input_open(uv_loop_t *loop, const char *path, push_line_cb on_line, push_end_cb on_end, void *ctx,
                    push_input **out) {
  struct stat st;
  int rv;
  push_input *in = calloc(1, sizeof *in);
  *out = NULL;
  if (in == NULL) return UV_ENOMEM;
  in->buf = malloc(BUF_CAP);
  if (in->buf == NULL) {
    free(in);
    return UV_ENOMEM;
  }
  in->loop = loop;
  in->on_line = on_line;
  in->on_end = on_end;
  in->ctx = ctx;
  in->req.data = in;
  in->size = -1;
  if (strcmp(path, "-") == 0) {
    in->fd = 0;
  } else {
    in->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (in->fd < 0) {
      rv = -errno;
      goto fail;
    }
    in->own_fd = 1;
  }
  if (fstat(in->fd, &st) == 0 && S_ISREG(st.st_mode)) in->size = st.st_size;
  switch (uv_guess_handle(in->fd)) {
  case UV_FILE:
    in->kind = IN_FILE;
    break;
  case UV_NAMED_PIPE:
    in->kind = IN_PIPE;
    if ((rv = uv_pipe_init(loop, &in->h.pipe, 0)) < 0) goto fail;
    if ((rv = uv_pipe_open(&in->h.pipe, in->fd)) < 0) {
      uv_close((uv_handle_t *)&in->h, NULL);
      uv_run(loop, UV_RUN_NOWAIT);
      goto fail;
    }
    break;
  case UV_TTY:
    in->kind = IN_TTY;
    if ((rv = uv_tty_init(loop, &in->h.tty, in->fd, 1)) < 0) goto fail;
    break;
  default:
    rv = UV_EINVAL;
    goto fail;
  }
  in->h.pipe.data = in;
  *out = in;
  return 0;

fail:
  if (in->own_fd && in->fd >= 0) close(in->fd);
  free(in->buf);
  free(in);
  return rv;
}

void push_input_resume(push_input *in) {
  in->paused = 0;
  pump(in);
}

uint64_t push_input_bytes(const push_input *in) {
  return in->bytes;
}

int64_t push_input_size(const push_input *in) {
  return in->size;
}

static void on_closed(uv_handle_t *h) {
  push_input *in = h->data;
  in->closing = 2;
  maybe_free(in);
}

void push_input_close(push_input *in) {
  if (in == NULL || in->closing) return;
  in->closing = 1;
  if (in->kind == IN_FILE) {
    in->closing = 2;
    maybe_free(in);
  } else {
    in->reading = 0;
    uv_close((uv_handle_t *)&in->h, on_closed);
  }
}
