'use strict';
// The mock misbehaving as APNs is seen to: connections dropped without GOAWAY, GOAWAY, a server that stops
// answering. Every send settles once; dropped and refused work is retried and accepted; a stall times out at the
// deadline with APNS_ETIMEDOUT.
const test = require('node:test');
const assert = require('node:assert');
const { Client, ApnsError } = require('..');
const { startMock, token } = require('./support/mock');

const FACTOR = Number(process.env.APNS_TEST_TIME_FACTOR || 1);

function record(c) {
  const ev = { connectionUp: [], connectionDown: [], retry: [] };
  for (const n of Object.keys(ev)) c.on(n, (e) => ev[n].push(e));
  return ev;
}

async function sendAll(c, n) {
  return Promise.allSettled(Array.from({ length: n }, (_, i) => c.send(token(i), { aps: { alert: `n${i}` } })));
}

test('connections dropped without GOAWAY: every send is accepted, connectionDown tells why', async () => {
  const m = await startMock(['--drop-after', '200']);
  const c = new Client(m.certOptions());
  const ev = record(c);
  try {
    const rs = await sendAll(c, 2000);
    const bad = rs.filter((r) => r.status !== 'fulfilled');
    assert.strictEqual(bad.length, 0, bad.length ? String(bad[0].reason) : '');
    assert.ok(ev.connectionDown.length >= 2, `connectionDown ${ev.connectionDown.length}`);
    const d = ev.connectionDown[0];
    // The cause: the library's APNS_ECLOSED, or the socket's own error when the reset wins the race.
    assert.ok(['APNS_ECLOSED', 'ECONNRESET', 'EPIPE', 'EOF'].includes(d.code), d.code);
    assert.ok(d.errno < 0);
    assert.strictEqual(typeof d.reason, 'string');
    assert.ok(d.connection === 0 || d.connection === 1);
    assert.ok(ev.connectionUp.length > ev.connectionDown.length - 2);
    assert.ok(ev.retry.length > 0);
    assert.ok(ev.retry[0].attempt >= 1);
    const st = c.stats();
    assert.strictEqual(st.accepted, 2000);
    assert.ok(st.retried > 0);
  } finally {
    await c.close();
    await m.stop();
  }
});

test('GOAWAY: every send is accepted; connectionDown carries the GOAWAY reason', async () => {
  const m = await startMock(['--goaway-after', '200', '--goaway-reason', 'Shutdown']);
  const c = new Client(m.certOptions());
  const ev = record(c);
  try {
    const rs = await sendAll(c, 2000);
    const bad = rs.filter((r) => r.status !== 'fulfilled');
    assert.strictEqual(bad.length, 0, bad.length ? String(bad[0].reason) : '');
    assert.ok(ev.connectionDown.some((e) => /GOAWAY/.test(e.reason) && /Shutdown/.test(e.reason)),
      JSON.stringify(ev.connectionDown[0]));
    assert.strictEqual(c.stats().accepted, 2000);
  } finally {
    await c.close();
    await m.stop();
  }
});

async function expectTimeouts(args, timeout, n) {
  const m = await startMock(args);
  const c = new Client(m.certOptions({ timeout }));
  try {
    const t0 = Date.now();
    const times = [];
    const rs = await Promise.allSettled(Array.from({ length: n }, (_, i) =>
      c.send(token(i), { aps: { alert: 'stall' } }).finally(() => times.push(Date.now() - t0))));
    for (const r of rs) {
      assert.strictEqual(r.status, 'rejected');
      assert.ok(r.reason instanceof ApnsError);
      assert.strictEqual(r.reason.code, 'APNS_ETIMEDOUT');
      assert.strictEqual(r.reason.status, 0);
      assert.ok(['unknown', 'not-processed'].includes(r.reason.delivery));
    }
    // libuv's clock is cached per loop turn and counts whole ms: allow a few ms early, and a generous margin late.
    const early = Math.min(...times);
    const late = Math.max(...times);
    assert.ok(early >= timeout - 25, `first rejection at ${early} ms, deadline ${timeout} ms`);
    assert.ok(late <= timeout + 2000 * FACTOR, `last rejection at ${late} ms, deadline ${timeout} ms`);
    assert.strictEqual(c.stats().timedOut, n);
  } finally {
    await c.close();
    await m.stop();
  }
}

test('a stalled server (--pause): APNS_ETIMEDOUT at the deadline', () => expectTimeouts(['--pause'], 500, 300));

test('a slow server (--delay-ms beyond the timeout): APNS_ETIMEDOUT at the deadline',
  () => expectTimeouts(['--delay-ms', '5000'], 400, 100));

test('per-send timeout overrides the client timeout', async () => {
  const m = await startMock(['--pause']);
  const c = new Client(m.certOptions({ timeout: 60000 }));
  try {
    const t0 = Date.now();
    await assert.rejects(c.send(token(1), { aps: { alert: 'x' } }, { timeout: 300 }), { code: 'APNS_ETIMEDOUT' });
    assert.ok(Date.now() - t0 < 300 + 2000 * FACTOR);
  } finally {
    await c.close({ drain: false });
    await m.stop();
  }
});
