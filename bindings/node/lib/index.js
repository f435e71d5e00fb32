'use strict';
// The JavaScript face of the addon: argument checks and conversions, promises, the bulk iterator and events.
// The native side (src/addon.c) does no more than cross into libapns; what the C API refuses comes back as a
// negative code at once, and is thrown here (TypeError or RangeError for bad input) before anything is queued.
// Completions arrive in one batch per loop turn (onBatch), inside one callback scope.

const { EventEmitter } = require('events');
const path = require('path');

function loadNative() {
  const root = path.resolve(__dirname, '..');
  const tries = [path.join(root, 'build', 'Release', 'apns.node'), path.join(root, 'build', 'Debug', 'apns.node')];
  let first;
  for (const f of tries) {
    try {
      return require(f);
    } catch (e) {
      if (e.code !== 'MODULE_NOT_FOUND') throw e;
      first = first || e;
    }
  }
  throw new Error(`libapns: the addon is not built (${tries[0]}); run npm install in ${root}`);
}

const native = loadNative();

const PUSH_TYPES = Object.freeze({
  alert: 1, background: 2, location: 3, voip: 4, complication: 5, fileprovider: 6, mdm: 7, liveactivity: 8,
  pushtotalk: 9, widgets: 10, controls: 11,
});
const DELIVERY = ['responded', 'not-processed', 'unknown'];
const EVENTS = [null, 'connectionUp', 'connectionDown', 'retry', 'tokenRefresh', 'stopped'];
// The C API's answers to bad input, and which JS error each becomes. Any other synchronous refusal (queue full,
// closed, stopped, out of memory) is not the caller's input: it rejects the promise instead.
const RANGE_CODES = new Set(['APNS_EPAYLOADTOOLARGE', 'APNS_EBADPRIORITY', 'APNS_EBADCOLLAPSEID']);
const TYPE_CODES = new Set(['APNS_EINVAL', 'APNS_EBADTOKEN', 'APNS_EBADTOPIC', 'APNS_EBADAPNSID', 'APNS_EBADPUSHTYPE',
  'APNS_EBADJSON', 'APNS_EBADUTF8', 'APNS_EPAYLOADEMPTY', 'APNS_EBADHEADER']);
const DEFAULT_TIMEOUT = 10000;

const errCache = new Map();
function errInfo(errno) {
  let e = errCache.get(errno);
  if (e === undefined) {
    e = native.errName(errno);
    errCache.set(errno, e);
  }
  return e;
}

class ApnsError extends Error {
  constructor(message, fields) {
    super(message);
    this.name = 'ApnsError';
    this.code = fields.code;
    this.errno = fields.errno || 0;
    this.status = fields.status || 0;
    this.reason = fields.reason || null;
    this.timestamp = fields.timestamp || null;
    this.delivery = fields.delivery || 'responded';
    this.attempts = fields.attempts || 0;
    this.apnsId = fields.apnsId || null;
  }
}

function argError(Ctor, message, code) {
  const e = new Ctor(message);
  e.code = code;
  return e;
}

// The error for a negative code from the native send(): a TypeError or RangeError for bad input (to throw),
// else an ApnsError (to reject with).
function refusal(errno, what) {
  const [code, message] = errInfo(errno);
  if (RANGE_CODES.has(code)) return argError(RangeError, `${what}: ${message}`, code);
  if (TYPE_CODES.has(code)) return argError(TypeError, `${what}: ${message}`, code);
  return new ApnsError(message, { code, errno, delivery: 'not-processed' });
}

function payloadOf(notification) {
  if (typeof notification === 'string') return notification;
  if (Buffer.isBuffer(notification)) return notification.toString('utf8');
  if (notification !== null && typeof notification === 'object') {
    return JSON.stringify(notification);
  }
  throw argError(TypeError, 'notification must be an object or a string of JSON', 'ERR_INVALID_ARG_TYPE');
}

