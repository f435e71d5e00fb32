/* apns-mock: broadcast channels, see mock_channels.h and the channel section of mock.h.
 *
 * Channels live in one array in creation order (deleted ones stay, flagged, so that their counts are reported at
 * exit and a broadcast to them is told apart from one to an id never made) and an open-addressing index on the id
 * for O(1) look-ups. The live count is kept per bundle id (an app has a handful), which is what the 10 000 limit
 * is about. Ids are 16 random bytes in base64 (24 characters), as long as the ones Apple hands out. */
#include "mock_channels.h"

#include "alloc.h"
#include "mock_server.h"
#include "validate.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define CHAN_ID_LEN 24
#define CHAN_BODY_MAX 8192 /* more than a broadcast may carry (5120): enough to tell PayloadTooLarge */
#define CHAN_DEFAULT_MAX 10000

enum { KIND_CHANNELS = 1, KIND_ALL, KIND_BROADCAST };

typedef struct mchan {
  char id[CHAN_ID_LEN + 1];
  uint32_t bundle; /* index into bundles */
  uint8_t storage, deleted;
  uint64_t broadcasts, rejected;
} mchan;

typedef struct mbundle {
  char *name;
  size_t live;
} mbundle;

struct apns__mock_channels {
  mchan *v;
  size_t n, cap;
  uint32_t *index; /* 0 empty, else position in v + 1 */
  size_t index_cap;
  mbundle *bundles;
  size_t num_bundles;
  size_t max;
  char *disabled;
  uint64_t rng;
};

struct apns__mock_chan_req {
  uint8_t kind;
  uint8_t bundle_bad, chan_given, chan_bad, req_given, req_bad, dup;
  uint8_t push_type_given, push_type_ok, prio_given, prio_ok, exp_given, exp_bad, exp_nonzero;
  uint8_t created, sent;
  char bundle[APNS_BUNDLE_ID_MAX + 1];
  char chan_id[APNS_CHANNEL_ID_MAX + 1];
  char req_id[37];
  char unique_id[37];
  char new_id[CHAN_ID_LEN + 1];
  uint8_t *body;
  size_t body_len, body_total;
  char *resp;
  size_t resp_len;
};

/* ---- the store ---- */

static uint64_t hash_id(const char *s) {
  uint64_t h = 1469598103934665603ULL; /* FNV-1a */
  for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ULL;
  return h;
}

static mchan *find(const apns__mock_channels *st, const char *id) {
  if (st->index_cap == 0) return NULL;
  for (size_t i = hash_id(id) & (st->index_cap - 1);; i = (i + 1) & (st->index_cap - 1)) {
    uint32_t k = st->index[i];
    if (k == 0) return NULL;
    if (strcmp(st->v[k - 1].id, id) == 0) return &st->v[k - 1];
  }
}

static void index_put(apns__mock_channels *st, size_t pos) {
  for (size_t i = hash_id(st->v[pos].id) & (st->index_cap - 1);; i = (i + 1) & (st->index_cap - 1)) {
    if (st->index[i] == 0) {
      st->index[i] = (uint32_t)pos + 1;
      return;
    }
  }
}

/* Room for one more channel: the array and an index kept at most half full. */
static int reserve(apns__mock_channels *st) {
  if (st->n == st->cap) {
    size_t ncap = st->cap ? st->cap * 2 : 64;
    mchan *v = apns__realloc(st->v, ncap * sizeof *v);
    if (v == NULL) return -1;
    st->v = v;
    st->cap = ncap;
  }
  if ((st->n + 1) * 2 > st->index_cap) {
    size_t ncap = st->index_cap ? st->index_cap * 2 : 128;
    uint32_t *idx = apns__calloc(ncap, sizeof *idx);
    if (idx == NULL) return -1;
    apns__free(st->index);
    st->index = idx;
    st->index_cap = ncap;
    for (size_t i = 0; i < st->n; i++) index_put(st, i);
  }
  return 0;
}

