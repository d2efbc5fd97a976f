/** What a signed-in device keeps between app launches. */
export interface StoredSession {
  accessToken: string;
  /** Absent for sessions created outside the sign-in flow (they cannot be refreshed). */
  refreshToken?: string;
  userId: string;
  deviceId: string;
}

/**
 * Where the SDK keeps the session. Browsers use `WebStorageTokenStore`
 * (localStorage), React Native apps plug in a keychain-backed store, tests
 * and Node use `MemoryTokenStore`.
 */
export interface TokenStore {
  load(): Promise<StoredSession | null> | StoredSession | null;
  save(session: StoredSession): Promise<void> | void;
  clear(): Promise<void> | void;
}

export class MemoryTokenStore implements TokenStore {
  #session: StoredSession | null;
  constructor(initial: StoredSession | null = null) {
    this.#session = initial;
  }
  load(): StoredSession | null {
    return this.#session;
  }
  save(session: StoredSession): void {
    this.#session = { ...session };
  }
  clear(): void {
    this.#session = null;
  }
}

/** The part of the Web Storage API the store needs (localStorage, sessionStorage). */
export interface KeyValueStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

export class WebStorageTokenStore implements TokenStore {
  constructor(private readonly storage: KeyValueStorage, private readonly key = 'callhub.session') {}
  load(): StoredSession | null {
    const raw = this.storage.getItem(this.key);
    if (!raw) return null;
    try {
      const parsed = JSON.parse(raw) as Partial<StoredSession>;
      if (typeof parsed.accessToken !== 'string' || typeof parsed.userId !== 'string' || typeof parsed.deviceId !== 'string') return null;
      return parsed as StoredSession;
    } catch {
      return null;
    }
  }
  save(session: StoredSession): void {
    this.storage.setItem(this.key, JSON.stringify(session));
  }
  clear(): void {
    this.storage.removeItem(this.key);
  }
}

/**
 * Reads the claims of a JWT without verifying it (the server verifies; the
 * client only needs `exp` to schedule a refresh). Works without `atob` or
 * `Buffer`, so it runs on every JavaScript engine the SDK targets.
 */
export function decodeJwtClaims(token: string): { exp?: number; sub?: string; sid?: string; did?: string } {
  const part = token.split('.')[1];
  if (!part) return {};
  try {
    return JSON.parse(utf8(base64UrlBytes(part))) as { exp?: number; sub?: string; did?: string };
  } catch {
    return {};
  }
}

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

function base64UrlBytes(input: string): number[] {
  const out: number[] = [];
  let buffer = 0;
  let bits = 0;
  for (const ch of input.replace(/=+$/, '')) {
    const value = ALPHABET.indexOf(ch === '+' ? '-' : ch === '/' ? '_' : ch);
    if (value < 0) throw new TypeError('not base64url');
    buffer = (buffer << 6) | value;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push((buffer >> bits) & 0xff);
    }
  }
  return out;
}

function utf8(bytes: number[]): string {
  return decodeURIComponent(bytes.map((b) => `%${b.toString(16).padStart(2, '0')}`).join(''));
}
