/* The Node.js addon: a thin N-API layer over apns_client on Node's own libuv loop.
 *
 * JS (lib/index.js) validates types, turns options into flat arguments and keeps the promises; this file only
 * moves values across: Native(options, onBatch) opens an apns_client on napi_get_uv_event_loop(env),
 * send(...) calls apns_client_send_json and returns a slot number (or the C API's negative code, at once),
 * and completions are gathered into one batch per loop turn that a uv_check handle hands to onBatch in one
 * napi_make_callback (so promises and process.nextTick run after each batch, not after each response).
 *
 * Lifetime: the JS object is strongly referenced while its client is open; close() (or the end of the
 * environment: Worker exit, process exit) closes the C client, then our two handles, then the object becomes
 * collectable and its finalizer frees the struct. An async env cleanup hook keeps the environment waiting until
 * every handle is closed, so a Worker terminated mid-run neither hangs nor leaves handles on its loop.
 *
 * Keeping the loop alive: an open client holds the process only while it has work, as Node's sockets do. Right
 * after open the addon calls apns_client_unref (none of the library's timers, sockets or watchers, now or later,
 * keeps the loop alive), and the addon's own uv_check handle is ref'd exactly while sends are outstanding
 * (accepted and not yet reported to JS), a batch waits for JS, or a close is in progress. client.ref() in JS is
 * apns_client_ref: the client then holds the process even when idle, until client.unref(). In-flight libuv
 * requests (a connect, a DNS lookup) still hold the loop until they end, as libuv decides; they are short.
 */
#include <apns.h>
#include <nghttp2/nghttp2.h>
#include <node_api.h>
#include <uv.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(call)                                                                                                  \
  do {                                                                                                               \
    if ((call) != napi_ok) goto fail;                                                                                \
  } while (0)

/* Per environment (main thread, each Worker). */
typedef struct addon_env {
  uv_loop_t *loop;
  napi_ref ctor;
  unsigned open_clients;
} addon_env;

/* Fields of one completion record, as doubles (JS reads them from a Float64Array). */
enum { R_SLOT, R_ERR, R_STATUS, R_ATTEMPTS, R_DELIVERY, R_TIMESTAMP, R_IDLEN, R_UNIQLEN, R_REASONLEN, R_FIELDS };
#define STR_CAP 255 /* longest apns-id, apns-unique-id or reason text passed on; longer ones are cut */
#define SLOT_CHUNK 4096

typedef struct client client;

/* One outstanding send: the data pointer handed to libapns. Chunks never move, so the pointer stays valid. */
typedef struct slot {
  client *cl;
  uint32_t index;
  uint32_t next_free;
} slot;

typedef struct event_rec {
  int type;
  unsigned conn;
  int err;
  int status;
  unsigned attempt;
  char reason[STR_CAP + 1];
} event_rec;

enum { ST_OPEN, ST_CLOSING, ST_CLOSED, ST_DONE };

struct client {
  napi_env env;
  addon_env *ae;
  apns_client *c;
  int state;
  int teardown;  /* the environment is ending: never call into JS again */
  int refs;      /* the JS object (until its finalizer) and the handles (until closed): freed at 0 */
  int finished;  /* finish() ran: our handles are closing */
  int close_rep; /* the C client closed; JS not told yet */
  int low_water; /* the queue drained to low water; JS not told yet */
  int handles;   /* our uv handles not yet closed */
  int reffed;
  napi_ref self;
  napi_ref on_batch;
  napi_async_context actx;
  napi_async_cleanup_hook_handle cleanup;
  uv_check_t check;
  uv_idle_t idle;
  size_t outstanding; /* sends accepted and not yet reported to JS */
  apns_pool_stats last_stats;
  /* The last payload sent, and once it is sent again, a raw notification of it: bulk sends of one payload then
   * skip the JSON parse that apns_client_send_json makes for each. The same bytes get the same checks. */
  char *last_json;
  size_t last_len, last_cap;
  apns_notification *last_n;
  /* slots */
  slot **chunks;
  size_t nchunks;
  uint32_t free_head; /* UINT32_MAX: none */
  /* the batch of this loop turn */
  double *rec;
  size_t nrec, caprec; /* in records */
  char *bytes;
  size_t nbytes, capbytes;
  event_rec *ev;
  size_t nev, capev;
};

static void oom(void) {
  napi_fatal_error("libapns addon", NAPI_AUTO_LENGTH, "out of memory", NAPI_AUTO_LENGTH);
}

