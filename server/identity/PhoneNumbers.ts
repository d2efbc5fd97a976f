import { parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js/max';
import { AppError } from '../../shared/protocol/errors.js';

/** A number accepted for sign-up. */
export interface SignUpNumber {
  /** E.164, the only form stored or compared. */
  e164: string;
  /** ISO 3166-1 alpha-2 region, when the number belongs to one. */
  country: string | undefined;
}

export interface PhoneNumbersOptions {
  /** ISO country codes allowed for sign-up; undefined allows every country. */
  allowedCountries?: readonly string[] | undefined;
  /** Leading E.164 digits (country code included) that form a number's prefix. */
  prefixDigits: number;
}

/** Number types that cost the sender money per message: the target of SMS pumping. */
const REFUSED_TYPES = new Set(['PREMIUM_RATE', 'SHARED_COST']);

/**
 * Phone-number rules, with libphonenumber's full (`max`) metadata so validity
 * and number type are exact: sign-up numbers must be written internationally,
 * valid, not premium-rate or shared-cost, and from an allowed country.
 */
export class PhoneNumbers {
  readonly #allowed: ReadonlySet<string> | undefined;
  readonly #prefixDigits: number;

  constructor(opts: PhoneNumbersOptions) {
    this.#allowed = opts.allowedCountries ? new Set(opts.allowedCountries.map((c) => c.toUpperCase())) : undefined;
    if (!Number.isInteger(opts.prefixDigits) || opts.prefixDigits < 2) throw new TypeError('prefixDigits must be an integer >= 2');
    this.#prefixDigits = opts.prefixDigits;
  }

  /** Parses a number typed at sign-up; throws PHONE_INVALID, PHONE_TYPE_REFUSED or COUNTRY_NOT_ALLOWED. */
  parseForSignUp(input: string): SignUpNumber {
    const text = input.trim();
    if (!/^(\+|00)/.test(text)) {
      throw new AppError('PHONE_INVALID', 'Write the number in international format, starting with + and the country code');
    }
    // extract: false refuses text around the number ("call +44...").
    const parsed = parsePhoneNumberFromString(text.replace(/^00/, '+'), { extract: false });
    if (!parsed || !parsed.isValid() || parsed.ext) throw new AppError('PHONE_INVALID');
    const type = parsed.getType();
    if (type !== undefined && REFUSED_TYPES.has(type)) throw new AppError('PHONE_TYPE_REFUSED');
    if (this.#allowed && (parsed.country === undefined || !this.#allowed.has(parsed.country))) {
      throw new AppError('COUNTRY_NOT_ALLOWED');
    }
    return { e164: parsed.number, country: parsed.country };
  }

  /** The prefix an E.164 number is counted under for the per-prefix send limit (digits only). */
  prefixOf(e164: string): string {
    return e164.replace(/^\+/, '').slice(0, this.#prefixDigits);
  }

  /** The region of a stored E.164 number (default region for its owner's address book). */
  static countryOf(e164: string): CountryCode | undefined {
    return parsePhoneNumberFromString(e164)?.country;
  }

  /**
   * Normalises an address-book number to E.164, reading national formats in
   * the owner's region; null for anything that is not a valid number.
   */
  static normaliseContact(input: string, defaultCountry: CountryCode | undefined): string | null {
    const text = input.trim();
    if (text.length < 3) return null;
    // No 00 -> + rewrite here: libphonenumber knows each region's own international prefix.
    const parsed = parsePhoneNumberFromString(text, { defaultCountry, extract: false });
    if (!parsed || !parsed.isValid()) return null;
    return parsed.number;
  }
}
