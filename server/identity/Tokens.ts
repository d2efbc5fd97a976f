import jwt from 'jsonwebtoken';
import { AppError } from '../../shared/protocol/errors.js';

export interface AccessClaims {
  /** user id */
  sub: string;
  /** session id (one per signed-in device) */
  sid: string;
  /** device id */
  did: string;
  exp: number;
  iat: number;
}

export interface TokenOptions {
  keys: Map<string, string>;
  signingKid: string;
  issuer: string;
  audience: string;
  ttlSeconds: number;
}

/**
 * Access tokens: HS256 JWTs with a pinned algorithm, iss/aud/exp checks and a
 * `kid` header so keys can rotate (one signing key, several verification keys).
 */
export class Tokens {
  readonly #opts: TokenOptions;

  constructor(opts: TokenOptions) {
    if (!opts.keys.has(opts.signingKid)) {
      throw new TypeError(`signing kid "${opts.signingKid}" is not among the configured keys`);
    }
    this.#opts = opts;
  }

  issue(claims: { userId: string; sessionId: string; deviceId: string }): { token: string; expiresAt: number } {
    const o = this.#opts;
    const token = jwt.sign({ sid: claims.sessionId, did: claims.deviceId }, o.keys.get(o.signingKid)!, {
      algorithm: 'HS256',
      keyid: o.signingKid,
      subject: claims.userId,
      issuer: o.issuer,
      audience: o.audience,
      expiresIn: o.ttlSeconds,
    });
    const decoded = jwt.decode(token) as { exp: number };
    return { token, expiresAt: decoded.exp * 1000 };
  }

  /** Verifies signature, algorithm, kid, iss, aud and exp; throws AppError with a stable code. */
  verify(token: unknown): AccessClaims {
    if (typeof token !== 'string' || token.length === 0 || token.length > 4096) {
      throw new AppError('UNAUTHENTICATED');
    }
    const header = jwt.decode(token, { complete: true })?.header;
    const key = header?.kid !== undefined ? this.#opts.keys.get(header.kid) : undefined;
    if (!key) throw new AppError('TOKEN_INVALID');
    try {
      const payload = jwt.verify(token, key, {
        algorithms: ['HS256'],
        issuer: this.#opts.issuer,
        audience: this.#opts.audience,
      }) as jwt.JwtPayload;
      if (typeof payload.sub !== 'string' || typeof payload.sid !== 'string' || typeof payload.did !== 'string' ||
          typeof payload.exp !== 'number' || typeof payload.iat !== 'number') {
        throw new AppError('TOKEN_INVALID');
      }
      return { sub: payload.sub, sid: payload.sid, did: payload.did, exp: payload.exp, iat: payload.iat };
    } catch (err) {
      if (err instanceof AppError) throw err;
      if (err instanceof jwt.TokenExpiredError) throw new AppError('TOKEN_EXPIRED');
      throw new AppError('TOKEN_INVALID');
    }
  }
}