static void *grow(void *p, size_t *cap, size_t need, size_t elem) {
  if (need <= *cap) return p;
  size_t n = *cap ? *cap : 64;
  while (n < need) n *= 2;
  void *q = realloc(p, n * elem);
  if (q == NULL) oom();
  *cap = n;
  return q;
}

static slot *slot_get(client *cl, uint32_t i) {
  return &cl->chunks[i / SLOT_CHUNK][i % SLOT_CHUNK];
}

static slot *slot_alloc(client *cl) {
  if (cl->free_head == UINT32_MAX) {
    slot **c = realloc(cl->chunks, (cl->nchunks + 1) * sizeof *c);
    if (c == NULL) return NULL;
    cl->chunks = c;
    slot *s = malloc(SLOT_CHUNK * sizeof *s);
    if (s == NULL) return NULL;
    c[cl->nchunks] = s;
    uint32_t base = (uint32_t)(cl->nchunks * SLOT_CHUNK);
    for (uint32_t i = 0; i < SLOT_CHUNK; i++) {
      s[i].cl = cl;
      s[i].index = base + i;
      s[i].next_free = i + 1 < SLOT_CHUNK ? base + i + 1 : UINT32_MAX;
    }
    cl->nchunks++;
    cl->free_head = base;
  }
  slot *s = slot_get(cl, cl->free_head);
  cl->free_head = s->next_free;
  return s;
}

static void slot_free(client *cl, uint32_t i) {
  slot *s = slot_get(cl, i);
  s->next_free = cl->free_head;
  cl->free_head = i;
}

static void client_free(client *cl) {
  apns_notification_free(cl->last_n);
  free(cl->last_json);
  for (size_t i = 0; i < cl->nchunks; i++) free(cl->chunks[i]);
  free(cl->chunks);
  free(cl->rec);
  free(cl->bytes);
  free(cl->ev);
  free(cl);
}

/* The check handle holds the loop exactly while there is work. */
static void update_ref(client *cl) {
  int want = cl->handles == 2 && (cl->outstanding > 0 || cl->state == ST_CLOSING || cl->nrec > 0 || cl->nev > 0 ||
                                  cl->close_rep || cl->low_water);
  if (want == cl->reffed) return;
  cl->reffed = want;
  if (want)
    uv_ref((uv_handle_t *)&cl->check);
  else
    uv_unref((uv_handle_t *)&cl->check);
}

/* Something for JS arrived: make sure this loop turn does not block in poll before the check phase. */
static void on_idle(uv_idle_t *h) {
  (void)h;
}

static void batch_wake(client *cl) {
  if (cl->handles == 2 && !uv_is_active((uv_handle_t *)&cl->idle)) uv_idle_start(&cl->idle, on_idle);
}

static size_t put_str(client *cl, const char *s) {
  if (s == NULL) return 0;
  size_t n = strlen(s);
  if (n > STR_CAP) n = STR_CAP;
  cl->bytes = grow(cl->bytes, &cl->capbytes, cl->nbytes + n, 1);
  memcpy(cl->bytes + cl->nbytes, s, n);
  cl->nbytes += n;
  return n;
}

static void on_response(int err, const apns_response *res, void *data) {
  slot *s = data;
  client *cl = s->cl;
  cl->rec = grow(cl->rec, &cl->caprec, cl->nrec + 1, sizeof(double) * R_FIELDS);
  double *r = cl->rec + cl->nrec * R_FIELDS;
  r[R_SLOT] = s->index;
  r[R_ERR] = err;
  r[R_STATUS] = res->status;
  r[R_ATTEMPTS] = res->attempts;
  r[R_DELIVERY] = res->delivery;
  r[R_TIMESTAMP] = (double)res->timestamp_ms;
  r[R_IDLEN] = (double)put_str(cl, res->apns_id);
  r[R_UNIQLEN] = (double)put_str(cl, res->apns_unique_id);
  r[R_REASONLEN] = (double)put_str(cl, err ? NULL : res->reason_text);
  cl->nrec++;
  batch_wake(cl);
}

static void on_event(apns_pool *pool, const apns_pool_event *e) {
  client *cl = apns_pool_data(pool);
  cl->ev = grow(cl->ev, &cl->capev, cl->nev + 1, sizeof *cl->ev);
  event_rec *r = &cl->ev[cl->nev++];
  r->type = e->type;
  r->conn = e->conn_index;
  r->err = e->err;
  r->status = e->status;
  r->attempt = e->attempt;
  r->reason[0] = '\0';
  if (e->reason) {
    size_t n = strlen(e->reason);
    if (n > STR_CAP) n = STR_CAP;
    memcpy(r->reason, e->reason, n);
    r->reason[n] = '\0';
  }
  batch_wake(cl);
  update_ref(cl);
}