function optString(v, name) {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw argError(TypeError, `${name} must be a string`, 'ERR_INVALID_ARG_TYPE');
  return v;
}

function optInt(v, name, min) {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v)) {
    throw argError(TypeError, `${name} must be an integer`, 'ERR_INVALID_ARG_TYPE');
  }
  if (v < min || v > Number.MAX_SAFE_INTEGER) {
    throw argError(RangeError, `${name} must be an integer >= ${min}`, 'ERR_OUT_OF_RANGE');
  }
  return v;
}

// PEM text, or a file to read: a Buffer or a string with a PEM header is text, any other string a path.
function pemOrFile(v, name) {
  if (v === undefined || v === null) return [undefined, undefined];
  if (Buffer.isBuffer(v)) return [undefined, v.toString('utf8')];
  if (typeof v !== 'string') throw argError(TypeError, `${name} must be a file name, PEM text or a Buffer`,
    'ERR_INVALID_ARG_TYPE');
  return v.includes('-----BEGIN') ? [undefined, v] : [v, undefined];
}

function nativeOptions(o) {
  if (o === null || typeof o !== 'object') throw argError(TypeError, 'options must be an object', 'ERR_INVALID_ARG_TYPE');
  const n = {};
  const ends = (o.production ? 1 : 0) + (o.development ? 1 : 0) + (o.host !== undefined ? 1 : 0);
  if (ends !== 1) {
    throw argError(TypeError, 'choose one endpoint: production: true, development: true, or host', 'APNS_EINVAL');
  }
  n.endpoint = o.production ? 0 : o.development ? 1 : 2;
  n.host = optString(o.host, 'host');
  n.port = optInt(o.port, 'port', 0);
  if (n.port > 65535) throw argError(RangeError, 'port must be at most 65535', 'ERR_OUT_OF_RANGE');
  [n.caFile, n.caPem] = pemOrFile(o.ca, 'ca');
  [n.certFile, n.certPem] = pemOrFile(o.cert, 'cert');
  [n.keyFile, n.keyPem] = pemOrFile(o.key, 'key');
  [n.tokenKeyFile, n.tokenKeyPem] = pemOrFile(o.tokenKey, 'tokenKey');
  n.passphrase = optString(o.passphrase, 'passphrase');
  n.keyId = optString(o.keyId, 'keyId');
  n.teamId = optString(o.teamId, 'teamId');
  n.topic = optString(o.topic, 'topic');
  n.verifyName = optString(o.servername, 'servername');
  if (o.rejectUnauthorized !== undefined && typeof o.rejectUnauthorized !== 'boolean') {
    throw argError(TypeError, 'rejectUnauthorized must be a boolean', 'ERR_INVALID_ARG_TYPE');
  }
  n.insecure = o.rejectUnauthorized === false;
  n.connections = optInt(o.connections, 'connections', 1);
  if (n.connections > 1000) throw argError(RangeError, 'connections must be at most 1000', 'ERR_OUT_OF_RANGE');
  n.timeout = optInt(o.timeout, 'timeout', 1);
  n.maxQueued = optInt(o.maxQueued, 'maxQueued', 1);
  n.lowWater = optInt(o.lowWater, 'lowWater', 0);
  n.neverResendUnknown = !!o.neverResendUnknown;
  return n;
}

