import { createHmac } from 'node:crypto';

/**
 * Keyed hashes of personal identifiers (E.164 numbers, normalised emails).
 * A plain hash of a phone number is reversible by enumerating the number
 * space; an HMAC with a secret held apart from the data is not.
 */
export class PhoneHasher {
  readonly #key: string;

  constructor(keyRing: Map<string, string>) {
    const first = keyRing.values().next();
    if (first.done) throw new TypeError('IDENTITY_HMAC_KEYS is empty');
    this.#key = first.value;
  }

  hash(value: string): string {
    return createHmac('sha256', this.#key).update(value).digest('base64url').slice(0, 32);
  }
}