static void on_low_water(apns_client *c) {
  client *cl = apns_client_data(c);
  cl->low_water = 1;
  batch_wake(cl);
}

static void handle_closed(uv_handle_t *h) {
  client *cl = h->data;
  if (--cl->handles > 0) return;
  cl->state = ST_DONE;
  napi_async_cleanup_hook_handle hook = cl->cleanup;
  cl->cleanup = NULL;
  /* In teardown the environment runs the JS object's finalizer after this hook is removed (or never): whichever
   * of the two comes last frees. Nothing here touches cl after the removal. */
  if (--cl->refs == 0) client_free(cl);
  if (hook) napi_remove_async_cleanup_hook(hook);
}

static void close_handles(client *cl) {
  uv_close((uv_handle_t *)&cl->check, handle_closed);
  uv_close((uv_handle_t *)&cl->idle, handle_closed);
}

/* JS learnt everything, or cannot learn anything any more: release what keeps the object alive. */
static void finish(client *cl) {
  if (cl->finished) return;
  cl->finished = 1;
  if (!cl->teardown) {
    napi_delete_reference(cl->env, cl->on_batch);
    napi_reference_unref(cl->env, cl->self, NULL);
    napi_async_destroy(cl->env, cl->actx);
  }
  cl->ae->open_clients--;
  close_handles(cl);
}

static void on_client_closed(apns_client *c) {
  client *cl = apns_client_data(c);
  apns_client_get_stats(c, &cl->last_stats, sizeof cl->last_stats);
  cl->c = NULL;
  cl->state = ST_CLOSED;
  if (cl->teardown) {
    finish(cl);
    return;
  }
  cl->close_rep = 1;
  batch_wake(cl);
}

static napi_value make_stats(napi_env env, const apns_pool_stats *st, size_t outstanding);

static void flush(client *cl) {
  napi_env env = cl->env;
  napi_handle_scope scope = NULL;
  size_t nrec = cl->nrec;
  if (cl->teardown) goto done;
  CHECK(napi_open_handle_scope(env, &scope));
  napi_value argv[4], fn, self, ab, result;
  CHECK(napi_get_undefined(env, &argv[0]));
  argv[1] = argv[2] = argv[3] = argv[0];
  if (nrec > 0) {
    void *data;
    size_t len = nrec * R_FIELDS * sizeof(double);
    CHECK(napi_create_arraybuffer(env, len, &data, &ab));
    memcpy(data, cl->rec, len);
    CHECK(napi_create_typedarray(env, napi_float64_array, nrec * R_FIELDS, ab, 0, &argv[0]));
    CHECK(napi_create_string_latin1(env, cl->bytes, cl->nbytes, &argv[1]));
  }
  if (cl->nev > 0) {
    CHECK(napi_create_array_with_length(env, cl->nev * 6, &argv[2]));
    for (size_t i = 0; i < cl->nev; i++) {
      event_rec *e = &cl->ev[i];
      napi_value v[6];
      CHECK(napi_create_int32(env, e->type, &v[0]));
      CHECK(napi_create_uint32(env, e->conn, &v[1]));
      CHECK(napi_create_int32(env, e->err, &v[2]));
      CHECK(napi_create_int32(env, e->status, &v[3]));
      CHECK(napi_create_uint32(env, e->attempt, &v[4]));
      CHECK(napi_create_string_utf8(env, e->reason, NAPI_AUTO_LENGTH, &v[5]));
      for (int k = 0; k < 6; k++) CHECK(napi_set_element(env, argv[2], (uint32_t)(i * 6 + (size_t)k), v[k]));
    }
  }
  CHECK(napi_create_int32(env, (cl->close_rep ? 1 : 0) | (cl->low_water ? 2 : 0), &argv[3]));
  cl->low_water = 0;
  int closed = cl->close_rep;
  cl->close_rep = 0;
  CHECK(napi_get_reference_value(env, cl->on_batch, &fn));
  CHECK(napi_get_reference_value(env, cl->self, &self));
  cl->nrec = 0;
  cl->nbytes = 0;
  cl->nev = 0;
  cl->outstanding -= nrec; /* before JS runs: stats() in a continuation sees these settled */
  napi_status st = napi_make_callback(env, cl->actx, self, fn, 4, argv, &result);
  if (st == napi_pending_exception) {
    napi_value exc;
    if (napi_get_and_clear_last_exception(env, &exc) == napi_ok) napi_fatal_exception(env, exc);
  }
  /* Slots are reused only now: JS has moved every settled send out of them. */
  for (size_t i = 0; i < nrec; i++) slot_free(cl, (uint32_t)cl->rec[i * R_FIELDS + R_SLOT]);
  napi_close_handle_scope(env, scope);
  if (closed) finish(cl);
  return;
fail:
  if (scope) napi_close_handle_scope(env, scope);
done:
  for (size_t i = 0; i < nrec; i++) slot_free(cl, (uint32_t)cl->rec[i * R_FIELDS + R_SLOT]);
  cl->outstanding -= nrec;
  cl->nrec = cl->nbytes = cl->nev = 0;
  if (cl->close_rep) {
    cl->close_rep = 0;
    finish(cl);
  }
}

