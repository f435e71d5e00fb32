/* apns-push: what the command's parts share.
 *
 * args.c turns the command line into push_opts; request.c builds payloads and the --dry-run lines; input.c streams
 * the bulk input through libuv with back-pressure; report.c writes result lines, progress and the summary; main.c
 * runs it all on one loop (push_main; cli.c holds the process's main). Bulk lines are parsed and result lines
 * formatted by tools/common/bulk.c (shared with other bulk senders and the fuzz target). The sending uses only the
 * public API (<apns.h>, <apns/client.h>). */
#ifndef APNS_PUSH_H
#define APNS_PUSH_H

#include "apns_args.h"

#include <apns.h>
#include <apns/client.h>
#include <stdint.h>
#include <stdio.h>
#include <uv.h>

/* Exit statuses. */
#define PUSH_EXIT_OK 0     /* every notification accepted */
#define PUSH_EXIT_FAILED 1 /* any rejected, failed or bad line */
#define PUSH_EXIT_USAGE 2  /* usage or configuration error */

/* Longest bulk line accepted, in bytes (a 5 KiB voip payload, escaped, with every other field fits). */
#define PUSH_MAX_LINE (64 * 1024)

/* ---- main.c ---- */

/* The whole command: parses argv, runs, returns the exit status (PUSH_EXIT_*). cli.c's main() is this and the
 * SIGPIPE setting; the tests call it in-process (apns_push_test_dep in meson.build), their allocator counting. It
 * leaves no handle, allocation or open file behind, and may be called again. */
int push_main(int argc, char **argv);

/* ---- args.c ---- */

typedef struct push_data_kv {
  const char *key; /* points into argv (the '=' replaced by a NUL) */
  const char *json;
} push_data_kv;

typedef struct push_opts {
  /* The server, authentication, --connections, --timeout and --proxy are apns's (at the end). */
  /* request defaults (a bulk line may override each) */
  apns_send_options send;
  /* payload built from flags */
  const char *alert, *title, *subtitle, *sound, *category, *thread_id;
  int badge; /* -1: none */
  int content_available, mutable_content;
  push_data_kv *data;
  size_t num_data;
  /* what to do */
  const char *token;        /* single mode */
  const char *payload_json; /* single mode, optional */
  const char *bulk;         /* "-" for stdin */
  int dry_run;
  const char *results;   /* NULL: stdout */
  int progress;          /* -1: when stderr is a terminal */
  unsigned list_dead;    /* tokens to delete listed in the summary */
  const char *dead_file; /* every token to delete, one a line */
  size_t max_queued;     /* back-pressure: the client's queue bound in bulk mode */
  /* broadcast push (channels.c) */
  const char *channel;     /* --channel ID: broadcast instead of sending to a device token */
  const char *request_id;  /* --request-id UUID: apns-request-id of a broadcast or a channel command */
  const char *manage_host; /* --management-host, without the port; NULL: --host, else Apple's */
  uint16_t manage_port;
  apns_channel_op channel_op;   /* `channel create|read|delete|list`; 0: none */
  const char *channel_op_id;    /* the ID of `channel read|delete` */
  apns_channel_storage storage; /* --storage, for `channel create` (default none) */
  int storage_given;
  /* Live Activity payload flags, one-to-one to the payload builder (payload.h) */
  const char *event, *content_state, *attributes_type, *attributes, *input_push_channel;
  int64_t stale_date, dismissal_date, timestamp; /* -1: not given */
  int input_push_token;
  int has_relevance;
  double relevance_score;
  /* The APNs-side flags as parsed (tools/common/apns_args.h): the client is built from them with
   * apns_args_client. It owns the passphrase's copy. */
  apns_args apns;
} push_opts;

/* The proxy for o's target: --proxy, else the environment's. *out is NULL for none; free it with
 * apns_proxy_options_free() after apns_client_open (which copies it). Returns 0, or -1 after saying why. */
int push_proxy(const push_opts *o, apns_proxy_options **out);

/* Parses argv (modified: --data's '=' becomes a NUL). Returns 0; 1 when the caller should exit 0 (--help,
 * --version, already printed); or PUSH_EXIT_USAGE after printing why on stderr. opts->data is malloc'd: free it
 * with push_opts_free. */
/* blocks.c: the library's allocations through a cache of freed small blocks (before any other library call), and
 * the cache given back to malloc (after the last). */
void push_blocks_install(void);
void push_blocks_release(void);

int push_parse_args(int argc, char **argv, push_opts *opts);
void push_opts_free(push_opts *opts);
/* Prints "apns-push: " and the message on stderr. */
void push_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- request.c ---- */

/* 1 when any payload flag was given (--alert, ..., the Live Activity keys). */
int push_flags_payload(const push_opts *o);
/* The notification the flags describe (*out NULL when no payload flag was given). Returns 0, or an error code
 * after printing which flag was wrong. */
int push_flags_notification(const push_opts *o, apns_notification **out);

/* Copies a JSON text without the whitespace outside its strings (the bytes are otherwise untouched: numbers keep
 * their spelling). *out is malloc'd and NUL-terminated. Returns 0 or APNS_ENOMEM. */
