/* libapns: an asynchronous Apple Push Notification service client on libuv.
 *
 * This header is the manual. Start with apns/common.h (errors, reasons, allocator, responses); the other parts
 * are included as they exist. All functions are to be called from the thread that runs the loop they belong to.
 */
#ifndef APNS_H
#define APNS_H

#include <apns/common.h>
#include <apns/payload.h>

#endif /* APNS_H */