static void on_check(uv_check_t *h) {
  client *cl = h->data;
  if (cl->nrec == 0 && cl->nev == 0 && !cl->close_rep && !cl->low_water) return;
  uv_idle_stop(&cl->idle);
  flush(cl);
  update_ref(cl);
}

/* The environment is ending (Worker exit or termination, process end): close without a word to JS. */
static void on_env_cleanup(napi_async_cleanup_hook_handle handle, void *arg) {
  client *cl = arg;
  (void)handle;
  cl->teardown = 1;
  if (cl->state == ST_OPEN) {
    cl->state = ST_CLOSING;
    apns_client_close(cl->c, 0, on_client_closed); /* cannot be closing already: the state says so */
  } else if (cl->state == ST_CLOSED) {
    /* Closed, but JS was not told yet: it never will be. (finish() does nothing when it already ran.) */
    cl->close_rep = 0;
    finish(cl);
  }
  /* ST_CLOSING: on_client_closed finishes. Handles already closing: handle_closed removes the hook. */
}

static void finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  client *cl = data;
  if (--cl->refs == 0) client_free(cl);
}

/* ---- helpers for arguments ---- */

/* A string argument into buf (cap bytes with the NUL). undefined or null: *out NULL. Returns 0, or APNS_EINVAL
 * when it is not a string or has a NUL inside, or too_long when it does not fit. */
static int get_str(napi_env env, napi_value v, char *buf, size_t cap, const char **out, size_t *lenp, int too_long) {
  napi_valuetype t;
  size_t len;
  *out = NULL;
  if (lenp) *lenp = 0;
  if (napi_typeof(env, v, &t) != napi_ok) return APNS_EINVAL;
  if (t == napi_undefined || t == napi_null) return 0;
  if (t != napi_string) return APNS_EINVAL;
  if (napi_get_value_string_utf8(env, v, buf, cap, &len) != napi_ok) return APNS_EINVAL;
  /* A full buffer may be a cut string (V8 cuts at a character boundary, up to 3 bytes short). */
  if (len + 4 >= cap) return too_long;
  if (strlen(buf) != len) return APNS_EINVAL;
  *out = buf;
  if (lenp) *lenp = len;
  return 0;
}

/* A string argument that JS always passes as a string (the token, the payload): no type check of its own, the
 * copy fails on anything else. Same returns as get_str, never *out NULL on success. */
static int get_req_str(napi_env env, napi_value v, char *buf, size_t cap, const char **out, size_t *lenp,
                       int too_long) {
  size_t len;
  if (napi_get_value_string_utf8(env, v, buf, cap, &len) != napi_ok) return APNS_EINVAL;
  if (len + 4 >= cap) return too_long;
  if (strlen(buf) != len) return APNS_EINVAL;
  *out = buf;
  if (lenp) *lenp = len;
  return 0;
}

static int get_num(napi_env env, napi_value v, int64_t *out, int *present) {
  napi_valuetype t;
  *present = 0;
  *out = 0;
  if (napi_typeof(env, v, &t) != napi_ok) return APNS_EINVAL;
  if (t == napi_undefined || t == napi_null) return 0;
  if (t != napi_number) return APNS_EINVAL;
  if (napi_get_value_int64(env, v, out) != napi_ok) return APNS_EINVAL;
  *present = 1;
  return 0;
}

static client *unwrap(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv) {
  napi_value self;
  void *p = NULL;
  if (napi_get_cb_info(env, info, argc, argv, &self, NULL) != napi_ok) return NULL;
  if (napi_unwrap(env, self, &p) != napi_ok) return NULL;
  return p;
}

static napi_value ret_int(napi_env env, int v) {
  napi_value r;
  napi_create_int32(env, v, &r);
  return r;
}

/* ---- the class ---- */

typedef struct {
  const char *name;
  char *val;
} str_opt;

