import { createHmac } from 'node:crypto';

export type PseudonymPurpose = 'billing' | 'analytics';

export interface PartyPseudonyms {
  bill: string;
  anon: string;
  billKeyVersion: string;
  anonKeyVersion: string;
}

/**
 * Keyed pseudonyms of user ids for call records: HMAC-SHA256 with a secret
 * held apart from the data, one key ring per purpose so billing and analytics
 * records cannot be joined without both secrets. Each ring maps version ->
 * secret; the last entry is current (new records), the older ones stay so
 * support can still find records written under them.
 */
export class Pseudonymizer {
  readonly #rings: Record<PseudonymPurpose, Map<string, string>>;
  readonly #current: Record<PseudonymPurpose, [string, string]>;

  constructor(rings: { billing: Map<string, string>; analytics: Map<string, string> }) {
    for (const [purpose, ring] of Object.entries(rings)) {
      if (ring.size === 0) throw new TypeError(`the ${purpose} pseudonym key ring is empty`);
    }
    const billingSecrets = new Set(rings.billing.values());
    for (const secret of rings.analytics.values()) {
      if (billingSecrets.has(secret)) throw new TypeError('billing and analytics pseudonym keys must differ');
    }
    this.#rings = { billing: new Map(rings.billing), analytics: new Map(rings.analytics) };
    this.#current = { billing: [...rings.billing].at(-1)!, analytics: [...rings.analytics].at(-1)! };
  }

  get currentVersions(): { billing: string; analytics: string } {
    return { billing: this.#current.billing[0], analytics: this.#current.analytics[0] };
  }

  /** The party's pseudonyms under the current keys. */
  pseudonymize(userId: string): PartyPseudonyms {
    const [billKeyVersion, billSecret] = this.#current.billing;
    const [anonKeyVersion, anonSecret] = this.#current.analytics;
    return {
      bill: Pseudonymizer.#hmac(billSecret, 'billing', userId),
      anon: Pseudonymizer.#hmac(anonSecret, 'analytics', userId),
      billKeyVersion,
      anonKeyVersion,
    };
  }

  /** The user's pseudonym under every key version of a purpose: version -> pseudonym. */
  allVersions(purpose: PseudonymPurpose, userId: string): Map<string, string> {
    const out = new Map<string, string>();
    for (const [version, secret] of this.#rings[purpose]) out.set(version, Pseudonymizer.#hmac(secret, purpose, userId));
    return out;
  }

  /** 22 base64url characters: 132 bits, plenty against collisions, short in every record. */
  static #hmac(secret: string, purpose: PseudonymPurpose, userId: string): string {
    return createHmac('sha256', secret).update(`callhub-cdr:${purpose}:${userId}`).digest('base64url').slice(0, 22);
  }
}
