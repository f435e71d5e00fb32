'use strict';
// The @parse/node-apn-shaped layer: Provider, Notification, send(note, tokens) -> { sent, failed }.
const test = require('node:test');
const assert = require('node:assert');
const apn = require('../compat');
const { startMock, token } = require('./support/mock');

test('Provider.send(note, tokens) -> { sent, failed } as node-apn', async () => {
  const m = await startMock(['--unregistered-prefix', 'dead']);
  const provider = new apn.Provider({ cert: m.cert, key: m.key, ca: m.ca, address: '127.0.0.1', port: m.port,
    servername: 'localhost' });
  try {
    const note = new apn.Notification({ alert: 'Hello', badge: 0, sound: 'ping.aiff', topic: 'com.example.app' });
    note.payload.messageFrom = 'John Appleseed';
    note.contentAvailable = true;
    note.expiry = Math.floor(Date.now() / 1000) + 3600;
    assert.deepStrictEqual(JSON.parse(note.compile()), {
      messageFrom: 'John Appleseed',
      aps: { alert: 'Hello', badge: 0, sound: 'ping.aiff', 'content-available': 1 },
    });
    const dead = 'dead' + token(2).slice(4);
    const r = await provider.send(note, [token(1), dead, token(3)]);
    assert.deepStrictEqual(r.sent.map((s) => s.device).sort(), [token(1), token(3)].sort());
    assert.strictEqual(r.failed.length, 1);
    assert.strictEqual(r.failed[0].device, dead);
    assert.strictEqual(r.failed[0].status, 410);
    assert.strictEqual(r.failed[0].response.reason, 'Unregistered');
    assert.strictEqual(typeof r.failed[0].response.timestamp, 'number');
    const one = await provider.send(note, token(4));
    assert.strictEqual(one.sent.length, 1);
    const bad = await provider.send(note, 'nothex');
    assert.strictEqual(bad.failed[0].error.code, 'APNS_EBADTOKEN');
  } finally {
    await provider.shutdown();
    await m.stop();
  }
});