// send()'s options, as the native call's flat arguments (written into out, reused by sendMany).
function sendArgs(opts, out) {
  out[0] = out[1] = out[2] = out[3] = out[4] = out[5] = out[6] = undefined;
  if (opts === undefined || opts === null) return out;
  if (typeof opts !== 'object') throw argError(TypeError, 'options must be an object', 'ERR_INVALID_ARG_TYPE');
  if (opts.pushType !== undefined) {
    const t = PUSH_TYPES[opts.pushType];
    if (typeof opts.pushType !== 'string' || t === undefined || !Object.hasOwn(PUSH_TYPES, opts.pushType)) {
      throw argError(TypeError, `pushType: unknown push type ${String(opts.pushType)}`, 'APNS_EBADPUSHTYPE');
    }
    out[0] = t;
  }
  out[1] = optInt(opts.priority, 'priority', -2147483648);
  let exp = opts.expiration;
  if (exp instanceof Date) exp = Math.floor(exp.getTime() / 1000);
  out[2] = optInt(exp, 'expiration', 0);
  out[3] = optString(opts.collapseId, 'collapseId');
  out[4] = optString(opts.apnsId, 'apnsId');
  out[5] = optString(opts.topic, 'topic');
  out[6] = optInt(opts.timeout, 'timeout', 1);
  return out;
}

class Client extends EventEmitter {
  constructor(options) {
    super();
    const n = nativeOptions(options);
    this._timeout = n.timeout || DEFAULT_TIMEOUT;
    this._connections = n.connections || 2;
    this._maxQueued = n.maxQueued || 0;
    this._res = [];
    this._rej = [];
    this._args = new Array(7);
    this._closing = null;
    this._closeResolve = null;
    this._closed = false;
    try {
      this._native = new native.Native(n, (recs, strs, evs, flags) => this._onBatch(recs, strs, evs, flags));
    } catch (e) {
      if (e.code === 'APNS_EINVAL' || e.code === 'APNS_EBADTOPIC') throw argError(TypeError, e.message, e.code);
      throw new ApnsError(e.message, { code: e.code, errno: e.errno });
    }
  }

  // Queues one send; returns its slot (>= 0) or a negative code. Throws for bad arguments.
  _post(token, notification, opts) {
    if (typeof token !== 'string') throw argError(TypeError, 'token must be a string of hex', 'ERR_INVALID_ARG_TYPE');
    const json = payloadOf(notification);
    if (opts === undefined || opts === null) return this._native.send(token, json);
    const a = sendArgs(opts, this._args);
    return this._native.send(token, json, a[0], a[1], a[2], a[3], a[4], a[5], a[6]);
  }

  send(token, notification, options) {
    const slot = this._post(token, notification, options);
    if (slot < 0) {
      const e = refusal(slot, 'send');
      if (e instanceof ApnsError) return Promise.reject(e);
      throw e;
    }
    return new Promise((resolve, reject) => {
      this._res[slot] = resolve;
      this._rej[slot] = reject;
    });
  }

  sendMany(source, options) {
    return new SendMany(this, source, options);
  }

  close(options) {
    if (this._closing) return this._closing;
    let drain = this._timeout;
    if (options !== undefined && options !== null) {
      if (typeof options !== 'object') throw argError(TypeError, 'options must be an object', 'ERR_INVALID_ARG_TYPE');
      const d = options.drain;
      if (d === false) drain = 0;
      else if (d === true || d === undefined) drain = this._timeout;
      else drain = optInt(d, 'drain', 0);
    }
    this._closing = new Promise((resolve) => { this._closeResolve = resolve; });
    const rv = this._native.close(drain);
    if (rv < 0) this._closing = Promise.reject(refusal(rv, 'close'));
    return this._closing;
  }

  get closed() {
    return this._closed;
  }

  // As a socket's ref() and unref(): a ref'd client keeps the process alive even when idle. Default: unref'd (an
  // idle client lets the process end; a pending send or a close in progress always holds it).
  ref() {
    this._native.setRef(true);
    return this;
  }

  unref() {
    this._native.setRef(false);
    return this;
  }

  stats() {
    return this._native.stats();
  }

