/* libapns: an asynchronous Apple Push Notification service client on libuv.
 *
 * The manual, in reading order:
 *   apns/common.h   errors, APNs reasons, the allocator, requests and responses (shared by every level)
 *   apns/payload.h  notifications (the aps dictionary and custom keys), push types, input validation
 *   apns/client.h   high level: send(token, notification) with certificate or token auth
 *   apns/channels.h broadcast push: channel management (create, read, delete, list) and broadcast sends
 *   apns/pool.h     mid level: a fixed pool of connections, a queue, retries with back-off, generic POST
 *   apns/conn.h     low level: one HTTP/2 connection; blocked when full
 *   apns/proxy.h    HTTP CONNECT and SOCKS5 proxies for all three levels, proxy URLs and the environment
 * All functions are to be called from the thread that runs the loop they belong to.
 */
#ifndef APNS_H
#define APNS_H

#include <apns/common.h>
#include <apns/payload.h>
#include <apns/proxy.h>
#include <apns/conn.h>
#include <apns/pool.h>
#include <apns/client.h>
#include <apns/channels.h>

#endif /* APNS_H */
