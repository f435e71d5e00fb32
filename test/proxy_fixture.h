/* Real proxy servers for the proxy tests: tinyproxy (HTTP CONNECT) and dante's danted (SOCKS5), from Debian,
 * each started as a child process on 127.0.0.1 at a port chosen at run time, with its configuration written to
 * the test's temporary directory. Nothing of the system's configuration is read or changed: for danted's
 * username method, which checks the system's password database, the daemon runs in a mount namespace of its own
 * where a throwaway /etc/passwd and /etc/shadow (written to the temp dir) are bind-mounted over the real ones. */
#ifndef APNS_TEST_PROXY_FIXTURE_H
#define APNS_TEST_PROXY_FIXTURE_H

typedef struct fx_daemon fx_daemon;

/* tinyproxy. user/password: BasicAuth required when user is set. connect_port: the one port CONNECT may reach
 * (0: any). Waits until it listens; fails the test (with the daemon's output) when it cannot start. */
fx_daemon *fx_tinyproxy_start(const char *user, const char *password, int connect_port);
/* danted. user/password: the username method (RFC 1929) required when user is set, else no authentication. */
fx_daemon *fx_danted_start(const char *user, const char *password);

int fx_daemon_port(const fx_daemon *d);
/* SIGKILL to the daemon and every process it forked; waits for it. Its port is free again afterwards. */
void fx_daemon_kill(fx_daemon *d);
/* Starts it again on the same port with the same configuration; waits until it listens. */
void fx_daemon_restart(fx_daemon *d);
/* What the daemon printed so far (NUL-terminated, the last 64 KiB at most). */
const char *fx_daemon_output(fx_daemon *d);
/* Kills it (when running) and frees everything. */
void fx_daemon_stop(fx_daemon *d);

#endif