int push_json_minify(const char *json, size_t len, char **out, size_t *out_len);

/* One --dry-run line, {"path":...,"headers":{...},"payload":...} and its newline, into buf when it fits (cap >
 * the length). Returns its length, as snprintf does. */
size_t push_dry_run_line(char *buf, size_t cap, const apns_send_request *sr, const char *payload, size_t len);

/* The request line --dry-run prints: {"method":...,"path":...,"headers":{...},"body":...} (method omitted when NULL,
 * the last member named body_key and omitted when body is NULL), and its newline, as push_dry_run_line. */
size_t push_dry_run_request(char *buf, size_t cap, const char *method, const char *path, const apns_header *headers,
                            size_t num_headers, const char *body_key, const char *body, size_t len);

/* ---- channels.c ---- */

/* Runs `apns-push channel ...` (one JSON line on out_fd: stdout or --results) and returns the exit status. */
int push_channel_main(const push_opts *o, int out_fd);
/* Broadcasts n (or, with --dry-run, prints the request) to o->channel; one result line on out_fd. Returns the
 * exit status. */
int push_broadcast_main(const push_opts *o, apns_notification *n, int out_fd);

/* ---- input.c ---- */

typedef struct push_input push_input;

/* A line's fate, returned by the line callback. */
#define PUSH_LINE_DONE 0  /* consumed */
#define PUSH_LINE_PAUSE 1 /* not consumed: pause reading; push_input_resume() hands the same line again */
#define PUSH_LINE_STOP 2  /* consumed, and read no more: the input ends here */

/* too_long: the line was longer than PUSH_MAX_LINE; text holds its first bytes and the rest is skipped. */
typedef int (*push_line_cb)(void *ctx, const char *text, size_t len, uint64_t lineno, int too_long);
/* The input ended: err 0 at EOF (or after STOP), else a libuv code from reading. */
typedef void (*push_end_cb)(void *ctx, int err);

/* Opens path ("-" for stdin) for streaming. Returns 0, or a libuv code (*out NULL). Reading starts with
 * push_input_resume. */
int push_input_open(uv_loop_t *loop, const char *path, push_line_cb on_line, push_end_cb on_end, void *ctx,
                    push_input **out);
/* Starts or resumes reading (after PUSH_LINE_PAUSE). Safe to call when not paused. */
void push_input_resume(push_input *in);
/* Bytes read so far and the file's size (-1 when not a regular file), for progress estimates. */
uint64_t push_input_bytes(const push_input *in);
int64_t push_input_size(const push_input *in);
/* Closes the handles; the input is freed once they are closed (after the loop turns). */
void push_input_close(push_input *in);

/* ---- report.c ---- */

typedef struct push_report push_report;

typedef struct push_result {
  uint64_t line;
  const char *token;
  int err; /* 0: a response; else why none */
  const apns_response *res;
  const char *message; /* with err: a sentence; NULL: apns_strerror(err) */
  int bad_line;        /* the line never became a request (parse or validation error) */
  double latency_ms;   /* < 0: none */
  const char *channel; /* a broadcast's channel (then token is NULL), or NULL */
} push_result;

/* out_fd: where the output goes (it stays the caller's to close); results 0: result lines are counted, not written
 * (--dry-run, whose own lines go through push_report_write). */
push_report *push_report_new(int out_fd, int results, int progress, unsigned list_dead, FILE *dead_file,
                             uint64_t now_ns);
void push_report_free(push_report *r);
/* One result line on out (buffered), and the counters. */
void push_report_result(push_report *r, const push_result *res);
/* Bytes of your own (--dry-run's lines) on out, buffered with the result lines. */
void push_report_write(push_report *r, const char *s, size_t len);
/* Writes what is buffered. Returns 0 or -errno of the first failed write (then nothing more is written). */
int push_report_flush(push_report *r);
/* The errno of the first failed write of the results, else of stderr (*on_stderr says which), or 0: EPIPE when
 * the reader went away. The caller stops cleanly on it; the process never dies of SIGPIPE (main ignores it). */
int push_report_write_error(const push_report *r, int *on_stderr);
/* A line on stderr that does not disturb the progress line (which is redrawn at the next tick). */
void push_report_stderr(push_report *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The progress line, at most every 250 ms: lines_read so far, total when known (else estimated from bytes). */
void push_report_progress(push_report *r, uint64_t now_ns, uint64_t lines_read, int total_known, uint64_t bytes,
                          int64_t size, int final);
/* The summary on stderr. */
void push_report_summary(push_report *r, uint64_t now_ns, const char *note);
/* 0 when every result was accepted (and there was at least one), else 1. */
int push_report_exit_code(const push_report *r);
uint64_t push_report_done(const push_report *r);

/* Latency histogram: log-linear buckets of microseconds, relative error under 2%, a fixed 12 KiB. */
typedef struct push_hist {
  uint64_t count;
  uint64_t buckets[48 * 32];
} push_hist;

void push_hist_add(push_hist *h, uint64_t us);
/* The value at quantile q (0..1), in microseconds; 0 when empty. */
uint64_t push_hist_quantile(const push_hist *h, double q);

#endif
