/* apns-mock: broadcast channels as Apple keeps them (no I/O, no uv.h). The store is server-wide (one per
 * apns_mock, shared by its connections); a request record is made for each request whose :path is a management
 * or broadcast path, fed its headers and body, and decided once complete. mock_server.c calls these from its
 * routing; mock.h documents the behaviour. */
#ifndef APNS_MOCK_CHANNELS_H
#define APNS_MOCK_CHANNELS_H

#include "mock.h"

#include <nghttp2/nghttp2.h>
#include <stddef.h>
#include <stdint.h>

typedef struct apns__mock_channels apns__mock_channels;
typedef struct apns__mock_chan_req apns__mock_chan_req;

/* :method of a request, as mock_server.c records it. */
enum { APNS__MOCK_METHOD_OTHER = 0, APNS__MOCK_METHOD_POST, APNS__MOCK_METHOD_GET, APNS__MOCK_METHOD_DELETE };

/* The store, with opts->max_channels and opts->broadcast_disabled (copied). Returns 0 or APNS_ENOMEM. */
int apns__mock_channels_new(apns__mock_channels **out, const apns_mock_options *opts, uint64_t seed);
void apns__mock_channels_free(apns__mock_channels *st); /* NULL is fine */
void apns__mock_channels_foreach(const apns__mock_channels *st, apns_mock_channel_cb cb, void *data);

/* 1 and *out a new record when path (len bytes) is /1/apps/<b>/channels, /1/apps/<b>/all-channels or
 * /4/broadcasts/apps/<b>; 0 when it is none of them; APNS_ENOMEM. */
int apns__mock_chan_match(const uint8_t *path, size_t len, apns__mock_chan_req **out);
void apns__mock_chan_req_free(apns__mock_chan_req *r); /* NULL is fine */
/* Non-zero for the management paths (/1/apps/...), zero for broadcasts. */
int apns__mock_chan_is_management(const apns__mock_chan_req *r);
/* A regular request header and a body chunk. */
void apns__mock_chan_header(apns__mock_chan_req *r, const uint8_t *name, size_t namelen, const uint8_t *value,
                            size_t valuelen);
void apns__mock_chan_data(apns__mock_chan_req *r, const uint8_t *data, size_t len);

/* The answer to the complete request (after the path, duplicate-header and provider-token checks): its status,
 * and *reason (NULL for success). cert_uid is the client certificate's topic, or NULL. Applies the change
 * (create, delete, broadcast count). Returns the status, or -1 when out of memory. */
int apns__mock_chan_decide(apns__mock_channels *st, apns__mock_chan_req *r, int method, const char *cert_uid,
                           const char **reason);
/* The response headers beyond :status: apns-request-id always, apns-channel-id after a create, apns-unique-id
 * after a broadcast. Values point into r. Writes at most 3 into nva; returns how many. */
size_t apns__mock_chan_nv(apns__mock_chan_req *r, nghttp2_nv *nva);
/* The success body (read, list), or NULL. */
const uint8_t *apns__mock_chan_body(const apns__mock_chan_req *r, size_t *len);

#endif