static long bundle_of(apns__mock_channels *st, const char *name, int create) {
  for (size_t i = 0; i < st->num_bundles; i++)
    if (strcmp(st->bundles[i].name, name) == 0) return (long)i;
  if (!create) return -1;
  mbundle *b = apns__realloc(st->bundles, (st->num_bundles + 1) * sizeof *b);
  if (b == NULL) return -2;
  st->bundles = b;
  if ((b[st->num_bundles].name = apns__strdup(name)) == NULL) return -2;
  b[st->num_bundles].live = 0;
  return (long)st->num_bundles++;
}

int apns__mock_channels_new(apns__mock_channels **out, const apns_mock_options *o, uint64_t seed) {
  apns__mock_channels *st = apns__calloc(1, sizeof *st);
  *out = NULL;
  if (st == NULL) return APNS_ENOMEM;
  st->max = o->max_channels ? o->max_channels : CHAN_DEFAULT_MAX;
  st->rng = seed;
  if (o->broadcast_disabled && (st->disabled = apns__strdup(o->broadcast_disabled)) == NULL) {
    apns__free(st);
    return APNS_ENOMEM;
  }
  *out = st;
  return 0;
}

void apns__mock_channels_free(apns__mock_channels *st) {
  if (st == NULL) return;
  for (size_t i = 0; i < st->num_bundles; i++) apns__free(st->bundles[i].name);
  apns__free(st->bundles);
  apns__free(st->v);
  apns__free(st->index);
  apns__free(st->disabled);
  apns__free(st);
}

void apns__mock_channels_foreach(const apns__mock_channels *st, apns_mock_channel_cb cb, void *data) {
  if (st == NULL) return;
  for (size_t i = 0; i < st->n; i++) {
    const mchan *m = &st->v[i];
    apns_mock_channel c = {st->bundles[m->bundle].name, m->id, m->storage, m->deleted, m->broadcasts, m->rejected};
    cb(data, &c);
  }
}

/* ---- requests ---- */

static int path_is(const uint8_t **p, const uint8_t *end, const char *lit) {
  size_t n = strlen(lit);
  if ((size_t)(end - *p) < n || memcmp(*p, lit, n) != 0) return 0;
  *p += n;
  return 1;
}

int apns__mock_chan_match(const uint8_t *path, size_t len, apns__mock_chan_req **out) {
  const uint8_t *p = path, *end = path + len;
  int kind;
  *out = NULL;
  if (path_is(&p, end, "/1/apps/"))
    kind = KIND_CHANNELS;
  else if (path_is(&p, end, "/4/broadcasts/apps/"))
    kind = KIND_BROADCAST;
  else
    return 0;
  const uint8_t *b = p;
  while (p < end && *p != '/') p++;
  size_t blen = (size_t)(p - b);
  if (kind == KIND_CHANNELS) {
    if (path_is(&p, end, "/channels") && p == end)
      kind = KIND_CHANNELS;
    else if (path_is(&p, end, "/all-channels") && p == end)
      kind = KIND_ALL;
    else
      return 0;
  } else if (p != end) {
    return 0;
  }
  apns__mock_chan_req *r = apns__calloc(1, sizeof *r);
  if (r == NULL) return APNS_ENOMEM;
  r->kind = (uint8_t)kind;
  if (blen == 0 || blen > APNS_BUNDLE_ID_MAX) {
    r->bundle_bad = 1;
  } else {
    memcpy(r->bundle, b, blen);
    r->bundle[blen] = '\0';
    r->bundle_bad = apns_validate_bundle_id(r->bundle) != 0;
  }
  *out = r;
  return 1;
}

void apns__mock_chan_req_free(apns__mock_chan_req *r) {
  if (r == NULL) return;
  apns__free(r->body);
  apns__free(r->resp);
  apns__free(r);
}

int apns__mock_chan_is_management(const apns__mock_chan_req *r) {
  return r->kind != KIND_BROADCAST;
}

#define NAME_IS(lit) (namelen == sizeof(lit) - 1 && memcmp(name, lit, sizeof(lit) - 1) == 0)

