'use strict';
// The libapns addon against @parse/node-apn and apns2 (from npm, installed here, not the addon's dependencies)
// on one apns-mock, in one run: notifications/s, CPU per notification and peak RSS of each client in a process
// of its own; then the same with the mock holding every answer 50 ms, where the limit is
// connections x 1000 streams / 0.05 s. The C pool (bench/apns-bench, when built) runs in the same run for its
// CPU per notification.
//
//   cd bindings/node/bench && npm install && node bench.js [--quick] [--json]
//
// Every client authenticates with the mock's client certificate (apns2 knows only provider tokens: it sends its
// JWT too, which the mock ignores on a certificate connection, and gets the certificate through its undici pool),
// so the rows compare the same requests: the same 96-byte payload as the C bench's, apns-topic, apns-push-type.
// The C pool row is bench/apns-bench --client-auth (its own apns-mock, same binary and flags).
const fs = require('fs');
const path = require('path');
const { spawn, spawnSync } = require('child_process');

const here = __dirname;
const pkg = path.resolve(here, '..');
const repo = path.resolve(pkg, '..', '..');
const { startMock, token: makeToken } = require(path.join(pkg, 'test', 'support', 'mock.js'));
// 1000 device tokens made once: the bench's own work per send stays out of the clients' CPU.
const TOKENS = Array.from({ length: 1000 }, (_, i) => makeToken(i));
const token = (i) => TOKENS[i % 1000];

// The C bench's default payload (96 bytes), so the rows compare the same requests.
const PAYLOAD = { aps: { alert: { title: 'apns-bench', body: 'Hello from libapns' }, badge: 1, sound: 'default' } };
const TOPIC = 'com.example.app';
const KEY_ID = 'ABC123DEFG';
const TEAM_ID = 'DEF123GHIJ';

// ---------------------------------------------------------------------------------------------------------------
// A child: one client, a warm-up, then N notifications with a window of W in flight. Prints one JSON line.
async function child(spec) {
  const { kind, port, n, conns, window: W, ca, cert, key, tokenKey } = spec;
  let sendOne;
  let close;
  if (kind === 'libapns-send' || kind === 'libapns-sendMany') {
    const { Client } = require(pkg);
    const c = new Client({ host: '127.0.0.1', port, ca, servername: 'localhost', cert, key, topic: TOPIC,
      connections: conns });
    const json = JSON.stringify(PAYLOAD);
    sendOne = (i) => c.send(token(i), json);
    close = () => c.close();
    // The pool opens at most 4 connections a second (Apple dislikes connection storms): time only once all are up.
    spec.ready = () => new Promise((resolve) => {
      const check = () => (c.stats().connectionsUp >= conns ? resolve() : c.once('connectionUp', check));
      check();
    });
    if (kind === 'libapns-sendMany') {
      spec.many = async (count, offset) => {
        function* src() {
          for (let i = 0; i < count; i++) yield { token: token(offset + i), notification: json };
        }
        let ok = 0;
        for await (const r of c.sendMany(src(), { window: W })) if (r.result) ok++;
        return ok;
      };
    }
  } else if (kind === 'node-apn') {
    const apn = require('@parse/node-apn');
    const p = new apn.Provider({ cert: fs.readFileSync(cert), key: fs.readFileSync(key), address: '127.0.0.1', port,
      ca: [fs.readFileSync(ca)], production: false });
    const note = new apn.Notification({ alert: PAYLOAD.aps.alert, badge: 1, sound: 'default', topic: TOPIC });
    note.topic = TOPIC;
    sendOne = (i) => p.send(note, token(i)).then((r) => {
      if (r.failed.length) throw new Error(JSON.stringify(r.failed[0]));
    });
    close = () => p.shutdown();
  } else if (kind === 'apns2') {
    const { ApnsClient, Notification } = require('apns2');
    const { Pool } = require('undici');
    const c = new ApnsClient({ team: TEAM_ID, keyId: KEY_ID, signingKey: fs.readFileSync(tokenKey),
      defaultTopic: TOPIC, host: '127.0.0.1' });
    // apns2 always dials port 443: give it the same pool (its own settings) aimed at the mock's port.
    c.client.close();
    Object.defineProperty(c, 'client', { value: new Pool(`https://127.0.0.1:${port}`, {
      connections: 32, pipelining: 1, allowH2: true, maxConcurrentStreams: 100,
      connect: { ca: fs.readFileSync(ca), cert: fs.readFileSync(cert), key: fs.readFileSync(key), servername: 'localhost' },
    }) });
    sendOne = (i) => c.send(new Notification(token(i), { alert: PAYLOAD.aps.alert, badge: 1, sound: 'default' }));
    close = () => c.close();
  } else {
    throw new Error(`unknown client ${kind}`);
  }

  async function windowed(count, offset) {
    let next = 0;
    let ok = 0;
    await new Promise((resolve, reject) => {
      let inflight = 0;
      const pump = () => {
        while (inflight < W && next < count) {
          inflight++;
          sendOne(offset + next++).then(() => {
            ok++;
            inflight--;
            if (next === count && inflight === 0) resolve();
            else pump();
          }, reject);
        }
      };
      pump();
    });
    return ok;
  }
  const run = spec.many || windowed;
  await run(Math.min(2000, n), 0); // warm-up: connections up, JIT warm
  if (spec.ready) await spec.ready();
  const t0 = process.hrtime.bigint();
  const cpu0 = process.cpuUsage();
  const ok = await run(n, 1000);
  const cpu = process.cpuUsage(cpu0);
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const rss = process.resourceUsage().maxRSS * 1024;
  await close();
  process.stdout.write(JSON.stringify({ kind, n, ok, secs, rate: ok / secs, cpuUs: (cpu.user + cpu.system) / n,
    peakRssMb: rss / 1048576 }) + '\n');
  // node-apn and apns2 may keep timers or sockets after close: the numbers are out, end here.
  process.exit(0);
}