  _onBatch(recs, strs, evs, flags) {
    if (recs !== undefined) this._settle(recs, strs);
    let thrown = null;
    if (evs !== undefined) {
      for (let i = 0; i < evs.length; i += 6) {
        try {
          this._event(evs[i], evs[i + 1], evs[i + 2], evs[i + 3], evs[i + 4], evs[i + 5]);
        } catch (e) {
          if (thrown === null) thrown = e;
        }
      }
    }
    if (flags & 2) {
      try {
        this.emit('drain');
      } catch (e) {
        if (thrown === null) thrown = e;
      }
    }
    if (flags & 1) {
      this._closed = true;
      if (this._closeResolve) this._closeResolve();
      try {
        this.emit('close');
      } catch (e) {
        if (thrown === null) thrown = e;
      }
    }
    if (thrown !== null) throw thrown;
  }

  _settle(recs, strs) {
    const res = this._res;
    const rej = this._rej;
    let off = 0;
    for (let i = 0; i < recs.length; i += 9) {
      const slot = recs[i];
      const err = recs[i + 1];
      const status = recs[i + 2];
      const idLen = recs[i + 6];
      const uniqLen = recs[i + 7];
      const reasonLen = recs[i + 8];
      const apnsId = idLen ? strs.substr(off, idLen) : null;
      off += idLen;
      const uniqueId = uniqLen ? strs.substr(off, uniqLen) : null;
      off += uniqLen;
      const reason = reasonLen ? strs.substr(off, reasonLen) : null;
      off += reasonLen;
      const r = res[slot];
      const j = rej[slot];
      res[slot] = undefined;
      rej[slot] = undefined;
      let value;
      let error = null;
      if (err === 0 && status === 200) {
        value = { apnsId, uniqueId, status, attempts: recs[i + 3] };
      } else if (err === 0) {
        error = new ApnsError(`${status} ${reason || 'no reason'}`, {
          code: 'APNS_REJECTED', status, reason, timestamp: recs[i + 5] || null, delivery: 'responded',
          attempts: recs[i + 3], apnsId,
        });
      } else {
        const [code, message] = errInfo(err);
        error = new ApnsError(message, {
          code, errno: err, delivery: DELIVERY[recs[i + 4]] || 'unknown', attempts: recs[i + 3], apnsId,
        });
      }
      if (typeof r === 'function') {
        if (error === null) r(value);
        else j(error);
      } else if (r !== undefined) {
        r._settle(j, value, error);
      }
    }
  }

  _event(type, conn, err, status, attempt, reason) {
    const name = EVENTS[type];
    if (!name) return;
    const ev = { connection: conn };
    if (err) {
      ev.code = errInfo(err)[0];
      ev.errno = err;
    }
    if (status) ev.status = status;
    if (attempt) ev.attempt = attempt;
    if (reason) ev.reason = reason;
    if (name === 'stopped') delete ev.connection;
    this.emit(name, ev);
  }
}

// client.sendMany(): an async iterator of results in completion order. It reads the source only while fewer
// than `window` sends are outstanding or unread, so memory is bounded by the window, not by the source.
class SendMany {
  constructor(client, source, options) {
    if (source === null || source === undefined) {
      throw argError(TypeError, 'sendMany needs an iterable or async iterable', 'ERR_INVALID_ARG_TYPE');
    }
    let window = client._connections * 2000;
    if (client._maxQueued) window = Math.min(window, client._maxQueued);
    if (options !== undefined && options !== null) window = optInt(options.window, 'window', 1) || window;
    if (typeof source[Symbol.asyncIterator] === 'function') {
      this._it = source[Symbol.asyncIterator]();
      this._async = true;
    } else if (typeof source[Symbol.iterator] === 'function') {
      this._it = source[Symbol.iterator]();
      this._async = false;
    } else {
      throw argError(TypeError, 'sendMany needs an iterable or async iterable', 'ERR_INVALID_ARG_TYPE');
    }
    this._client = client;
    this._window = window;
    this._index = 0;
    this._inflight = 0;
    this._queue = [];
    this._head = 0;
    this._srcDone = false;
    this._pulling = false;
    this._stopped = false;
    this._error = null;
    this._waiter = null;
  }

  [Symbol.asyncIterator]() {
    return this;
  }

