/* apns-mock: the seeded fault mode (--chaos). A splitmix64 generator per connection, seeded from the chaos seed
 * and the connection's number, decides for each complete request whether one fault happens, and which; the
 * faults act on the connection or on that stream (mock_server.c applies them). Pure: no uv.h, no I/O.
 *
 * Replaying a seed gives the same decisions for the n-th request of the m-th connection; which requests land on
 * which connection depends on the client's timing, so a replay reproduces the mix of faults, not every byte. */
#ifndef APNS_MOCK_CHAOS_H
#define APNS_MOCK_CHAOS_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
  /* On the connection. */
  APNS_MOCK_CHAOS_DROP = 0,    /* "drop": no GOAWAY; this request and later ones unanswered, then close (mid-read) */
  APNS_MOCK_CHAOS_DROP_WRITE,  /* "drop-write": answer, then close with the output cut short (mid-write) */
  APNS_MOCK_CHAOS_GOAWAY_DROP, /* "goaway-drop": GOAWAY(NO_ERROR) naming this stream, then close */
  APNS_MOCK_CHAOS_GOAWAY_LOW,  /* "goaway-low": GOAWAY with last-stream-id below the highest open stream */
  APNS_MOCK_CHAOS_SILENT,      /* "silent": stop reading and writing; never close (only the client's pings see it) */
  APNS_MOCK_CHAOS_GARBAGE,     /* "garbage": 64 random bytes among the HTTP/2 frames, then close */
  APNS_MOCK_CHAOS_LIMIT,       /* "limit": SETTINGS_MAX_CONCURRENT_STREAMS 1 for 100 requests, then back */
  APNS_MOCK_CHAOS_WINDOW,      /* "window": SETTINGS_INITIAL_WINDOW_SIZE 1 for 100 requests, then 65535 */
  /* On the stream. */
  APNS_MOCK_CHAOS_REFUSE,  /* "refuse": RST_STREAM(REFUSED_STREAM) */
  APNS_MOCK_CHAOS_500,     /* "500": 500 InternalServerError */
  APNS_MOCK_CHAOS_503,     /* "503": 503 ServiceUnavailable */
  APNS_MOCK_CHAOS_429,     /* "429": 429 TooManyRequests */
  APNS_MOCK_CHAOS_HOLD,    /* "hold": the answer held hold_ms (past a deadline shorter than that) */
  APNS_MOCK_CHAOS_TRICKLE, /* "trickle": the answer's body in DATA frames of one byte, one every 5 ms */
  APNS_MOCK_CHAOS_COUNT
} apns_mock_chaos_fault;

/* Rates are per million complete requests, each fault on its own (their sum must stay at most 1 000 000). */
typedef struct apns_mock_chaos {
  int enabled;   /* default 0: no faults */
  uint64_t seed; /* printed by apns-mock at start; the same seed replays the same decisions */
  uint32_t rate[APNS_MOCK_CHAOS_COUNT];
  uint32_t hold_ms; /* how long "hold" holds an answer; default (0) 2000 */
} apns_mock_chaos;

/* The default rates: 200 per million for each connection fault, 1000 per million for each stream fault. */
void apns_mock_chaos_defaults(apns_mock_chaos *ch, uint64_t seed);

/* Parses "SEED[,RATE][,NAME=RATE...][,hold-ms=MS]" into ch (enabled, defaults first). A bare RATE sets every fault's
 * rate; NAME is one of the quoted names above. Returns 0, or -1 with err naming what was wrong. */
int apns_mock_chaos_parse(apns_mock_chaos *ch, const char *spec, char *err, size_t errlen);

/* The fault's quoted name above; "?" out of range. */
const char *apns_mock_chaos_name(int fault);

/* The generator state of connection conn_id (1, 2, ...). */
uint64_t apns__mock_chaos_conn_seed(const apns_mock_chaos *ch, uint64_t conn_id);
/* The fault for one more request, or -1 for none. */
int apns__mock_chaos_pick(const apns_mock_chaos *ch, uint64_t *state);
/* A value in [0, n) (n > 0). */
uint64_t apns__mock_chaos_below(uint64_t *state, uint64_t n);
/* n random bytes into buf. */
void apns__mock_chaos_bytes(uint64_t *state, uint8_t *buf, size_t n);

#endif
