/* libapns internal: what other modules of the library (channels.c) read of a client beyond the public API. */
#ifndef APNS_LIB_CLIENT_INTERNAL_H
#define APNS_LIB_CLIENT_INTERNAL_H

#include <apns/client.h>

/* The default topic given at open (owned by the client), or NULL. */
const char *apns__client_topic(const apns_client *client);
/* The default deadline of a send, in ms (never 0). */
uint64_t apns__client_timeout_ms(const apns_client *client);

#endif