  _queued() {
    return this._queue.length - this._head;
  }

  _pump() {
    while (!this._srcDone && !this._pulling && !this._stopped &&
           this._inflight + this._queued() < this._window) {
      if (this._async) {
        this._pulling = true;
        let p;
        try {
          p = this._it.next();
        } catch (e) {
          this._pulling = false;
          this._fail(e);
          return;
        }
        Promise.resolve(p).then((r) => {
          this._pulling = false;
          this._take(r);
          this._pump();
          this._wake();
        }, (e) => {
          this._pulling = false;
          this._fail(e);
        });
        return;
      }
      let r;
      try {
        r = this._it.next();
      } catch (e) {
        this._fail(e);
        return;
      }
      this._take(r);
    }
  }

  _take(r) {
    if (r.done) {
      this._srcDone = true;
      return;
    }
    const item = r.value;
    const index = this._index++;
    const token = item !== null && typeof item === 'object' ? item.token : undefined;
    let slot;
    try {
      if (item === null || typeof item !== 'object') {
        throw argError(TypeError, 'each item must be { token, notification, options }', 'ERR_INVALID_ARG_TYPE');
      }
      slot = this._client._post(token, item.notification, item.options);
    } catch (e) {
      this._push({ index, token, error: e });
      return;
    }
    if (slot < 0) {
      this._push({ index, token, error: refusal(slot, 'sendMany') });
      return;
    }
    this._client._res[slot] = this;
    this._client._rej[slot] = { index, token };
    this._inflight++;
  }

  _settle(meta, value, error) {
    this._inflight--;
    this._push(error === null ? { index: meta.index, token: meta.token, result: value }
      : { index: meta.index, token: meta.token, error });
    this._pump();
  }

  _push(entry) {
    if (this._stopped) return;
    this._queue.push(entry);
    this._wake();
  }

  _fail(e) {
    this._srcDone = true;
    this._error = e;
    this._wake();
  }

  _finished() {
    return this._srcDone && this._inflight === 0 && !this._pulling && this._queued() === 0;
  }

  _wake() {
    const w = this._waiter;
    if (w === null) return;
    if (this._queued() > 0) {
      this._waiter = null;
      w.resolve({ value: this._shift(), done: false });
    } else if (this._finished() || this._stopped) {
      this._waiter = null;
      this._settleEnd(w);
    }
  }

  _settleEnd(w) {
    if (this._error !== null) {
      const e = this._error;
      this._error = null;
      this._stopped = true;
      w.reject(e);
    } else {
      w.resolve({ value: undefined, done: true });
    }
  }

  _shift() {
    const v = this._queue[this._head];
    this._queue[this._head++] = undefined;
    if (this._head > 1024 && this._head * 2 > this._queue.length) {
      this._queue = this._queue.slice(this._head);
      this._head = 0;
    }
    return v;
  }

  next() {
    if (this._queued() > 0) {
      const v = this._shift();
      this._pump();
      return Promise.resolve({ value: v, done: false });
    }
    if (this._stopped) return Promise.resolve({ value: undefined, done: true });
    this._pump();
    if (this._queued() > 0) return Promise.resolve({ value: this._shift(), done: false });
    return new Promise((resolve, reject) => {
      const w = { resolve, reject };
      if (this._finished()) this._settleEnd(w);
      else this._waiter = w;
    });
  }

  // The consumer stopped early (break, throw): read no more; sends already queued still end in the client.
  return() {
    this._stopped = true;
    this._queue = [];
    this._head = 0;
    if (this._it && typeof this._it.return === 'function') {
      try {
        const r = this._it.return();
        if (r && typeof r.then === 'function') r.then(undefined, () => {});
      } catch { /* the source's own problem */ }
    }
    return Promise.resolve({ value: undefined, done: true });
  }
}

function versions() {
  return native.versions();
}

module.exports = { Client, ApnsError, PUSH_TYPES, versions, _native: native };