enum {
  O_HOST,
  O_CA_FILE,
  O_CA_PEM,
  O_CERT_FILE,
  O_CERT_PEM,
  O_KEY_FILE,
  O_KEY_PEM,
  O_PASSPHRASE,
  O_VERIFY_NAME,
  O_TOKEN_KEY_FILE,
  O_TOKEN_KEY_PEM,
  O_KEY_ID,
  O_TEAM_ID,
  O_TOPIC,
  O_NSTR
};
static const char *const str_names[O_NSTR] = {
    "host",       "caFile",     "caPem",        "certFile",    "certPem", "keyFile", "keyPem",
    "passphrase", "verifyName", "tokenKeyFile", "tokenKeyPem", "keyId",   "teamId",  "topic",
};

/* An own string property, copied (NULL when absent). Returns 0 or -1 (not a string, or out of memory). */
static int prop_str(napi_env env, napi_value obj, const char *name, char **out) {
  napi_value v;
  napi_valuetype t;
  size_t len;
  *out = NULL;
  if (napi_get_named_property(env, obj, name, &v) != napi_ok || napi_typeof(env, v, &t) != napi_ok) return -1;
  if (t == napi_undefined || t == napi_null) return 0;
  if (t != napi_string || napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) return -1;
  if ((*out = malloc(len + 1)) == NULL) return -1;
  napi_get_value_string_utf8(env, v, *out, len + 1, &len);
  if (strlen(*out) != len) return -1;
  return 0;
}

static int prop_num(napi_env env, napi_value obj, const char *name, double *out) {
  napi_value v;
  napi_valuetype t;
  *out = 0;
  if (napi_get_named_property(env, obj, name, &v) != napi_ok || napi_typeof(env, v, &t) != napi_ok) return -1;
  if (t == napi_undefined || t == napi_null) return 0;
  if (t == napi_boolean) {
    bool b;
    napi_get_value_bool(env, v, &b);
    *out = b;
    return 0;
  }
  if (t != napi_number) return -1;
  return napi_get_value_double(env, v, out) == napi_ok ? 0 : -1;
}

static napi_value throw_open_error(napi_env env, int err, const char *msg) {
  napi_value m, code, e, errno_v;
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &m);
  napi_create_string_utf8(env, apns_err_name(err), NAPI_AUTO_LENGTH, &code);
  napi_create_error(env, code, m, &e);
  napi_create_int32(env, err, &errno_v);
  napi_set_named_property(env, e, "errno", errno_v);
  napi_throw(env, e);
  return NULL;
}