void apns__mock_chan_header(apns__mock_chan_req *r, const uint8_t *name, size_t namelen, const uint8_t *value,
                            size_t valuelen) {
  if (NAME_IS("apns-channel-id")) {
    if (r->chan_given) r->dup = 1;
    r->chan_given = 1;
    if (valuelen == 0 || valuelen > APNS_CHANNEL_ID_MAX) {
      r->chan_bad = 1;
      return;
    }
    memcpy(r->chan_id, value, valuelen);
    r->chan_id[valuelen] = '\0';
    r->chan_bad = apns_validate_channel_id(r->chan_id) != 0 || strlen(r->chan_id) != valuelen;
  } else if (NAME_IS("apns-request-id")) {
    if (r->req_given) r->dup = 1;
    r->req_given = 1;
    r->req_bad = !apns__mock_uuid_valid((const char *)value, valuelen);
    if (!r->req_bad) {
      memcpy(r->req_id, value, 36);
      r->req_id[36] = '\0';
    }
  } else if (NAME_IS("apns-push-type")) {
    r->push_type_given = 1;
    /* Apple's table spells it "Liveactivity", its samples "liveactivity". */
    r->push_type_ok = valuelen == 12 && strncasecmp((const char *)value, "liveactivity", 12) == 0;
  } else if (NAME_IS("apns-priority")) {
    r->prio_given = 1;
    r->prio_ok = (valuelen == 1 && (value[0] == '1' || value[0] == '5')) ||
                 (valuelen == 2 && value[0] == '1' && value[1] == '0');
  } else if (NAME_IS("apns-expiration")) {
    r->exp_given = 1;
    r->exp_bad = valuelen == 0 || valuelen > 19;
    r->exp_nonzero = 0;
    for (size_t i = 0; i < valuelen; i++) {
      if (value[i] < '0' || value[i] > '9') r->exp_bad = 1;
      if (value[i] != '0') r->exp_nonzero = 1;
    }
  }
}

void apns__mock_chan_data(apns__mock_chan_req *r, const uint8_t *data, size_t len) {
  r->body_total += len;
  if (r->body == NULL) r->body = apns__malloc(CHAN_BODY_MAX);
  if (r->body == NULL) return; /* decide sees body_len < body_total and answers 500 */
  size_t n = len < CHAN_BODY_MAX - r->body_len ? len : CHAN_BODY_MAX - r->body_len;
  memcpy(r->body + r->body_len, data, n);
  r->body_len += n;
}

/* The create body: 0 and *storage, or the reason. */
static const char *parse_create(const apns__mock_chan_req *r, int *storage, int *oom) {
  json_error_t jerr;
  const char *reason = NULL;
  *oom = 0;
  if (r->body_total == 0) return "BadRequestPayload";
  json_t *j = json_loadb((const char *)r->body, r->body_len, JSON_REJECT_DUPLICATES, &jerr);
  if (j == NULL) {
    *oom =
        json_error_code(&jerr) == json_error_out_of_memory || apns__json_valid((const char *)r->body, r->body_len, 1);
    return "BadRequestPayload";
  }
  if (!json_is_object(j)) {
    json_decref(j);
    return "BadRequestPayload";
  }
  const char *key;
  json_t *v;
  json_object_foreach(j, key, v) {
    if (strcmp(key, "message-storage-policy") != 0 && strcmp(key, "push-type") != 0) reason = "BadRequestParams";
  }
  json_t *pol = json_object_get(j, "message-storage-policy"), *pt = json_object_get(j, "push-type");
  if (reason == NULL && (!json_is_integer(pol) || json_integer_value(pol) < 0 || json_integer_value(pol) > 1))
    reason = "BadRequestParams";
  else if (reason == NULL && pt == NULL)
    reason = "MissingPushType";
  else if (reason == NULL && (!json_is_string(pt) || strcmp(json_string_value(pt), "LiveActivity") != 0))
    reason = "InvalidPushType";
  if (reason == NULL) *storage = (int)json_integer_value(pol);
  json_decref(j);
  return reason;
}

static int set_body(apns__mock_chan_req *r, const char *text, size_t len) {
  r->resp = apns__malloc(len + 1);
  if (r->resp == NULL) return -1;
  memcpy(r->resp, text, len + 1);
  r->resp_len = len;
  return 0;
}

