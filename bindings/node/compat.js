'use strict';
// A thin layer with the shape of @parse/node-apn's Provider and Notification, so that its users can switch by
// changing one require:
//   const apn = require('libapns/compat');
//   const provider = new apn.Provider({ token: { key, keyId, teamId }, production: true });
//   const note = new apn.Notification({ alert: 'Hello', topic: 'com.example.app' });
//   const { sent, failed } = await provider.send(note, tokens);
// It covers the common subset: certificate or token auth, the aps keys node-apn has setters for, custom payload,
// rawPayload, topic, expiry, priority, collapseId, id and pushType. Everything goes through Client.
const { Client } = require('./lib/index.js');

const APS_KEYS = {
  alert: 'alert', badge: 'badge', sound: 'sound', contentAvailable: 'content-available',
  mutableContent: 'mutable-content', category: 'category', threadId: 'thread-id',
  targetContentIdentifier: 'target-content-id', interruptionLevel: 'interruption-level',
  relevanceScore: 'relevance-score', filterCriteria: 'filter-criteria', urlArgs: 'url-args',
  staleDate: 'stale-date', contentState: 'content-state', timestamp: 'timestamp', event: 'event',
  dismissalDate: 'dismissal-date',
};

class Notification {
  constructor(payload) {
    this.aps = {};
    this.payload = {};
    this.rawPayload = undefined;
    this.topic = undefined;
    this.expiry = undefined;
    this.priority = undefined;
    this.collapseId = undefined;
    this.id = undefined;
    this.pushType = undefined;
    if (payload && typeof payload === 'object') {
      for (const [k, v] of Object.entries(payload)) {
        if (k in APS_KEYS || k in this) this[k] = v;
        else this.payload[k] = v;
      }
    }
  }

  // node-apn's setters write into aps; booleans become 1 or nothing, as Apple wants.
  static _aps(name) {
    return {
      get() { return this.aps[APS_KEYS[name]]; },
      set(v) {
        const key = APS_KEYS[name];
        if (key === 'content-available' || key === 'mutable-content') {
          if (v) this.aps[key] = 1;
          else delete this.aps[key];
        } else if (v === undefined) {
          delete this.aps[key];
        } else {
          this.aps[key] = v;
        }
      },
      enumerable: true,
      configurable: true,
    };
  }

  // The JSON body, as node-apn's compile().
  compile() {
    if (this.rawPayload !== undefined) {
      return typeof this.rawPayload === 'string' ? this.rawPayload : JSON.stringify(this.rawPayload);
    }
    const body = { ...this.payload };
    if (Object.keys(this.aps).length > 0) body.aps = this.aps;
    return JSON.stringify(body);
  }

  // The send options the headers come from.
  _options() {
    const o = {};
    if (this.topic) o.topic = this.topic;
    if (this.pushType) o.pushType = this.pushType;
    if (this.priority !== undefined) o.priority = this.priority;
    if (this.expiry !== undefined && this.expiry !== null) {
      o.expiration = this.expiry instanceof Date ? this.expiry : Math.max(0, Math.floor(this.expiry));
    }
    if (this.collapseId) o.collapseId = this.collapseId;
    if (this.id) o.apnsId = this.id;
    return o;
  }
}
for (const name of Object.keys(APS_KEYS)) Object.defineProperty(Notification.prototype, name, Notification._aps(name));

class Provider {
  constructor(options = {}) {
    const o = {
      ca: options.ca === undefined ? undefined : Array.isArray(options.ca) ? options.ca.join('\n') : options.ca,
      cert: options.cert,
      key: options.key,
      passphrase: options.passphrase,
      rejectUnauthorized: options.rejectUnauthorized,
      connections: options.connections,
      timeout: options.requestTimeout,
    };
    if (Buffer.isBuffer(o.ca)) o.ca = o.ca.toString('utf8');
    if (options.token) {
      o.tokenKey = options.token.key;
      o.keyId = options.token.keyId;
      o.teamId = options.token.teamId;
      o.cert = o.key = undefined;
    }
    if (options.address) {
      o.host = options.address;
      o.port = options.port;
    } else if (options.production === undefined ? process.env.NODE_ENV === 'production' : options.production) {
      o.production = true;
      o.port = options.port;
    } else {
      o.development = true;
      o.port = options.port;
    }
    if (options.servername) o.servername = options.servername;
    this.client = new Client(o);
  }

  // Resolves { sent: [{ device }], failed: [{ device, status, response: { reason, timestamp } } | { device, error }] },
  // as node-apn's send() does; never rejects for a device's failure.
  async send(notification, recipients) {
    const tokens = Array.isArray(recipients) ? recipients : [recipients];
    const body = notification.compile();
    const opts = notification._options();
    const sent = [];
    const failed = [];
    await Promise.all(tokens.map(async (device) => {
      try {
        await this.client.send(device, body, opts);
        sent.push({ device });
      } catch (e) {
        if (e.status) {
          const response = { reason: e.reason };
          if (e.timestamp) response.timestamp = e.timestamp;
          failed.push({ device, status: e.status, response });
        } else {
          failed.push({ device, error: e });
        }
      }
    }));
    return { sent, failed };
  }

  shutdown(callback) {
    const p = this.client.close();
    if (typeof callback === 'function') p.then(() => callback(), () => callback());
    return p;
  }
}

module.exports = { Provider, Notification, Client };