/* new Native(options, onBatch): options are already checked and flattened by lib/index.js. */
static napi_value native_new(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], self;
  addon_env *ae;
  char *s[O_NSTR] = {0};
  char errbuf[512] = "";
  client *cl = NULL;
  napi_value ret = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, &self, NULL) != napi_ok || argc < 2) {
    napi_throw_type_error(env, NULL, "Native(options, onBatch)");
    return NULL;
  }
  if (napi_get_instance_data(env, (void **)&ae) != napi_ok || ae == NULL) return NULL;
  for (int i = 0; i < O_NSTR; i++) {
    if (prop_str(env, argv[0], str_names[i], &s[i]) != 0) {
      napi_throw_type_error(env, NULL, str_names[i]);
      goto out;
    }
  }
  double endpoint, port, conns, timeout, maxq, lowq, nru, insecure;
  if (prop_num(env, argv[0], "endpoint", &endpoint) || prop_num(env, argv[0], "port", &port) ||
      prop_num(env, argv[0], "connections", &conns) || prop_num(env, argv[0], "timeout", &timeout) ||
      prop_num(env, argv[0], "maxQueued", &maxq) || prop_num(env, argv[0], "lowWater", &lowq) ||
      prop_num(env, argv[0], "neverResendUnknown", &nru) || prop_num(env, argv[0], "insecure", &insecure)) {
    napi_throw_type_error(env, NULL, "numeric option");
    goto out;
  }
  if ((cl = calloc(1, sizeof *cl)) == NULL) {
    throw_open_error(env, APNS_ENOMEM, "out of memory");
    goto out;
  }
  cl->env = env;
  cl->ae = ae;
  cl->free_head = UINT32_MAX;
  apns_client_options o = APNS_CLIENT_OPTIONS_INIT;
  apns_tls_options tls = APNS_TLS_OPTIONS_INIT; /* read and copied by the open */
  o.tls = &tls;
  o.endpoint = (apns_endpoint)endpoint;
  o.host = s[O_HOST];
  o.port = (uint16_t)port;
  tls.ca_file = s[O_CA_FILE];
  tls.ca_pem = s[O_CA_PEM];
  tls.cert_file = s[O_CERT_FILE];
  tls.cert_pem = s[O_CERT_PEM];
  tls.key_file = s[O_KEY_FILE];
  tls.key_pem = s[O_KEY_PEM];
  tls.key_passphrase = s[O_PASSPHRASE];
  tls.verify_name = s[O_VERIFY_NAME];
  tls.insecure_skip_verify = insecure != 0;
  o.token_key_file = s[O_TOKEN_KEY_FILE];
  o.token_key_pem = s[O_TOKEN_KEY_PEM];
  o.key_id = s[O_KEY_ID];
  o.team_id = s[O_TEAM_ID];
  o.topic = s[O_TOPIC];
  o.connections = (unsigned)conns;
  o.timeout_ms = (uint64_t)timeout;
  o.max_queued = (size_t)maxq;
  o.low_water = (size_t)lowq;
  o.on_low_water = maxq > 0 ? on_low_water : NULL;
  o.never_resend_unknown = nru != 0;
  o.on_event = on_event;
  o.data = cl;
  int rv = apns_client_open(ae->loop, &cl->c, &o, errbuf, sizeof errbuf);
  if (rv != 0) {
    throw_open_error(env, rv, errbuf[0] ? errbuf : apns_strerror(rv));
    free(cl);
    cl = NULL;
    goto out;
  }
  /* From here the C client is open: every failure closes it again. Idle, it does not hold the process; the check
   * handle below holds it while there is work (update_ref). */
  apns_client_unref(cl->c);
  uv_check_init(ae->loop, &cl->check);
  uv_idle_init(ae->loop, &cl->idle);
  cl->check.data = cl->idle.data = cl;
  cl->handles = 2;
  uv_unref((uv_handle_t *)&cl->check);
  uv_unref((uv_handle_t *)&cl->idle);
  uv_check_start(&cl->check, on_check);
  cl->refs = 2;
  napi_value name;
  if (napi_wrap(env, self, cl, finalize, NULL, NULL) != napi_ok ||
      napi_create_reference(env, self, 1, &cl->self) != napi_ok ||
      napi_create_reference(env, argv[1], 1, &cl->on_batch) != napi_ok ||
      napi_create_string_utf8(env, "libapns", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_async_init(env, self, name, &cl->actx) != napi_ok ||
      napi_add_async_cleanup_hook(env, on_env_cleanup, cl, &cl->cleanup) != napi_ok) {
    napi_fatal_error("libapns addon", NAPI_AUTO_LENGTH, "cannot set up the client object", NAPI_AUTO_LENGTH);
  }
  ae->open_clients++;
  ret = self;
out:
  for (int i = 0; i < O_NSTR; i++) free(s[i]);
  return ret;
}

static void remember_payload(client *cl, const char *js, size_t len) {
  apns_notification_free(cl->last_n);
  cl->last_n = NULL;
  cl->last_len = 0;
  if (len > cl->last_cap) {
    char *p = realloc(cl->last_json, len);
    if (p == NULL) return;
    cl->last_json = p;
    cl->last_cap = len;
  }
  memcpy(cl->last_json, js, len);
  cl->last_len = len;
}

static int send_payload(client *cl, const char *tok, const char *js, size_t len, const apns_send_options *so,
                        slot *s) {
  if (len > 0 && len == cl->last_len && memcmp(js, cl->last_json, len) == 0) {
    if (cl->last_n == NULL && apns_notification_new_raw(&cl->last_n, js, len) != 0) cl->last_n = NULL;
    if (cl->last_n != NULL) return apns_client_send(cl->c, tok, cl->last_n, so, on_response, s);
  }
  int rv = apns_client_send_json(cl->c, tok, js, len, so, on_response, s);
  if (rv == 0) remember_payload(cl, js, len);
  return rv;
}

/* send(token, json[, pushType, priority, expiration, collapseId, apnsId, topic, timeoutMs]) -> slot >= 0, or the
 * C API's negative code (nothing was queued). Without options JS passes two arguments only. */
