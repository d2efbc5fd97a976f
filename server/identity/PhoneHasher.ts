import { createHmac } from 'node:crypto';

/**
 * Keyed hashes of personal identifiers (E.164 numbers, normalised emails,
 * client IPs). A plain hash of a phone number is reversible by enumerating
 * the number space; an HMAC with a secret held apart from the data is not.
 */
export class PhoneHasher {
  readonly #key: string;

  constructor(keyRing: Map<string, string>) {
    const first = keyRing.values().next();
    if (first.done) throw new TypeError('IDENTITY_HMAC_KEYS is empty');
    this.#key = first.value;
  }

  /** Keyed hash of an E.164 number (the form every index uses). */
  hash(value: string): string {
    return createHmac('sha256', this.#key).update(value).digest('base64url').slice(0, 32);
  }

  /**
   * Keyed hash of another kind of identifier. The tag keeps domains apart
   * (`email:a@b` can never collide with a number, which starts with `+`).
   */
  hashTagged(tag: 'email' | 'ip', value: string): string {
    return this.hash(`${tag}:${value}`);
  }

  /**
   * A secret for another purpose derived from the identity key, so one
   * configured secret does not serve two roles directly (e.g. code MACs).
   */
  deriveKey(label: string): Buffer {
    return createHmac('sha256', this.#key).update(`callhub/derive/${label}`).digest();
  }
}
