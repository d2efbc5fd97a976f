import { createHmac, randomBytes } from 'node:crypto';
import type { IceServer } from '../../shared/protocol/calls.js';

export interface IceServersOptions {
  stunUrls: readonly string[];
  /** TURN servers (coturn); credentials are minted only when a secret is set too. */
  turnUrls?: readonly string[] | undefined;
  /** coturn `static-auth-secret`. */
  turnSecret?: string | undefined;
  /** Lifetime of TURN credentials, seconds. */
  ttlSeconds: number;
}

/**
 * The ICE servers handed to clients. TURN credentials follow coturn's REST
 * scheme (`use-auth-secret`): username `<expiry epoch s>:<random>`, password
 * base64(HMAC-SHA1(secret, username)). Like Signal, the username carries a
 * random value rather than a user id, so the TURN server's logs cannot tie
 * an allocation to an account.
 */
export class IceServers {
  readonly #opts: IceServersOptions;

  constructor(opts: IceServersOptions) {
    if (opts.turnUrls?.length && !opts.turnSecret) throw new TypeError('TURN_URLS needs TURN_SECRET (coturn static-auth-secret)');
    this.#opts = opts;
  }

  get ttlSeconds(): number {
    return this.#opts.ttlSeconds;
  }

  forClient(now = Date.now()): IceServer[] {
    const servers: IceServer[] = [];
    if (this.#opts.stunUrls.length) servers.push({ urls: [...this.#opts.stunUrls] });
    if (this.#opts.turnUrls?.length && this.#opts.turnSecret) {
      const expiry = Math.floor(now / 1000) + this.#opts.ttlSeconds;
      const username = `${expiry}:${randomBytes(9).toString('base64url')}`;
      const credential = createHmac('sha1', this.#opts.turnSecret).update(username).digest('base64');
      servers.push({ urls: [...this.#opts.turnUrls], username, credential });
    }
    return servers;
  }
}