static napi_value native_send(napi_env env, napi_callback_info info) {
  size_t argc = 9;
  napi_value argv[9];
  client *cl = unwrap(env, info, &argc, argv);
  char token[APNS_DEVICE_TOKEN_MAX + 8], json[16384], collapse[APNS_COLLAPSE_ID_MAX + 8], apns_id[48],
      topic[APNS_TOPIC_MAX + 8];
  const char *tok, *js, *cid, *aid, *top;
  size_t json_len;
  int64_t n;
  int present, rv;
  apns_send_options so;
  if (cl == NULL || argc < 2) return ret_int(env, APNS_EINVAL);
  if (cl->state != ST_OPEN) return ret_int(env, APNS_ECLOSED);
  apns_send_options_init(&so);
  if ((rv = get_req_str(env, argv[0], token, sizeof token, &tok, NULL, APNS_EBADTOKEN)) != 0) return ret_int(env, rv);
  if ((rv = get_req_str(env, argv[1], json, sizeof json, &js, &json_len, APNS_EPAYLOADTOOLARGE)) != 0)
    return ret_int(env, rv);
  /* The common bulk call has no options: two arguments, nothing more to look at. */
  if (argc > 2) {
    for (size_t i = argc; i < 9; i++) napi_get_undefined(env, &argv[i]);
    if ((rv = get_num(env, argv[2], &n, &present)) != 0) return ret_int(env, rv);
    so.push_type = (apns_push_type)n;
    if ((rv = get_num(env, argv[3], &n, &present)) != 0) return ret_int(env, rv);
    so.priority = (int)n;
    if ((rv = get_num(env, argv[4], &n, &present)) != 0) return ret_int(env, rv);
    so.has_expiration = present;
    so.expiration = n;
    if ((rv = get_str(env, argv[5], collapse, sizeof collapse, &cid, NULL, APNS_EBADCOLLAPSEID)) != 0)
      return ret_int(env, rv);
    so.collapse_id = cid;
    if ((rv = get_str(env, argv[6], apns_id, sizeof apns_id, &aid, NULL, APNS_EBADAPNSID)) != 0)
      return ret_int(env, rv);
    so.apns_id = aid;
    if ((rv = get_str(env, argv[7], topic, sizeof topic, &top, NULL, APNS_EBADTOPIC)) != 0) return ret_int(env, rv);
    so.topic = top;
    if ((rv = get_num(env, argv[8], &n, &present)) != 0) return ret_int(env, rv);
    so.timeout_ms = (uint64_t)n;
  }
  slot *s = slot_alloc(cl);
  if (s == NULL) return ret_int(env, APNS_ENOMEM);
  rv = send_payload(cl, tok, js, json_len, &so, s);
  if (rv != 0) {
    slot_free(cl, s->index);
    return ret_int(env, rv);
  }
  cl->outstanding++;
  update_ref(cl);
  return ret_int(env, (int)s->index);
}

/* close(drainMs) -> 0 or a negative code (APNS_EBUSY when already closing). onBatch gets flag 1 when done. */
static napi_value native_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  client *cl = unwrap(env, info, &argc, argv);
  int64_t drain = 0;
  int present;
  if (cl == NULL) return ret_int(env, APNS_EINVAL);
  if (cl->state != ST_OPEN) return ret_int(env, APNS_EBUSY);
  if (argc >= 1 && get_num(env, argv[0], &drain, &present) != 0) return ret_int(env, APNS_EINVAL);
  if (drain < 0) drain = 0;
  /* The close callback may run inside apns_client_close when nothing is pending: set the state first. */
  cl->state = ST_CLOSING;
  int rv = apns_client_close(cl->c, (uint64_t)drain, on_client_closed);
  if (rv != 0 && cl->state == ST_CLOSING) cl->state = ST_OPEN;
  update_ref(cl);
  return ret_int(env, rv);
}

/* setRef(on): client.ref() / client.unref(). The library's calls are idempotent and no-ops once closed. */
static napi_value native_set_ref(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  bool on = false;
  client *cl = unwrap(env, info, &argc, argv);
  if (cl == NULL || argc < 1 || napi_get_value_bool(env, argv[0], &on) != napi_ok) return ret_int(env, APNS_EINVAL);
  if (cl->c != NULL && cl->state == ST_OPEN) {
    if (on)
      apns_client_ref(cl->c);
    else
      apns_client_unref(cl->c);
  }
  return ret_int(env, 0);
}

static napi_value set_f64(napi_env env, napi_value obj, const char *name, double v) {
  napi_value x;
  if (napi_create_double(env, v, &x) != napi_ok || napi_set_named_property(env, obj, name, x) != napi_ok) return NULL;
  return obj;
}

static napi_value make_stats(napi_env env, const apns_pool_stats *st, size_t outstanding) {
  napi_value o, by;
  if (napi_create_object(env, &o) != napi_ok || napi_create_object(env, &by) != napi_ok) return NULL;
  set_f64(env, o, "queued", (double)st->queued);
  set_f64(env, o, "inFlight", (double)st->in_flight);
  set_f64(env, o, "connectionsUp", st->connections_up);
  set_f64(env, o, "posted", (double)st->posted);
  set_f64(env, o, "sent", (double)st->sent);
  set_f64(env, o, "accepted", (double)st->accepted);
  set_f64(env, o, "rejected", (double)st->rejected);
  set_f64(env, o, "failed", (double)st->failed);
  set_f64(env, o, "retried", (double)st->retried);
  set_f64(env, o, "timedOut", (double)st->timed_out);
  set_f64(env, o, "pending", (double)outstanding);
  static const char *const names[6] = {"2xx", "400", "403", "410", "4xx", "5xx"};
  for (int i = 0; i < 6; i++) set_f64(env, by, names[i], (double)st->by_status[i]);
  napi_set_named_property(env, o, "byStatus", by);
  return o;
}