// ---------------------------------------------------------------------------------------------------------------
// The parent: mocks, children, the C bench, the table.
function runChild(spec) {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [__filename, '--child', JSON.stringify(spec)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    const timer = setTimeout(() => p.kill('SIGKILL'), 120000);
    p.on('exit', (code) => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(out.trim().split('\n').pop()));
      } catch {
        reject(new Error(`${spec.kind}: exited ${code} without a result: ${out}`));
      }
    });
  });
}

function cBench(n, conns, server) {
  const bin = process.env.APNS_BENCH ||
    [path.join(repo, 'build', 'bench', 'apns-bench'), path.join(pkg, 'build-mock', 'bench', 'apns-bench')]
      .find((f) => fs.existsSync(f));
  if (!bin) return null;
  const args = ['-n', String(n), '-c', String(conns), '--runs', '1', '--no-h2load', '--no-latency', '--mem-n', '0',
    '--json'];
  if (server) {
    args.push('--host', '127.0.0.1', '--port', String(server.port), '--ca', server.ca, '--cert', server.cert, '--key',
      server.key, '--verify-name', 'localhost');
  } else {
    args.push('--client-auth');
  }
  const r = spawnSync(bin, args, { encoding: 'utf8', timeout: 120000 });
  if (r.status !== 0) return null;
  try {
    return JSON.parse(r.stdout);
  } catch {
    return null;
  }
}

const fmt = (x, d = 0) => x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });

