'use strict';
// Closing, and the ends of environments: close with sends in flight (drained or canceled), a script that forgets
// close(), what keeps the process alive (an idle client does not, a pending send does, client.ref() does),
// process.exit() with a client busy, a Worker using a client terminated mid-run or ending on its own.
const test = require('node:test');
const assert = require('node:assert');
const path = require('path');
const { spawn } = require('child_process');
const { Worker } = require('worker_threads');
const { Client, ApnsError, _native } = require('..');
const { startMock, token } = require('./support/mock');

const FACTOR = Number(process.env.APNS_TEST_TIME_FACTOR || 1);
const CHILD = path.join(__dirname, 'fixtures', 'child.js');

test('close({ drain: false }) with sends in flight: each rejects APNS_ECANCELED, then close resolves', async () => {
  const m = await startMock(['--pause']);
  const c = new Client(m.certOptions());
  try {
    await new Promise((resolve) => c.once('connectionUp', resolve));
    const order = [];
    const ps = Array.from({ length: 500 }, (_, i) => c.send(token(i), { aps: { alert: 'x' } }).then(
      () => order.push('resolved'), (e) => { order.push(e.code); return e; }));
    const closed = c.close({ drain: false }).then(() => order.push('closed'));
    assert.strictEqual(c.close(), c.close(), 'a second close returns the same promise');
    await closed;
    await Promise.all(ps);
    assert.strictEqual(order.length, 501);
    assert.strictEqual(order[500], 'closed', 'every send settles before close resolves');
    assert.ok(order.slice(0, 500).every((x) => x === 'APNS_ECANCELED'), order.find((x) => x !== 'APNS_ECANCELED'));
    assert.strictEqual(c.closed, true);
    assert.strictEqual(c.stats().pending, 0);
    await assert.rejects(c.send(token(1), { aps: { alert: 'late' } }), (e) => e instanceof ApnsError &&
      e.code === 'APNS_ECLOSED' && e.delivery === 'not-processed');
  } finally {
    await m.stop();
  }
});

test('close() drains: sends in flight are answered first', async () => {
  const m = await startMock(['--delay-ms', '100']);
  const c = new Client(m.certOptions());
  try {
    const ps = Array.from({ length: 1000 }, (_, i) => c.send(token(i), { aps: { alert: 'x' } }));
    await c.close();
    const rs = await Promise.allSettled(ps);
    assert.ok(rs.every((r) => r.status === 'fulfilled'), String(rs.find((r) => r.status !== 'fulfilled')?.reason));
    assert.strictEqual(c.stats().accepted, 1000);
  } finally {
    await m.stop();
  }
});

test('close({ drain: ms }) cancels what is still held when the drain time is up', async () => {
  const m = await startMock(['--pause']);
  const c = new Client(m.certOptions());
  try {
    const ps = Array.from({ length: 100 }, (_, i) => c.send(token(i), { aps: { alert: 'x' } }));
    const settled = Promise.allSettled(ps);
    const t0 = Date.now();
    await c.close({ drain: 300 });
    const dt = Date.now() - t0;
    assert.ok(dt >= 280 && dt < 300 + 2000 * FACTOR, `closed after ${dt} ms`);
    const rs = await settled;
    assert.ok(rs.every((r) => r.status === 'rejected' && r.reason.code === 'APNS_ECANCELED'));
  } finally {
    await m.stop();
  }
});

