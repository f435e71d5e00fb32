'use strict';
// Bad arguments throw a TypeError or RangeError at once, with the C API's code, and nothing is sent.
const test = require('node:test');
const assert = require('node:assert');
const { Client, ApnsError } = require('..');
const { startMock, token } = require('./support/mock');

test('send: bad arguments throw synchronously and queue nothing', async () => {
  const m = await startMock();
  const c = new Client(m.certOptions());
  const good = token(1);
  const aps = { aps: { alert: 'x' } };
  const cases = [
    [() => c.send(42, aps), TypeError, 'ERR_INVALID_ARG_TYPE'],
    [() => c.send('xyz', aps), TypeError, 'APNS_EBADTOKEN'],
    [() => c.send('abc', aps), TypeError, 'APNS_EBADTOKEN'],
    [() => c.send('ab\u0000cd', aps), TypeError, 'APNS_EINVAL'],
    [() => c.send('a'.repeat(4000), aps), TypeError, 'APNS_EBADTOKEN'],
    [() => c.send(good, 7), TypeError, 'ERR_INVALID_ARG_TYPE'],
    [() => c.send(good, undefined), TypeError, 'ERR_INVALID_ARG_TYPE'],
    [() => c.send(good, '{"aps":'), TypeError, 'APNS_EBADJSON'],
    [() => c.send(good, '{}'), TypeError, 'APNS_EPAYLOADEMPTY'],
    [() => c.send(good, ''), TypeError, 'APNS_EPAYLOADEMPTY'],
    [() => c.send(good, { aps: { alert: 'x'.repeat(5000) } }), RangeError, 'APNS_EPAYLOADTOOLARGE'],
    [() => c.send(good, { aps: { alert: 'x'.repeat(100000) } }), RangeError, 'APNS_EPAYLOADTOOLARGE'],
    [() => c.send(good, aps, { pushType: 'fax' }), TypeError, 'APNS_EBADPUSHTYPE'],
    [() => c.send(good, aps, { pushType: 'toString' }), TypeError, 'APNS_EBADPUSHTYPE'],
    [() => c.send(good, aps, { priority: 7 }), RangeError, 'APNS_EBADPRIORITY'],
    [() => c.send(good, aps, { priority: 10, pushType: 'background' }), RangeError, 'APNS_EBADPRIORITY'],
    [() => c.send(good, aps, { priority: 5.5 }), TypeError, 'ERR_INVALID_ARG_TYPE'],
    [() => c.send(good, aps, { expiration: -1 }), RangeError, 'ERR_OUT_OF_RANGE'],
    [() => c.send(good, aps, { collapseId: 'c'.repeat(65) }), RangeError, 'APNS_EBADCOLLAPSEID'],
    [() => c.send(good, aps, { collapseId: 5 }), TypeError, 'ERR_INVALID_ARG_TYPE'],
    [() => c.send(good, aps, { apnsId: 'not-a-uuid' }), TypeError, 'APNS_EBADAPNSID'],
    [() => c.send(good, aps, { topic: 'has space' }), TypeError, 'APNS_EBADTOPIC'],
    [() => c.send(good, aps, { timeout: 0 }), RangeError, 'ERR_OUT_OF_RANGE'],
    [() => c.send(good, aps, 'alert'), TypeError, 'ERR_INVALID_ARG_TYPE'],
  ];
  try {
    for (const [fn, Ctor, code] of cases) {
      assert.throws(fn, (e) => {
        assert.ok(e instanceof Ctor, `${fn}: ${e.constructor.name} ${e.message}`);
        assert.strictEqual(e.code, code, String(fn));
        return true;
      });
    }
    const st = c.stats();
    assert.strictEqual(st.posted, 0);
    assert.strictEqual(st.pending, 0);
    // And the client still works.
    assert.strictEqual((await c.send(good, aps, { expiration: new Date(Date.now() + 3600e3) })).status, 200);
    assert.strictEqual(c.stats().posted, 1);
  } finally {
    await c.close();
    await m.stop();
  }
});