async function main() {
  const quick = process.argv.includes('--quick');
  const json = process.argv.includes('--json');
  const scale = quick ? 0.25 : 1;
  const N = { libapns: Math.round(300000 * scale), other: Math.round(40000 * scale) };
  const results = { throughput: [], delay50: [] };
  const log = (s) => process.stderr.write(s + '\n');

  const runs = quick ? 1 : 3;
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const m = await startMock();
  const base = { port: m.port, ca: m.ca, cert: m.cert, key: m.key, tokenKey: m.tokenKey };
  const byKind = new Map();
  const keep = (r) => {
    if (!byKind.has(r.kind)) byKind.set(r.kind, []);
    byKind.get(r.kind).push(r);
  };
  try {
    log(`bench: apns-mock on 127.0.0.1:${m.port}, Node ${process.version}, ${runs} alternating run(s) of libapns and the C pool`);
    for (let run = 0; run < runs; run++) {
      for (const kind of ['libapns-sendMany', 'libapns-send']) {
        const r = await runChild({ ...base, kind, n: N.libapns, conns: 2, window: 4000 });
        r.conns = 2;
        keep(r);
        log(`  ${kind}: ${fmt(r.rate)}/s, ${fmt(r.cpuUs, 2)} us CPU each, peak RSS ${fmt(r.peakRssMb, 1)} MB`);
      }
      const c = cBench(N.libapns, 2);
      const ours = c && c.main && c.main.ours;
      if (ours) {
        keep({ kind: 'C pool (apns-bench, its own mock)', conns: 2, n: N.libapns, rate: ours.rate,
          cpuUs: ours.cpu_us_per_notification, peakRssMb: ours.peak_rss_kb / 1024 });
        log(`  C pool (apns-bench -c 2): ${fmt(ours.rate)}/s, ${fmt(ours.cpu_us_per_notification, 2)} us CPU each`);
      }
    }
    for (const [kind, n, conns, window] of [['node-apn', N.other, 1, 1000], ['apns2', N.other, 32, 1000]]) {
      const r = await runChild({ ...base, kind, n, conns, window });
      r.conns = conns;
      keep(r);
      log(`  ${kind}: ${fmt(r.rate)}/s, ${fmt(r.cpuUs, 2)} us CPU each, peak RSS ${fmt(r.peakRssMb, 1)} MB`);
    }
  } finally {
    await m.stop();
  }
  for (const rs of byKind.values()) {
    results.throughput.push({ ...rs[0], rate: median(rs.map((r) => r.rate)), cpuUs: median(rs.map((r) => r.cpuUs)),
      peakRssMb: Math.max(...rs.map((r) => r.peakRssMb)), runs: rs.length });
  }

  const d = await startMock(['--delay-ms', '50']);
  const dbase = { port: d.port, ca: d.ca, cert: d.cert, key: d.key, tokenKey: d.tokenKey };
  try {
    log('bench: the mock holding each answer 50 ms');
    for (const conns of [1, 2, 4, 8]) {
      const n = Math.round(conns * 60000 * scale);
      const r = await runChild({ ...dbase, kind: 'libapns-sendMany', n, conns, window: conns * 2000 });
      r.conns = conns;
      r.limit = conns * 1000 / 0.05;
      results.delay50.push(r);
      log(`  libapns, ${conns} connection(s): ${fmt(r.rate)}/s of ${fmt(r.limit)} (${fmt(r.rate / r.limit, 2)})`);
    }
    // The C pool on the same delayed mock: what the server and the machine allow at 8 connections.
    for (const conns of [1, 8]) {
      const cr = cBench(Math.round(conns * 60000 * scale), conns, d);
      const ours = cr && cr.main && cr.main.ours;
      if (!ours) continue;
      const r = { kind: 'C pool (apns-bench)', conns, n: Math.round(conns * 60000 * scale), rate: ours.rate,
        cpuUs: ours.cpu_us_per_notification, limit: conns * 1000 / 0.05 };
      results.delay50.push(r);
      log(`  C pool, ${conns} connection(s): ${fmt(r.rate)}/s of ${fmt(r.limit)} (${fmt(r.rate / r.limit, 2)})`);
    }
    // apns2's undici pool keeps one request in flight per connection (32 of them): about 640/s at 50 ms.
    for (const [kind, conns, window, n] of [['node-apn', 1, 1000, 20000], ['apns2', 32, 3200, 4000]]) {
      const r = await runChild({ ...dbase, kind, n: Math.round(n * scale), conns, window });
      r.conns = conns;
      results.delay50.push(r);
      log(`  ${kind}: ${fmt(r.rate)}/s`);
    }
  } finally {
    await d.stop();
  }

  if (json) {
    process.stdout.write(JSON.stringify(results, null, 2) + '\n');
    return;
  }
  const napn = results.throughput.find((r) => r.kind === 'node-apn');
  const cp = results.throughput.find((r) => r.kind.startsWith('C pool'));
  const lines = [];
  lines.push('| client | connections | notifications | runs | notifications/s | CPU us/notification | peak RSS MB | rate vs node-apn | CPU vs node-apn |');
  lines.push('|---|---|---|---|---|---|---|---|---|');
  for (const r of results.throughput) {
    lines.push(`| ${r.kind} | ${r.conns} | ${fmt(r.n)} | ${r.runs} | ${fmt(r.rate)} | ${fmt(r.cpuUs, 2)} | ${fmt(r.peakRssMb, 1)} | ` +
      `${fmt(r.rate / napn.rate, 1)}x | ${fmt(r.cpuUs / napn.cpuUs, 3)}x |`);
  }
  if (cp) {
    for (const r of results.throughput.filter((x) => x.kind.startsWith('libapns'))) {
      lines.push('');
      lines.push(`${r.kind}: ${fmt(r.cpuUs / cp.cpuUs, 2)} x the C pool's CPU per notification (medians)`);
    }
  }
  lines.push('');
  lines.push('| mock holds answers 50 ms | connections | notifications/s | limit (c x 1000 / 0.05 s) | of the limit | CPU us/notification |');
  lines.push('|---|---|---|---|---|---|');
  for (const r of results.delay50) {
    lines.push(`| ${r.kind} | ${r.conns} | ${fmt(r.rate)} | ${r.limit ? fmt(r.limit) : ''} | ` +
      `${r.limit ? fmt(r.rate / r.limit, 2) : ''} | ${fmt(r.cpuUs, 2)} |`);
  }
  process.stdout.write(lines.join('\n') + '\n');
}

if (process.argv[2] === '--child') {
  child(JSON.parse(process.argv[3])).catch((e) => {
    process.stderr.write(`${e.stack}\n`);
    process.exit(1);
  });
} else {
  main().catch((e) => {
    process.stderr.write(`${e.stack}\n`);
    process.exit(1);
  });
}
