/* Fuzz target tls_client: the client side of the TLS layer (lib/tls.c), in memory, two ways.
 *
 * Input: a control byte, then bytes. Bit 0 picks the mode; bits 1-3 the size of the pieces (feeds, reads).
 *   handshake mode (bit 0 clear): the bytes are the server's side of a handshake, fed to a client that checks the
 *       server against the system bundle (bit 4 clear) or skips verification (bit 4 set). apns__tls_handshake
 *       returns only 0, 1, APNS_ECERTVERIFY, APNS_EALPN or APNS_ETLS; an error sticks; apns__tls_error is a
 *       NUL-terminated message.
 *   session mode (bit 0 set): a real handshake with an in-memory apns__tls server (certificates from
 *       lib/certgen.h, made once per process), then the bytes are the server's HTTP/2 stream: the server encrypts
 *       them (bit 5: in one write, else one write per piece), the client decrypts them into buffers of the piece
 *       size and feeds an HTTP/2 session that has one request in flight; bit 6 ends with the server's
 *       close_notify. apns__tls_read returns what it documents (at most cap, 0, APNS_ECLOSED once the
 *       close_notify is read, APNS_ETLS), the plaintext arrives intact (compared with the input) and the request
 *       ends exactly once. */
#include "fuzz.h"

#include "alloc.h"
#include "certgen.h"
#include "h2.h"
#include "request.h"
#include "tls.h"

#include <string.h>

static const size_t pieces[] = {1, 5, 64, 300, 1024, 4096, 16384, 65536};

static apns__tls_config *client_cfg(int insecure) {
  static apns__tls_config *cfg[2];
  if (cfg[insecure] == NULL) {
    apns__tls_options o;
    memset(&o, 0, sizeof o);
    o.insecure_skip_verify = insecure;
    if (apns__tls_config_new(&cfg[insecure], &o, NULL, 0) != 0) cfg[insecure] = NULL;
  }
  return cfg[insecure];
}

/* The session mode's pair of configs, made once. */
static int session_cfgs(apns__tls_config **ccfg, apns__tls_config **scfg) {
  static apns__tls_config *c, *s;
  static int tried;
  if (!tried) {
    apns__certgen_result certs;
    tried = 1;
    if (apns__certgen(NULL, &certs, NULL, 0) == 0) {
      apns__tls_options co, so;
      memset(&co, 0, sizeof co);
      memset(&so, 0, sizeof so);
      co.ca_pem = certs.ca_cert;
      so.server = 1;
      so.cert_pem = certs.server_cert;
      so.key_pem = certs.server_key;
      if (apns__tls_config_new(&c, &co, NULL, 0) != 0) c = NULL;
      if (apns__tls_config_new(&s, &so, NULL, 0) != 0) s = NULL;
      apns__certgen_free(&certs);
    }
  }
  *ccfg = c;
  *scfg = s;
  return c != NULL && s != NULL;
}

static void check_error_text(const apns__tls *t) {
  const char *msg = apns__tls_error(t);
  FUZZ_CHECK(msg != NULL);
  FUZZ_CHECK(strnlen(msg, 4096) < 4096);
}

static void handshake_mode(uint8_t ctl, fuzz_in *in) {
  size_t piece = pieces[(ctl >> 1) & 7];
  apns__tls_config *cfg = client_cfg((ctl >> 4) & 1);
  apns__tls *t = NULL;
  uint8_t *buf;
  size_t len;
  int rc;
  if (cfg == NULL || apns__tls_new(&t, cfg, "api.push.apple.com") != 0) return;
  rc = apns__tls_handshake(t);
  FUZZ_CHECK(rc == 1);
  while (in->n > 0 && rc == 1) {
    size_t out_len;
    const uint8_t *p = fuzz_take(in, piece, &len);
    apns__tls_take_output(t, &buf, &out_len); /* the client's flights go nowhere */
    apns__free(buf);
    if (apns__tls_feed(t, p, len) != 0) break;
    rc = apns__tls_handshake(t);
    FUZZ_CHECK(rc == 0 || rc == 1 || rc == APNS_ECERTVERIFY || rc == APNS_EALPN || rc == APNS_ETLS);
  }
  if (rc < 0) {
    FUZZ_CHECK(apns__tls_handshake(t) == rc);
    check_error_text(t);
  }
  if (rc == 0) {
    uint8_t out[512];
    ssize_t n;
    while ((n = apns__tls_read(t, out, sizeof out)) > 0) FUZZ_CHECK((size_t)n <= sizeof out);
  }
  apns__tls_take_output(t, &buf, &len);
  apns__free(buf);
  apns__tls_free(t);
}

/* ---- session mode ---- */

typedef struct fz_sess {
  int ends;
} fz_sess;

static void on_response(void *ctx, apns__req *req, const apns_response *res) {
  fz_sess *s = ctx;
  (void)res;
  FUZZ_CHECK(s->ends == 0);
  s->ends++;
  apns__req_free(req);
}

static void on_stream_error(void *ctx, apns__req *req, int err, apns_delivery d) {
  fz_sess *s = ctx;
  FUZZ_CHECK(err < 0 && d != APNS_DELIVERY_RESPONDED);
  FUZZ_CHECK(s->ends == 0);
  s->ends++;
  apns__req_free(req);
}

/* Moves from's ciphertext into to; 0 or a feed error. */
static int move(apns__tls *from, apns__tls *to) {
  uint8_t *buf;
  size_t len;
  int rv = 0;
  apns__tls_take_output(from, &buf, &len);
  if (len) rv = apns__tls_feed(to, buf, len);
  apns__free(buf);
  return rv;
}

