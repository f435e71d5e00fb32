'use strict';
// send() against apns-mock: certificate and token auth, rejections with APNs's answer, 100 000 sends.
const test = require('node:test');
const assert = require('node:assert');
const { Client, ApnsError } = require('..');
const { startMock, token } = require('./support/mock');

test('certificate auth: a 200 resolves with the apns-id, status and attempts', async () => {
  const m = await startMock();
  const c = new Client(m.certOptions());
  try {
    const id = '0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d';
    const r = await c.send(token(1), { aps: { alert: 'hello' } }, { apnsId: id.toUpperCase(), priority: 5 });
    assert.deepStrictEqual(r, { apnsId: id, uniqueId: null, status: 200, attempts: 1 });
    const r2 = await c.send(token(2), '{"aps":{"badge":0}}');
    assert.match(r2.apnsId, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    const st = c.stats();
    assert.strictEqual(st.accepted, 2);
    assert.strictEqual(st.pending, 0);
  } finally {
    await c.close();
    await m.stop();
  }
});

test('token auth: a provider token is signed and accepted', async () => {
  const m = await startMock(['--no-client-auth']);
  const c = new Client(m.tokenOptions({ connections: 1 }));
  try {
    const r = await c.send(token(3), { aps: { alert: 'token' } });
    assert.strictEqual(r.status, 200);
    // The mock raises a token connection's stream limit after the first 200: many more now go through.
    const rs = await Promise.all(Array.from({ length: 2000 }, (_, i) => c.send(token(i), { aps: { badge: i } })));
    assert.strictEqual(rs.length, 2000);
    assert.ok(rs.every((x) => x.status === 200));
  } finally {
    await c.close();
    await m.stop();
  }
});

test('token auth with a key the server does not know: 403 InvalidProviderToken', async () => {
  const m = await startMock(['--no-client-auth', '--token-key-id', 'ZZZ999ZZZZ']);
  const c = new Client(m.tokenOptions({ connections: 1 }));
  try {
    await assert.rejects(c.send(token(3), { aps: { alert: 'x' } }), (e) => {
      assert.ok(e instanceof ApnsError);
      assert.strictEqual(e.status, 403);
      assert.strictEqual(e.reason, 'InvalidProviderToken');
      assert.strictEqual(e.code, 'APNS_REJECTED');
      assert.strictEqual(e.delivery, 'responded');
      return true;
    });
  } finally {
    await c.close();
    await m.stop();
  }
});

test('APNs rejections reject with status, reason and the 410 timestamp', async () => {
  const m = await startMock(['--bad-prefix', 'bad', '--unregistered-prefix', 'dead']);
  const c = new Client(m.certOptions());
  try {
    await assert.rejects(c.send('bad0' + token(1).slice(4), { aps: { alert: 'x' } }), (e) => {
      assert.ok(e instanceof ApnsError && e instanceof Error);
      assert.strictEqual(e.status, 400);
      assert.strictEqual(e.reason, 'BadDeviceToken');
      assert.strictEqual(e.timestamp, null);
      return true;
    });
    const before = Date.now();
    await assert.rejects(c.send('dead' + token(1).slice(4), { aps: { alert: 'x' } }), (e) => {
      assert.strictEqual(e.status, 410);
      assert.strictEqual(e.reason, 'Unregistered');
      assert.strictEqual(typeof e.timestamp, 'number');
      assert.ok(e.timestamp > before - 86400e3 * 365 && e.timestamp < Date.now() + 86400e3, String(e.timestamp));
      assert.match(e.apnsId, /^[0-9a-f-]{36}$/);
      return true;
    });
    // A push type whose suffix the topic lacks: the mock answers as APNs does.
    await assert.rejects(c.send(token(1), { aps: {} , x: 1 }, { pushType: 'voip', topic: 'com.example.app.voip.x' }),
      (e) => e.status === 400);
  } finally {
    await c.close();
    await m.stop();
  }
});

test('100 000 sends: each promise settles exactly once, all accepted', async () => {
  const m = await startMock();
  const c = new Client(m.certOptions());
  const N = 100000;
  let settled = 0;
  let twice = 0;
  const seen = new Uint8Array(N);
  try {
    const ps = [];
    for (let i = 0; i < N; i++) {
      ps.push(c.send(token(i), '{"aps":{"alert":"bulk"}}').then((r) => {
        if (seen[i]++) twice++;
        settled++;
        return r.status;
      }));
    }
    const statuses = await Promise.all(ps);
    assert.strictEqual(settled, N);
    assert.strictEqual(twice, 0);
    assert.ok(statuses.every((s) => s === 200));
    const st = c.stats();
    assert.strictEqual(st.posted, N);
    assert.strictEqual(st.accepted, N);
    assert.strictEqual(st.failed, 0);
    assert.strictEqual(st.pending, 0);
  } finally {
    await c.close();
    await m.stop();
  }
});

test('each batch of completions runs in a callback scope: nextTick and promise jobs run before the next phase', async () => {
  const m = await startMock();
  const c = new Client(m.certOptions());
  try {
    await c.send(token(0), { aps: { alert: 'warm' } });
    const order = [];
    await new Promise((resolve) => {
      const ps = Array.from({ length: 200 }, (_, i) => c.send(token(i), { aps: { alert: 'x' } }));
      ps[0].then(() => {
        order.push('then');
        process.nextTick(() => order.push('tick'));
        Promise.resolve().then(() => order.push('microtask'));
        setImmediate(() => {
          order.push('immediate');
          resolve();
        });
      });
    });
    assert.strictEqual(order[0], 'then');
    assert.ok(order.indexOf('tick') < order.indexOf('immediate'));
    assert.ok(order.indexOf('microtask') < order.indexOf('immediate'));
  } finally {
    await c.close();
    await m.stop();
  }
});
