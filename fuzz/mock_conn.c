/* Fuzz target mock_conn: apns-mock's connection (tools/apns-mock/mock_server.c) fed arbitrary client bytes: the
 * HTTP/2 a hostile or broken client sends, below the request checks that mock_request reaches with well-formed
 * frames.
 *
 * Input: a control byte, then the client's bytes after its connection preface (the harness sends the 24-byte
 * magic itself), so the seeds start with the client's SETTINGS. Control bits: 0 token auth (a verifier with the
 * fuzz key), 1-3 the size of the feeds, 4 responses held (paused) until the end, 5 a 3 ms response delay with
 * the clock advancing 1 ms a feed, 6 a GOAWAY after the first request, 7 drop after the second.
 *
 * Invariants: apns__mock_conn_feed and _flush return 0 or one of the documented fatal codes; after a fatal error
 * no feed is needed (want_close is set) and a last flush does not fail anew; the counters stay coherent
 * (responses never outnumber requests); no crash, leak or undefined behaviour whatever the bytes. */
#include "fuzz.h"
#include "keys.h"

#include "alloc.h"
#include "jwt_verify.h"
#include "mock_server.h"

#include <string.h>

static int fatal_code(int rv) {
  return rv == APNS_ETLS || rv == APNS_ECERTVERIFY || rv == APNS_EALPN || rv == APNS_EHTTP2 || rv == APNS_ENOMEM;
}

static int64_t fixed_clock(void *data) {
  (void)data;
  return FUZZ_NOW;
}

int apns_fuzz_mock_conn(const uint8_t *data, size_t size) {
  static const size_t pieces[] = {1 << 20, 1, 3, 9, 64, 300, 1024, 16384};
  static const uint8_t magic[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  fuzz_in in = {data, size};
  uint8_t ctl = fuzz_u8(&in);
  size_t piece = pieces[(ctl >> 1) & 7];
  apns_mock_options opts;
  apns_mock_stats stats;
  apns__jwt_verifier *jwt = NULL;
  apns__mock_conn *conn = NULL;
  uint64_t now = 1000;
  int fatal = 0;

  memset(&stats, 0, sizeof stats);
  apns_mock_options_init(&opts);
  opts.clock = fixed_clock;
  opts.paused = (ctl >> 4) & 1;
  opts.delay_ms = (ctl & 0x20) ? 3 : 0;
  opts.goaway_after = (ctl & 0x40) ? 1 : 0;
  opts.drop_after = (ctl & 0x80) ? 2 : 0;
  if (ctl & 0x01) {
    if (fuzz_key() == NULL || apns__jwt_verifier_new(&jwt) != 0) return 0;
    if (apns__jwt_verifier_add(jwt, FUZZ_KID, NULL, fuzz_key(), strlen(fuzz_key()), NULL, 0) != 0) goto out;
  }
  if (apns__mock_conn_new(&conn, &opts, NULL, jwt, &stats, 7) != 0) goto out;
  int rv = apns__mock_conn_feed(conn, magic, sizeof magic - 1, now);
  FUZZ_CHECK(rv == 0);
  while (in.n > 0 && !fatal) {
    size_t len;
    const uint8_t *p = fuzz_take(&in, piece, &len);
    uint8_t *buf = NULL;
    size_t out_len = 0;
    if (ctl & 0x20) now++;
    rv = apns__mock_conn_feed(conn, p, len, now);
    FUZZ_CHECK(rv == 0 || fatal_code(rv));
    if (rv != 0) fatal = rv;
    int fr = apns__mock_conn_flush(conn, now, &buf, &out_len);
    FUZZ_CHECK(fr == 0 || fatal_code(fr));
    FUZZ_CHECK((buf == NULL) == (out_len == 0));
    apns__free(buf);
    if (fr != 0) fatal = fr;
    if (apns__mock_conn_want_close(conn)) break;
  }
  if (!fatal) {
    /* The end of the input: held responses go out (resumed, clock past every delay). */
    uint8_t *buf = NULL;
    size_t out_len = 0;
    apns__mock_conn_set_paused(conn, 0);
    rv = apns__mock_conn_flush(conn, now + 10, &buf, &out_len);
    FUZZ_CHECK(rv == 0 || fatal_code(rv));
    apns__free(buf);
    if (rv == 0 && !apns__mock_conn_want_close(conn) && !(ctl & 0x40) && !(ctl & 0x80))
      FUZZ_CHECK(apns__mock_conn_next_due(conn) == APNS__MOCK_NEVER);
  } else {
    uint8_t *buf = NULL;
    size_t out_len = 0;
    FUZZ_CHECK(apns__mock_conn_want_close(conn));
    FUZZ_CHECK(apns__mock_conn_error(conn) != NULL);
    rv = apns__mock_conn_flush(conn, now, &buf, &out_len); /* a GOAWAY may wait */
    FUZZ_CHECK(rv == 0 || rv == fatal || fatal_code(rv));
    apns__free(buf);
  }
  FUZZ_CHECK(stats.responses <= stats.requests);
out:
  apns__mock_conn_free(conn);
  apns__jwt_verifier_free(jwt);
  return 0;
}

APNS_FUZZ_MAIN(mock_conn)
