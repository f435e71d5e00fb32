// Types of the @parse/node-apn-shaped layer (require('libapns/compat')).
/// <reference types="node" />
import { Client, ApnsError, PushType } from './index';

export interface ProviderOptions {
  token?: { key: string | Buffer; keyId: string; teamId: string };
  cert?: string | Buffer;
  key?: string | Buffer;
  passphrase?: string;
  ca?: string | Buffer | Array<string | Buffer>;
  /** Default: NODE_ENV === 'production'. */
  production?: boolean;
  /** A host of your own instead of Apple's. */
  address?: string;
  port?: number;
  servername?: string;
  rejectUnauthorized?: boolean;
  connections?: number;
  requestTimeout?: number;
}

export class Notification {
  constructor(payload?: Record<string, unknown>);
  aps: Record<string, unknown>;
  payload: Record<string, unknown>;
  rawPayload?: string | object;
  topic?: string;
  expiry?: number | Date;
  priority?: number;
  collapseId?: string;
  id?: string;
  pushType?: PushType;
  alert?: string | Record<string, unknown>;
  badge?: number;
  sound?: string | Record<string, unknown>;
  contentAvailable?: boolean;
  mutableContent?: boolean;
  category?: string;
  threadId?: string;
  compile(): string;
}

export interface Responses {
  sent: Array<{ device: string }>;
  failed: Array<{ device: string; status?: number; response?: { reason: string | null; timestamp?: number };
    error?: ApnsError | TypeError | RangeError }>;
}

export class Provider {
  constructor(options?: ProviderOptions);
  readonly client: Client;
  send(notification: Notification, recipients: string | string[]): Promise<Responses>;
  shutdown(callback?: () => void): Promise<void>;
}

export { Client };