static void new_id(apns__mock_channels *st, char out[CHAN_ID_LEN + 1]) {
  static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  do {
    uint8_t raw[18] = {0};
    char uuid[37];
    apns__mock_uuid(&st->rng, uuid); /* 122 random bits: take the hex digits' values */
    for (int i = 0, k = 0; uuid[i] && k < 32; i++) {
      if (uuid[i] == '-') continue;
      int d = uuid[i] <= '9' ? uuid[i] - '0' : uuid[i] - 'a' + 10;
      raw[k / 2] = (uint8_t)(raw[k / 2] | (k % 2 ? d : d << 4));
      k++;
    }
    for (int i = 0; i < 5; i++) { /* 15 bytes -> 20 characters */
      uint32_t w = (uint32_t)raw[3 * i] << 16 | (uint32_t)raw[3 * i + 1] << 8 | raw[3 * i + 2];
      for (int j = 0; j < 4; j++) out[4 * i + j] = b64[(w >> (18 - 6 * j)) & 63];
    }
    /* The 16th byte and its padding. */
    out[20] = b64[raw[15] >> 2];
    out[21] = b64[(raw[15] & 3) << 4];
    out[22] = out[23] = '=';
    out[24] = '\0';
  } while (find(st, out) != NULL);
}

/* Bundle b's live channels (none for b < 0, a bundle never seen) as the JSON list of their ids. */
static int list_channels(apns__mock_channels *st, apns__mock_chan_req *r, long b) {
  size_t cap = 16, len = 0;
  for (size_t i = 0; b >= 0 && i < st->n; i++)
    if (st->v[i].bundle == (uint32_t)b && !st->v[i].deleted) cap += CHAN_ID_LEN + 3;
  char *text = apns__malloc(cap);
  if (text == NULL) return -1;
  len = (size_t)snprintf(text, cap, "{\"channels\":[");
  int first = 1;
  for (size_t i = 0; b >= 0 && i < st->n; i++) {
    if (st->v[i].bundle != (uint32_t)b || st->v[i].deleted) continue;
    len += (size_t)snprintf(text + len, cap - len, "%s\"%s\"", first ? "" : ",", st->v[i].id);
    first = 0;
  }
  len += (size_t)snprintf(text + len, cap - len, "]}");
  r->resp = text;
  r->resp_len = len;
  return 200;
}

/* A new channel of bundle b from the create body, within the bundle's limit of live channels. */
static int create_channel(apns__mock_channels *st, apns__mock_chan_req *r, long b, const char **reason) {
  int storage = 0, oom = 0;
  const char *why = parse_create(r, &storage, &oom);
  if (oom) return -1;
  if (why != NULL) return *reason = why, 400;
  if (st->bundles[b].live >= st->max) return *reason = "CannotCreateChannelConfig", 400;
  if (reserve(st) != 0) return -1;
  mchan *m = &st->v[st->n];
  memset(m, 0, sizeof *m);
  new_id(st, m->id);
  m->bundle = (uint32_t)b;
  m->storage = (uint8_t)storage;
  index_put(st, st->n++);
  st->bundles[b].live++;
  memcpy(r->new_id, m->id, sizeof r->new_id);
  r->created = 1;
  return 201;
}

/* A broadcast on channel m, counted as sent or rejected: its headers and its payload's size are checked. */
static int broadcast(apns__mock_channels *st, apns__mock_chan_req *r, mchan *m, const char **reason) {
  int status = 200;
  if (!r->push_type_given)
    *reason = "MissingPushType", status = 400;
  else if (!r->push_type_ok)
    *reason = "InvalidPushType", status = 400;
  else if (!r->prio_given || !r->prio_ok)
    *reason = "BadPriority", status = 400;
  else if (!r->exp_given || r->exp_bad || (m->storage == 0 && r->exp_nonzero))
    *reason = "BadExpirationDate", status = 400;
  else if (r->body_total == 0)
    *reason = "PayloadEmpty", status = 400;
  else if (r->body_total > APNS_PAYLOAD_MAX_BROADCAST)
    *reason = "PayloadTooLarge", status = 413;
  if (status != 200) {
    m->rejected++;
    return status;
  }
  m->broadcasts++;
  apns__mock_uuid(&st->rng, r->unique_id);
  r->sent = 1;
  return 200;
}