static void session_mode(uint8_t ctl, fuzz_in *in) {
  static const apns__h2_callbacks cbs = {on_response, on_stream_error, NULL, NULL, NULL};
  size_t piece = pieces[(ctl >> 1) & 7];
  apns__tls_config *ccfg, *scfg;
  apns__tls *c = NULL, *s = NULL;
  apns__h2 *h2 = NULL;
  apns__req *req = NULL;
  apns_request desc;
  fz_sess st = {0};
  uint8_t *plain = NULL;
  const uint8_t *start = in->p;
  size_t plain_len = 0, total = in->n;
  int crc = 1, src = 1, h2_dead = 0, closed = 0, broken = 0;

  if (!session_cfgs(&ccfg, &scfg)) return;
  if (apns__tls_new(&c, ccfg, "localhost") != 0 || apns__tls_new(&s, scfg, NULL) != 0) goto out;
  int primed = 0;
  for (int i = 0; i < 32 && (crc == 1 || src == 1); i++) {
    if (crc == 1) crc = apns__tls_handshake(c);
    if (move(c, s) != 0) goto out;
    if (src == 1) src = apns__tls_handshake(s);
    /* A TLS 1.3 client counts as connected only once the server's first record came (a refusal of its certificate
     * would come then): the server sends the first byte of its stream, as an HTTP/2 server sends its SETTINGS at
     * once. The client keeps that byte for its first read, so the plaintext check below still holds. */
    if (src == 0 && crc == 1 && !primed && in->n > 0) {
      size_t one;
      const uint8_t *p = fuzz_take(in, 1, &one);
      if (apns__tls_write(s, p, one) != 0) goto out;
      primed = 1;
    }
    if (move(s, c) != 0) goto out;
  }
  if (crc == 1 && src == 0 && !primed) goto out; /* TLS 1.3 with nothing for the server to send */
  FUZZ_CHECK(crc == 0 && src == 0);              /* the fixed handshake always completes */

  apns_request_init(&desc);
  desc.path = "/3/device/00fc13adff785122b4ad28809a3420982341241421348097878e577c991de8f0";
  desc.body = "{}";
  desc.body_len = 2;
  if (apns__h2_new(&h2, "api.push.apple.com", &cbs, &st) != 0) goto out;
  if (apns__req_new(&req, &desc, 0) != 0) goto out;
  if (apns__h2_submit(h2, req, NULL, 0) <= 0) {
    apns__req_free(req);
    req = NULL;
    goto out;
  }
  plain = malloc(total + 1);
  FUZZ_CHECK(plain != NULL);

  if (ctl & 0x20) {
    if (apns__tls_write(s, in->p, in->n) != 0) goto out;
    in->p += in->n;
    in->n = 0;
  }
  int more = 1;
  while (more) {
    size_t len;
    const uint8_t *p;
    if (in->n > 0) {
      p = fuzz_take(in, piece, &len);
      if (apns__tls_write(s, p, len) != 0) {
        broken = 1;
        break;
      }
    } else if ((ctl & 0x40) && !closed) {
      closed = 1;
      if (apns__tls_close_notify(s) != 0) {
        broken = 1;
        break;
      }
    } else {
      more = 0;
    }
    if (move(s, c) != 0) {
      broken = 1;
      break;
    }
    for (;;) {
      uint8_t buf[65536];
      ssize_t n = apns__tls_read(c, buf, piece);
      FUZZ_CHECK(n <= (ssize_t)piece);
      if (n == 0) break;
      if (n == APNS_ETLS) {
        more = 0;
        broken = 1;
        break;
      }
      if (n == APNS_ECLOSED) {
        FUZZ_CHECK(closed);
        FUZZ_CHECK(apns__tls_read(c, buf, piece) == APNS_ECLOSED);
        more = 0;
        break;
      }
      FUZZ_CHECK(n > 0);
      FUZZ_CHECK(plain_len + (size_t)n <= total);
      memcpy(plain + plain_len, buf, (size_t)n);
      plain_len += (size_t)n;
      if (!h2_dead && apns__h2_feed(h2, buf, (size_t)n) != 0) h2_dead = 1;
    }
    uint8_t *out;
    size_t out_len;
    if (apns__h2_take_output(h2, &out, &out_len) == 0 && out_len > 0) {
      /* What the client sends goes through TLS too, and the server reads it (and throws it away). */
      if (apns__tls_write(c, out, out_len) == 0) (void)move(c, s);
      apns__free(out);
      uint8_t sink[4096];
      while (apns__tls_read(s, sink, sizeof sink) > 0) {
      }
    }
  }
  /* The plaintext came through intact and whole, unless the stack stopped on an error. */
  FUZZ_CHECK(plain_len == 0 || memcmp(plain, start, plain_len) == 0);
  if (!broken) FUZZ_CHECK(plain_len == total);
out:
  if (h2 != NULL) {
    apns__h2_fail_all(h2, APNS_ECLOSED, APNS_DELIVERY_UNKNOWN);
    apns__h2_free(h2);
    FUZZ_CHECK(req == NULL || st.ends == 1);
  }
  free(plain);
  apns__tls_free(c);
  apns__tls_free(s);
}

int apns_fuzz_tls_client(const uint8_t *data, size_t size) {
  fuzz_in in = {data, size};
  uint8_t ctl = fuzz_u8(&in);
  if (ctl & 1)
    session_mode(ctl, &in);
  else
    handshake_mode(ctl, &in);
  return 0;
}

APNS_FUZZ_MAIN(tls_client)
