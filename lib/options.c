/* The initializers of the public structs a caller fills: size set, every other field zero (its default). The
 * library reads these structs through apns__abi_read (abi.h), which gives a field past the caller's size its
 * default. */
#include <apns.h>
#include <string.h>

#define APNS__DEFINE_INIT(T)                                                                                         \
  void T##_init(T *o) {                                                                                              \
    if (o == NULL) return;                                                                                           \
    memset(o, 0, sizeof *o);                                                                                         \
    o->size = sizeof *o;                                                                                             \
  }

APNS__DEFINE_INIT(apns_request)
APNS__DEFINE_INIT(apns_tls_options)
APNS__DEFINE_INIT(apns_proxy_options)
APNS__DEFINE_INIT(apns_conn_options)
APNS__DEFINE_INIT(apns_pool_options)
APNS__DEFINE_INIT(apns_client_options)
APNS__DEFINE_INIT(apns_send_options)
APNS__DEFINE_INIT(apns_channels_options)
APNS__DEFINE_INIT(apns_channel_request_options)
APNS__DEFINE_INIT(apns_broadcast_options)