int apns__mock_chan_decide(apns__mock_channels *st, apns__mock_chan_req *r, int method, const char *cert_uid,
                           const char **reason) {
  *reason = NULL;
  if (r->req_id[0] == '\0' || r->req_bad) apns__mock_uuid(&st->rng, r->req_id);
  if (r->dup) return *reason = "DuplicateHeaders", 400;
  int want = r->kind == KIND_ALL ? APNS__MOCK_METHOD_GET : r->kind == KIND_BROADCAST ? APNS__MOCK_METHOD_POST : -1;
  if (want >= 0 ? method != want : method == APNS__MOCK_METHOD_OTHER) return *reason = "MethodNotAllowed", 405;
  if (r->bundle_bad) return *reason = "TopicDisallowed", 400;
  for (int t = APNS_PUSH_TYPE_ALERT; t < APNS__PUSH_TYPE_COUNT; t++) {
    const char *sfx = apns_push_type_topic_suffix((apns_push_type)t);
    size_t n = strlen(sfx), blen = strlen(r->bundle);
    if (n > 0 && blen > n && strcmp(r->bundle + blen - n, sfx) == 0) return *reason = "TopicDisallowed", 400;
  }
  if (cert_uid != NULL && strcmp(cert_uid, r->bundle) != 0) return *reason = "TopicMismatch", 403;
  if (st->disabled != NULL && strcmp(st->disabled, r->bundle) == 0) return *reason = "FeatureNotEnabled", 400;
  if (r->req_bad) return *reason = "BadMessageId", 400;
  if (r->body == NULL && r->body_total > 0) return *reason = "InternalServerError", 500;

  long b = bundle_of(st, r->bundle, r->kind == KIND_CHANNELS && method == APNS__MOCK_METHOD_POST);
  if (b == -2) return -1;

  if (r->kind == KIND_ALL) return list_channels(st, r, b);
  if (r->kind == KIND_CHANNELS && method == APNS__MOCK_METHOD_POST) return create_channel(st, r, b, reason);

  /* read, delete, broadcast: the channel first. */
  if (!r->chan_given) return *reason = "MissingChannelId", 400;
  if (r->chan_bad) return *reason = "BadChannelId", 400;
  mchan *m = find(st, r->chan_id);
  if (m == NULL || m->deleted || (long)m->bundle != b) return *reason = "ChannelNotRegistered", 400;

  if (r->kind == KIND_CHANNELS && method == APNS__MOCK_METHOD_GET) {
    char text[80];
    int n = snprintf(text, sizeof text, "{\"message-storage-policy\":%d,\"push-type\":\"LiveActivity\"}", m->storage);
    return set_body(r, text, (size_t)n) == 0 ? 200 : -1;
  }
  if (r->kind == KIND_CHANNELS) { /* DELETE */
    m->deleted = 1;
    st->bundles[b].live--;
    return 204;
  }

  return broadcast(st, r, m, reason);
}

#define NV(n, v, vlen)                                                                                               \
  (nghttp2_nv) {                                                                                                     \
    (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, (vlen),                                                           \
        NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE                                                 \
  }

size_t apns__mock_chan_nv(apns__mock_chan_req *r, nghttp2_nv *nva) {
  size_t n = 0;
  nva[n++] = NV("apns-request-id", r->req_id, 36);
  if (r->created) nva[n++] = NV("apns-channel-id", r->new_id, CHAN_ID_LEN);
  if (r->sent) nva[n++] = NV("apns-unique-id", r->unique_id, 36);
  return n;
}

const uint8_t *apns__mock_chan_body(const apns__mock_chan_req *r, size_t *len) {
  *len = r->resp_len;
  return r->resp_len ? (const uint8_t *)r->resp : NULL;
}
