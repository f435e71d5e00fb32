'use strict';
// sendMany: results in completion order, each item once, the source read only as the window allows, and a
// million-item generator streamed in bounded memory.
const test = require('node:test');
const assert = require('node:assert');
const { Client } = require('..');
const { startMock, token } = require('./support/mock');

// Memory bounds over the million sends. The peak RSS of the whole process stays under RSS_PEAK_MB; and the peak
// over the last 750 000 results exceeds the peak over the first 250 000 by less than RSS_GROWTH_MB (the heap
// breathes by some 10 MB between collections, so peaks are compared, not samples): a leak of 32 bytes per item
// would add 24 MB over those 750 000 items. (Measured on Node 20: a flat ~90 MB in a process of its own, with the default
// window of 4 000 sends for 2 connections.)
// Under ASan (scripts/node-test --sanitize) freed memory sits in its quarantine (256 MB by default) and shadow
// memory adds more: the sanitizer run raises the peak bound with APNS_TEST_RSS_PEAK_MB, and the growth bound with
// APNS_TEST_RSS_GROWTH_MB, since the quarantine goes on filling after the first quarter (one CI run grew 18 MB
// with nothing leaking). The plain run keeps 16 MB, which catches a leak of 32 bytes an item; the sanitized one
// catches leaks of some 64 bytes an item and up, and is there for ASan's and UBSan's checks.
const RSS_PEAK_MB = Number(process.env.APNS_TEST_RSS_PEAK_MB || 256);
const RSS_GROWTH_MB = Number(process.env.APNS_TEST_RSS_GROWTH_MB || 16);

test('a million-item generator streams in bounded memory, each result once', async () => {
  const m = await startMock();
  const c = new Client(m.certOptions());
  const N = 1000000;
  const payload = '{"aps":{"alert":"bulk"}}';
  try {
    // Warm-up: let the heap, the pool's free lists and the connections reach their working size.
    for await (const r of c.sendMany((function* () {
      for (let i = 0; i < 20000; i++) yield { token: token(i), notification: payload };
    })())) assert.ok(r.result);
    let first = 0; // peak RSS up to the 250 000th result
    let peak = 0; // peak RSS after it
    let quarter = false;
    const sample = () => {
      const rss = process.memoryUsage.rss();
      if (quarter) peak = Math.max(peak, rss);
      else first = Math.max(first, rss);
    };
    const sampler = setInterval(sample, 20);
    let pulled = 0;
    let got = 0;
    let maxAhead = 0;
    const seen = new Uint8Array(N);
    function* source() {
      for (let i = 0; i < N; i++) {
        pulled++;
        yield { token: token(i), notification: payload };
      }
    }
    for await (const r of c.sendMany(source())) {
      assert.strictEqual(seen[r.index]++, 0);
      if (r.error) throw r.error;
      got++;
      if (got === 250000) quarter = true;
      maxAhead = Math.max(maxAhead, pulled - got);
      if ((got & 1023) === 0) sample();
    }
    clearInterval(sampler);
    sample();
    assert.strictEqual(got, N);
    assert.ok(maxAhead <= 4000 + 1, `source read ${maxAhead} items ahead of the consumer (window 4000)`);
    const grewMb = (peak - first) / 1048576;
    const peakMb = peak / 1048576;
    console.log(`# sendMany 1e6: peak RSS ${peakMb.toFixed(1)} MB, ${grewMb.toFixed(1)} MB above the first quarter's`);
    assert.ok(peakMb < RSS_PEAK_MB, `peak RSS ${peakMb.toFixed(1)} MB (bound ${RSS_PEAK_MB} MB)`);
    assert.ok(grewMb < RSS_GROWTH_MB, `peak RSS grew ${grewMb.toFixed(1)} MB after the first quarter (bound ${RSS_GROWTH_MB} MB)`);
    assert.strictEqual(c.stats().accepted, N + 20000);
  } finally {
    await c.close();
    await m.stop();
  }
});

test('an async source, a window, and a slow consumer: the source is read only as results are taken', async () => {
  const m = await startMock(['--unregistered-prefix', 'dead']);
  const c = new Client(m.certOptions());
  try {
    let pulled = 0;
    async function* source() {
      for (let i = 0; i < 300; i++) {
        pulled++;
        await null;
        yield { token: i % 10 === 0 ? 'dead' + token(i).slice(4) : token(i), notification: { aps: { badge: i } } };
      }
    }
    const it = c.sendMany(source(), { window: 16 });
    let taken = 0;
    let dead = 0;
    for await (const r of it) {
      taken++;
      assert.ok(pulled - taken <= 16, `pulled ${pulled}, taken ${taken}`);
      if (r.error) {
        assert.strictEqual(r.error.reason, 'Unregistered');
        assert.strictEqual(r.token.slice(0, 4), 'dead');
        dead++;
      } else {
        assert.strictEqual(r.result.status, 200);
      }
      if (taken % 50 === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    }
    assert.strictEqual(taken, 300);
    assert.strictEqual(dead, 30);
  } finally {
    await c.close();
    await m.stop();
  }
});

test('breaking out of the loop stops reading the source; a source that throws ends the iteration', async () => {
  const m = await startMock();
  const c = new Client(m.certOptions());
  try {
    let pulled = 0;
    let finalized = false;
    function* source() {
      try {
        for (let i = 0; ; i++) {
          pulled++;
          yield { token: token(i), notification: { aps: { alert: 'x' } } };
        }
      } finally {
        finalized = true;
      }
    }
    let n = 0;
    for await (const r of c.sendMany(source(), { window: 100 })) {
      assert.ok(r.result);
      if (++n === 500) break;
    }
    assert.ok(finalized, 'the source was closed');
    assert.ok(pulled <= 600, `pulled ${pulled}`);
    function* failing() {
      yield { token: token(1), notification: { aps: { alert: 'x' } } };
      throw new Error('source broke');
    }
    const got = [];
    await assert.rejects(async () => {
      for await (const r of c.sendMany(failing())) got.push(r);
    }, /source broke/);
    assert.strictEqual(got.length, 1, 'what was sent before the failure is still reported');
  } finally {
    await c.close();
    await m.stop();
  }
});