function runChild(opts, mode, onSent) {
  const p = spawn(process.execPath, [CHILD], {
    env: { ...process.env, APNS_CHILD_OPTS: JSON.stringify(opts), APNS_CHILD_MODE: mode },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  p.stdout.on('data', (d) => {
    out += d;
    if (onSent && /^sent /.test(out)) {
      onSent(p);
      onSent = null;
    }
  });
  p.stderr.on('data', (d) => { err += d; });
  // A child that hangs is the failure these tests look for: end it, and say so, rather than hang the run.
  let hung = false;
  const timer = setTimeout(() => { hung = true; p.kill('SIGKILL'); }, 30000 * FACTOR);
  return new Promise((resolve) => p.on('exit', (code, signal) => {
    clearTimeout(timer);
    resolve({ code, signal, out, err: hung ? `hung, killed after ${30000 * FACTOR} ms\n${err}` : err });
  }));
}

// Runs the child in mode against a mock of its own (started with mockArgs) and checks that it ended by itself
// with status 0 (not killed as hung); returns what runChild saw, with ms, the time it took.
async function childEnds(mockArgs, mode) {
  const m = await startMock(mockArgs);
  try {
    const t0 = Date.now();
    const r = await runChild(m.certOptions(), mode);
    r.ms = Date.now() - t0;
    assert.strictEqual(r.signal, null, r.err);
    assert.strictEqual(r.code, 0, r.err);
    return r;
  } finally {
    await m.stop();
  }
}

test('a script that forgets close() still exits once its work is done', async () => {
  const r = await childEnds([], 'forget');
  assert.match(r.out, /^sent 50 /);
  // It must not wait for the connections' health checks (15 s) or anything else of the library's.
  assert.ok(r.ms < 10000 * FACTOR, `took ${r.ms} ms`);
});

test('an idle open client, never closed, lets the process exit on its own', async () => {
  const r = await childEnds([], 'idle');
  assert.strictEqual(r.out, 'up\n', 'it connected before it exited');
});

test('a pending send keeps the process alive until it settles', async () => {
  const r = await childEnds(['--pause'], 'pending');
  // Had the send not held the loop, the process would have ended after "pending", the promise never settled.
  assert.strictEqual(r.out, 'pending\nsettled APNS_ETIMEDOUT\n');
  assert.ok(r.ms >= 1400, `exited after ${r.ms} ms, before the send's 1500 ms deadline`);
});

test('client.ref() holds the process while idle; client.unref() lets it end', async () => {
  const r = await childEnds([], 'ref');
  // "held" comes from an unref'd timer: only the ref'd client keeps the process alive long enough for it.
  assert.strictEqual(r.out, 'up\nheld\n');
});

test('process.exit() with a client open and sends in flight: exits with its code, no crash', async () => {
  const m = await startMock();
  try {
    const r = await runChild(m.certOptions(), 'exit-busy', (child) => {
      m.signal('SIGUSR2'); // hold responses from now on: the exit finds sends on the wire
      child.stdin.end('go\n');
    });
    assert.strictEqual(r.signal, null, r.err);
    assert.strictEqual(r.code, 3, r.err);
    assert.strictEqual(r.err, '');
  } finally {
    await m.stop();
  }
});

function startWorker(opts, mode) {
  const w = new Worker(CHILD, { workerData: { opts, mode } });
  const messages = [];
  const waiters = [];
  w.on('message', (msg) => {
    messages.push(msg);
    for (const f of waiters.splice(0)) f();
  });
  const exited = new Promise((resolve, reject) => {
    w.on('exit', resolve);
    w.on('error', reject);
  });
  const waitFor = async (re) => {
    for (;;) {
      const hit = messages.find((x) => re.test(x));
      if (hit) return hit;
      await Promise.race([new Promise((r) => waiters.push(r)), exited]);
      if (!messages.find((x) => re.test(x)) && w.threadId === -1) throw new Error(`worker ended: ${messages}`);
    }
  };
  return { w, exited, waitFor, messages };
}

test('a Worker using a client, terminated mid-run: the Worker ends, the main thread goes on', async () => {
  const m = await startMock();
  const c = new Client(m.certOptions());
  try {
    const mainLoop = _native.loopInfo().loop;
    const wk = startWorker(m.certOptions(), 'busy');
    const sent = await wk.waitFor(/^sent /);
    assert.notStrictEqual(sent.split(' ')[2], mainLoop, 'the Worker runs its own loop');
    await wk.waitFor(/^busy$/);
    const code = await wk.w.terminate();
    assert.strictEqual(code, 1);
    await wk.exited;
    // The main thread's client is untouched.
    assert.strictEqual((await c.send(token(9), { aps: { alert: 'main' } })).status, 200);
    assert.strictEqual(_native.loopInfo().openClients, 1);
  } finally {
    await c.close();
    await m.stop();
  }
});

test('a Worker that forgets close() ends on its own', async () => {
  const m = await startMock();
  try {
    const wk = startWorker(m.certOptions(), 'forget');
    await wk.waitFor(/^sent /);
    assert.strictEqual(await wk.exited, 0);
  } finally {
    await m.stop();
  }
});

test('Workers terminated while connecting, many times over: no hang, no crash', async () => {
  const m = await startMock(['--pause']);
  try {
    for (let i = 0; i < 8; i++) {
      const w = new Worker(`
        const { Client } = require(${JSON.stringify(path.resolve(__dirname, '..'))});
        const c = new Client(${JSON.stringify(m.certOptions())});
        for (let i = 0; i < 100; i++) c.send('${token(i)}', { aps: { alert: 'x' } }).catch(() => {});
        require('worker_threads').parentPort.postMessage('go');
      `, { eval: true });
      await new Promise((resolve) => w.once('message', resolve));
      if (i % 2) await new Promise((resolve) => setImmediate(resolve));
      assert.strictEqual(await w.terminate(), 1);
    }
  } finally {
    await m.stop();
  }
});
