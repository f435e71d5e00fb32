/* libapns internal: the error table's own words. Layer 1: no I/O, no libuv.
 *
 * error.c knows our codes only; uverror.c (the libuv layer) builds apns_strerror and apns_err_name from these and
 * hands the codes of libuv's that pass through our int to libuv's own tables. */
#ifndef APNS_LIB_ERROR_H
#define APNS_LIB_ERROR_H

/* The message and the "APNS_..." name of one of our codes ("success" and "OK" for 0); NULL for any other code. */
const char *apns__error_message(int err);
const char *apns__error_name(int err);

/* 1 when err lies in libuv's range: negated errno values and libuv's own (UV_EOF is -4095, UV_EAI_* near -3000).
 * Nothing else may go to libuv's tables: they allocate a string for a code they do not know. */
int apns__error_is_libuv(int err);

#endif