test('new Client: bad options throw at once', () => {
  assert.throws(() => new Client(), TypeError);
  assert.throws(() => new Client({ host: '127.0.0.1' }), (e) => e instanceof TypeError && e.code === 'APNS_EINVAL' &&
    /authentication/.test(e.message));
  assert.throws(() => new Client({ production: true, development: true, cert: 'a', key: 'b' }), TypeError);
  assert.throws(() => new Client({ host: '127.0.0.1', port: 70000, cert: 'a', key: 'b' }), RangeError);
  assert.throws(() => new Client({ host: '127.0.0.1', connections: 0, cert: 'a', key: 'b' }), RangeError);
  assert.throws(() => new Client({ host: '127.0.0.1', cert: 'a', key: 'b', tokenKey: 'c', keyId: 'ABC123DEFG',
    teamId: 'DEF123GHIJ' }), (e) => e instanceof TypeError && /not both/.test(e.message));
  assert.throws(() => new Client({ host: '127.0.0.1', cert: '/nonexistent/cert.pem', key: '/nonexistent/key.pem' }),
    (e) => e instanceof ApnsError && e.code === 'APNS_EBADCERT' && /nonexistent/.test(e.message));
  assert.throws(() => new Client({ development: true, tokenKey: '/nonexistent.p8', keyId: 'ABC123DEFG',
    teamId: 'DEF123GHIJ' }), (e) => e.code === 'APNS_EBADKEY');
  assert.throws(() => new Client({ host: '127.0.0.1', cert: 'a', key: 'b', topic: 'a b' }),
    (e) => e instanceof TypeError && e.code === 'APNS_EBADTOPIC');
});

test('sendMany: a bad item yields its error, the others go through', async () => {
  const m = await startMock();
  const c = new Client(m.certOptions());
  try {
    const items = [
      { token: token(1), notification: { aps: { alert: 'a' } } },
      { token: 'nothex', notification: { aps: { alert: 'b' } } },
      7,
      { token: token(2), notification: { aps: { alert: 'c' } }, options: { priority: 3 } },
      { token: token(3), notification: { aps: { alert: 'd' } } },
    ];
    const out = [];
    for await (const r of c.sendMany(items)) out.push(r);
    out.sort((a, b) => a.index - b.index);
    assert.deepStrictEqual(out.map((r) => r.index), [0, 1, 2, 3, 4]);
    assert.strictEqual(out[0].result.status, 200);
    assert.strictEqual(out[1].error.code, 'APNS_EBADTOKEN');
    assert.ok(out[2].error instanceof TypeError);
    assert.strictEqual(out[3].error.code, 'APNS_EBADPRIORITY');
    assert.strictEqual(out[4].result.status, 200);
    assert.strictEqual(c.stats().posted, 2);
  } finally {
    await c.close();
    await m.stop();
  }
});

test('a repeated payload gets the same checks each time (size by push type, then a different payload)', async () => {
  const m = await startMock();
  const c = new Client(m.certOptions());
  try {
    const big = JSON.stringify({ aps: { alert: 'v'.repeat(4500) } });
    const voip = { pushType: 'voip', topic: 'com.example.app.voip' };
    assert.strictEqual((await c.send(token(1), big, voip)).status, 200);
    assert.strictEqual((await c.send(token(2), big, voip)).status, 200); // the same bytes again
    assert.throws(() => c.send(token(3), big), (e) => e instanceof RangeError && e.code === 'APNS_EPAYLOADTOOLARGE');
    const bad = big.slice(0, -2) + '!}'; // same length, not JSON
    assert.throws(() => c.send(token(4), bad, voip), (e) => e.code === 'APNS_EBADJSON');
    const background = '{"aps":{"content-available":1}}';
    await c.send(token(5), background);
    // The cached notification still knows it is a background one: priority 10 is refused for it.
    assert.throws(() => c.send(token(6), background, { priority: 10 }), (e) => e.code === 'APNS_EBADPRIORITY');
    assert.strictEqual(c.stats().posted, 3);
  } finally {
    await c.close();
    await m.stop();
  }
});
