#!/usr/bin/python3
"""aioapns (Debian 12's python3-aioapns 2.2, on the pure-Python h2 stack and asyncio's ssl) as a peer in the
bench: sends N notifications to HOST:PORT with a window in flight, then prints one JSON line
{"client", "connections", "n", "ok", "failed", "statuses", "secs", "rate", "cpu_us"}, as bench/peers/run's other
clients do. It exits 1 unless every notification got a 200: a run with failures is not a measurement.

    python3 bench/peers/aioapns_bench.py --port P --ca ca.pem --cert client.pem --key client-key.pem -n 20000

aioapns knows only Apple's hosts on port 443: the connection pool dials protocol_class.APNS_SERVER and
APNS_PORT, class attributes of the protocol it picks from use_sandbox. The bench gives the pool a subclass of
aioapns's own development protocol with the bench server's name and port instead (nothing else of aioapns is
changed). The name must be one the server's certificate holds (apns-mock --self-signed: localhost), since it is
both what is dialled and what the certificate is checked against; it is also sent as the request's `host` header,
as aioapns sends Apple's name.
"""
import argparse
import asyncio
import json
import logging
import os
import resource
import sys
import tempfile
import time

try:
    from aioapns import APNs, NotificationRequest, PushType
    from aioapns.connection import APNsDevelopmentClientProtocol
except ImportError as e:  # the runner reports the client as not installed
    print(json.dumps({"client": "aioapns", "error": "aioapns not installed: %s (apt-get install python3-aioapns)" % e}))
    sys.exit(3)

# The C bench's default payload (96 bytes) and token, so the rows compare the same requests.
PAYLOAD = {"aps": {"alert": {"title": "apns-bench", "body": "Hello from libapns"}, "badge": 1, "sound": "default"}}
TOKEN = "4f6d1e6cbb3a4c2b9a8e0d7c6b5a4938271605f4e3d2c1b0a998877665544332"
TOPIC = "com.example.app"


def cpu_s():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


async def bench(args, cert_file):
    import ssl

    ctx = ssl.create_default_context(cafile=args.ca)
    # aioapns's default context offers no ALPN, and apns-mock (the library's TLS, lib/tls.c) ends a handshake that
    # did not agree on h2 (APNS_EALPN): the bench's context offers it, as RFC 9113 3.2 has TLS clients do.
    ctx.set_alpn_protocols(["h2"])

    class BenchServer(APNsDevelopmentClientProtocol):
        APNS_SERVER = args.host
        APNS_PORT = args.port

    client = APNs(client_cert=cert_file, topic=TOPIC, use_sandbox=True, max_connections=args.connections,
                  ssl_context=ctx)
    client.pool.protocol_class = BenchServer
    statuses = {}

    async def window(count):
        # A window of W sends in flight, each slot starting the next as its answer comes.
        left = [count]

        async def slot():
            while left[0] > 0:
                left[0] -= 1
                req = NotificationRequest(device_token=TOKEN, message=PAYLOAD, push_type=PushType.ALERT,
                                          priority=10)
                try:
                    r = await client.send_notification(req)
                    key = str(r.status)
                except Exception as e:  # a send that failed outright counts as a failure, by its kind
                    key = type(e).__name__
                statuses[key] = statuses.get(key, 0) + 1

        await asyncio.gather(*(slot() for _ in range(min(args.window, count))))

    # Warm-up: the connection up, the interpreter's caches warm; then the measured run alone is counted.
    await window(min(args.warmup, args.n))
    statuses.clear()
    t0, c0 = time.monotonic(), cpu_s()
    await window(args.n)
    secs, cpu = time.monotonic() - t0, cpu_s() - c0
    client.pool.close()
    ok = statuses.get("200", 0)
    return {"client": "aioapns", "connections": args.connections, "n": args.n, "ok": ok, "failed": args.n - ok,
            "statuses": statuses, "secs": secs, "rate": ok / secs if secs > 0 else 0, "cpu_us": cpu * 1e6 / args.n}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="localhost", help="server name, dialled and checked (default localhost)")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--ca", required=True, help="CA of the server's certificate")
    p.add_argument("--cert", required=True, help="client certificate (PEM)")
    p.add_argument("--key", required=True, help="its key (PEM)")
    p.add_argument("-n", type=int, default=20000, help="notifications measured (default 20000)")
    p.add_argument("--window", type=int, default=1000, help="notifications in flight (default 1000)")
    p.add_argument("--connections", type=int, default=1, help="aioapns's max_connections (default 1)")
    p.add_argument("--warmup", type=int, default=1000, help="notifications sent before the measure (default 1000)")
    args = p.parse_args()
    # aioapns logs every refused notification; the statuses are counted here instead.
    logging.getLogger("aioapns").setLevel(logging.CRITICAL)
    # aioapns loads its certificate with ssl's load_cert_chain(cert_file): certificate and key in one file.
    with tempfile.NamedTemporaryFile("w", suffix=".pem", delete=False) as f:
        for name in (args.cert, args.key):
            with open(name) as src:
                f.write(src.read())
        cert_file = f.name
    try:
        result = asyncio.run(bench(args, cert_file))
    finally:
        os.unlink(cert_file)
    print(json.dumps(result), flush=True)
    sys.exit(0 if result["ok"] == args.n else 1)


if __name__ == "__main__":
    main()
