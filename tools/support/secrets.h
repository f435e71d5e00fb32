/* Test support: a record of the secrets made during a test run, so that the test runner can check that none of
 * them reached any output (test/main.c, APNS_TEST_SECRETS=1).
 *
 * When APNS_TEST_SECRETS_FILE names a file, certgen's private keys (the base64 lines of their PEM forms and their
 * scalar in hex and base64) and the signature of each provider token apns-mock's verifier sees are appended to it,
 * one "kind<TAB>text" line each (O_APPEND, one write a line: processes may share the file). Without the variable
 * nothing is written. It is meant for test machines only: a server that sets it writes the tokens it is sent. */
#ifndef APNS_SUPPORT_SECRETS_H
#define APNS_SUPPORT_SECRETS_H

#include <stddef.h>

/* Records text (len bytes, no newline in it) under kind. Failures are ignored: a record is best effort. */
void apns__secret_record(const char *kind, const char *text, size_t len);
/* Records each line of a PEM text between its BEGIN and END lines. */
void apns__secret_record_pem(const char *kind, const char *pem);
/* Records raw key bytes as lowercase hex, uppercase hex, base64 and base64url. */
void apns__secret_record_bytes(const char *kind, const unsigned char *b, size_t n);

#endif
