// Type declarations for the libapns Node.js addon.
/// <reference types="node" />
import { EventEmitter } from 'events';

export type PushType =
  | 'alert' | 'background' | 'location' | 'voip' | 'complication' | 'fileprovider' | 'mdm' | 'liveactivity'
  | 'pushtotalk' | 'widgets' | 'controls';

/** A PEM text (a string holding "-----BEGIN", or a Buffer), or the name of a PEM file. */
export type PemOrFile = string | Buffer;

export interface ClientOptions {
  /** Exactly one endpoint: Apple's production or development servers, or a host of your own (a mock, a proxy). */
  production?: boolean;
  development?: boolean;
  host?: string;
  /** Default 443 (Apple also listens on 2197). */
  port?: number;
  /** Trust anchors for the server. Default: the system bundle, which holds Apple's roots. */
  ca?: PemOrFile;
  /** Certificate auth: the client certificate and its key (and the key's passphrase). */
  cert?: PemOrFile;
  key?: PemOrFile;
  passphrase?: string;
  /** Token auth: the .p8 key, its 10-character key id and the 10-character team id. */
  tokenKey?: PemOrFile;
  keyId?: string;
  teamId?: string;
  /** Default apns-topic (the app's bundle id). */
  topic?: string;
  /** Name the server certificate must carry when it differs from host (also sent as SNI). */
  servername?: string;
  /** false turns off server verification: for test servers only. Default true. */
  rejectUnauthorized?: boolean;
  /** HTTP/2 connections kept open. Default 2. */
  connections?: number;
  /** Default deadline of a send, ms, from the call to its settlement. Default 10 000. */
  timeout?: number;
  /** Bound of the pending queue; past it send() rejects with APNS_EQUEUEFULL. Default unbounded. */
  maxQueued?: number;
  /** 'drain' is emitted when the queue falls to this. Default maxQueued / 2. */
  lowWater?: number;
  /** Do not resend requests that may have reached Apple when a connection is lost. Default false. */
  neverResendUnknown?: boolean;
}

export interface SendOptions {
  /** Default: 'background' when the payload only sets content-available, 'alert' otherwise. */
  pushType?: PushType;
  /** 1, 5 or 10. Default: 5 for background, 10 otherwise. */
  priority?: number;
  /** apns-expiration: UNIX seconds, or a Date. 0: try once, do not store. */
  expiration?: number | Date;
  /** apns-collapse-id, at most 64 bytes. */
  collapseId?: string;
  /** apns-id: a UUID. Default: APNs makes one. */
  apnsId?: string;
  /** Default: the client's topic. The push type's suffix (.voip, ...) is added when missing. */
  topic?: string;
  /** Deadline of this send, ms. Default: the client's timeout. */
  timeout?: number;
}

/** A plain object ({ aps: {...}, ...custom }), a string of JSON, or a Buffer of JSON. */
export type Notification = object | string | Buffer;

export interface SendResult {
  apnsId: string | null;
  /** apns-unique-id (development environment only). */
  uniqueId: string | null;
  status: 200;
  /** Tries made (retries included). */
  attempts: number;
}

export type Delivery = 'responded' | 'not-processed' | 'unknown';

export class ApnsError extends Error {
  name: 'ApnsError';
  /** 'APNS_REJECTED' for an answer other than 200 (see status and reason); else the C library's code:
   * 'APNS_ETIMEDOUT', 'APNS_ECLOSED', 'APNS_ECANCELED', 'APNS_ESTOPPED', 'APNS_EQUEUEFULL', ... */
  code: string;
  /** The C library's negative code; 0 for APNS_REJECTED. */
  errno: number;
  /** HTTP status, 0 when no answer arrived. */
  status: number;
  /** APNs reason ("BadDeviceToken", "Unregistered", ...), or null. */
  reason: string | null;
  /** For 410: since when the token is invalid, ms since the epoch; else null. */
  timestamp: number | null;
  /** Whether APNs may have processed it: 'not-processed' is always safe to send again. */
  delivery: Delivery;
  attempts: number;
  apnsId: string | null;
}

export interface SendManyItem {
  token: string;
  notification: Notification;
  options?: SendOptions;
}

export type SendManyEntry =
  | { index: number; token: string; result: SendResult; error?: undefined }
  | { index: number; token: string; result?: undefined; error: ApnsError | TypeError | RangeError };

export interface SendManyOptions {
  /** Most sends outstanding or unread at once (memory bound). Default connections x 2000, capped by maxQueued. */
  window?: number;
}

export interface Stats {
  queued: number;
  inFlight: number;
  connectionsUp: number;
  posted: number;
  sent: number;
  accepted: number;
  rejected: number;
  failed: number;
  retried: number;
  timedOut: number;
  /** Sends accepted by the addon and not yet settled in JS. */
  pending: number;
  byStatus: { '2xx': number; '400': number; '403': number; '410': number; '4xx': number; '5xx': number };
}

export interface ConnectionEvent { connection: number; }
export interface ConnectionDownEvent { connection: number; code?: string; errno?: number; reason?: string; }
export interface RetryEvent { connection: number; code?: string; errno?: number; status?: number; attempt?: number;
  reason?: string; }
export interface StoppedEvent { code?: string; errno?: number; status?: number; reason?: string; }

export interface CloseOptions {
  /** true (default): sends in progress may finish within the client's timeout; false: cancel them now; a number:
   * that many ms. What is left then rejects with APNS_ECANCELED. */
  drain?: boolean | number;
}

export class Client extends EventEmitter {
  constructor(options: ClientOptions);
  /** Settles once: a 200 resolves, anything else rejects with an ApnsError. Throws TypeError or RangeError at once
   * for bad arguments, before anything is queued. */
  send(token: string, notification: Notification, options?: SendOptions): Promise<SendResult>;
  /** Results in completion order; reads the source only as results are consumed and sends complete. */
  sendMany(source: Iterable<SendManyItem> | AsyncIterable<SendManyItem>, options?: SendManyOptions):
    AsyncIterableIterator<SendManyEntry>;
  close(options?: CloseOptions): Promise<void>;
  readonly closed: boolean;
  stats(): Stats;
  /** As socket.ref(): the client keeps the process alive even when idle, until unref() or close. */
  ref(): this;
  /** The default: an idle open client does not keep the process alive; a pending send or a close in progress
   * always does. */
  unref(): this;

  on(event: 'connectionUp' | 'tokenRefresh', listener: (ev: ConnectionEvent) => void): this;
  on(event: 'connectionDown', listener: (ev: ConnectionDownEvent) => void): this;
  on(event: 'retry', listener: (ev: RetryEvent) => void): this;
  on(event: 'stopped', listener: (ev: StoppedEvent) => void): this;
  on(event: 'drain' | 'close', listener: () => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
}

export const PUSH_TYPES: Readonly<Record<PushType, number>>;

/** The versions the addon runs: libapns, the nghttp2 it calls (and was built with), the libuv of this process. */
export function versions(): { libapns: string; nghttp2: string; nghttp2Built: string; uv: string; uvBuilt: string;
  napi: number };