static napi_value native_stats(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  client *cl = unwrap(env, info, &argc, NULL);
  apns_pool_stats st;
  if (cl == NULL) return NULL;
  if (cl->c)
    apns_client_get_stats(cl->c, &st, sizeof st);
  else
    st = cl->last_stats;
  return make_stats(env, &st, cl->outstanding);
}

/* ---- module functions ---- */

static napi_value fn_err_name(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], r[2], arr;
  int32_t code = 0;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc >= 1) napi_get_value_int32(env, argv[0], &code);
  napi_create_string_utf8(env, apns_err_name(code), NAPI_AUTO_LENGTH, &r[0]);
  napi_create_string_utf8(env, apns_strerror(code), NAPI_AUTO_LENGTH, &r[1]);
  napi_create_array_with_length(env, 2, &arr);
  napi_set_element(env, arr, 0, r[0]);
  napi_set_element(env, arr, 1, r[1]);
  return arr;
}

/* The nghttp2 the addon's code actually calls, and the one its headers said at build time. */
static napi_value fn_versions(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value o, v;
  napi_create_object(env, &o);
  napi_create_string_utf8(env, apns_version_string(), NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, o, "libapns", v);
  napi_create_string_utf8(env, nghttp2_version(0)->version_str, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, o, "nghttp2", v);
  napi_create_string_utf8(env, NGHTTP2_VERSION, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, o, "nghttp2Built", v);
  napi_create_string_utf8(env, uv_version_string(), NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, o, "uv", v);
  char built[32];
  snprintf(built, sizeof built, "%d.%d.%d", UV_VERSION_MAJOR, UV_VERSION_MINOR, UV_VERSION_PATCH);
  napi_create_string_utf8(env, built, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, o, "uvBuilt", v);
  napi_create_uint32(env, NAPI_VERSION, &v);
  napi_set_named_property(env, o, "napi", v);
  return o;
}

/* For the tests: which loop this environment runs (its address: a Worker's differs from the main thread's), and
 * how many clients are open in it. */
static napi_value fn_loop_info(napi_env env, napi_callback_info info) {
  (void)info;
  addon_env *ae;
  napi_value o, v;
  char addr[32];
  napi_get_instance_data(env, (void **)&ae);
  napi_create_object(env, &o);
  snprintf(addr, sizeof addr, "%p", (void *)ae->loop);
  napi_create_string_utf8(env, addr, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, o, "loop", v);
  napi_create_uint32(env, ae->open_clients, &v);
  napi_set_named_property(env, o, "openClients", v);
  return o;
}

static void env_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  free(data);
}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  addon_env *ae = calloc(1, sizeof *ae);
  if (ae == NULL) return NULL;
  if (napi_get_uv_event_loop(env, &ae->loop) != napi_ok ||
      napi_set_instance_data(env, ae, env_finalize, NULL) != napi_ok) {
    free(ae);
    return NULL;
  }
  napi_property_descriptor methods[] = {
      {"send", NULL, native_send, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, native_close, NULL, NULL, NULL, napi_default, NULL},
      {"stats", NULL, native_stats, NULL, NULL, NULL, napi_default, NULL},
      {"setRef", NULL, native_set_ref, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_value ctor, f;
  if (napi_define_class(env, "Native", NAPI_AUTO_LENGTH, native_new, NULL, sizeof methods / sizeof methods[0],
                        methods, &ctor) != napi_ok)
    return NULL;
  napi_create_reference(env, ctor, 1, &ae->ctor);
  napi_set_named_property(env, exports, "Native", ctor);
  napi_create_function(env, "errName", NAPI_AUTO_LENGTH, fn_err_name, NULL, &f);
  napi_set_named_property(env, exports, "errName", f);
  napi_create_function(env, "versions", NAPI_AUTO_LENGTH, fn_versions, NULL, &f);
  napi_set_named_property(env, exports, "versions", f);
  napi_create_function(env, "loopInfo", NAPI_AUTO_LENGTH, fn_loop_info, NULL, &f);
  napi_set_named_property(env, exports, "loopInfo", f);
  return exports;
}
