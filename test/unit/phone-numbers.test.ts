import { expect } from 'chai';
import { AppError } from '../../shared/protocol/errors.js';
import { PhoneNumbers } from '../../server/identity/PhoneNumbers.js';

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return err instanceof AppError ? err.code : `NOT_APP_ERROR: ${String(err)}`;
  }
  return 'NO_ERROR';
}

describe('PhoneNumbers', () => {
  const all = new PhoneNumbers({ prefixDigits: 6 });

  it('parses sign-up numbers to E.164 with their country', () => {
    expect(all.parseForSignUp('+44 7400 123456')).to.deep.equal({ e164: '+447400123456', country: 'GB' });
    expect(all.parseForSignUp('0044-7400-123456').e164).to.equal('+447400123456');
    expect(all.parseForSignUp('+1 (201) 555-0123')).to.deep.equal({ e164: '+12015550123', country: 'US' });
    expect(all.parseForSignUp(' +33 6 12 34 56 78 ').e164).to.equal('+33612345678');
  });

  it('refuses what is not a valid number written internationally', () => {
    for (const input of ['07400 123456', '7400123456', '+447700900123', '+441234', '+44 7400 123456 ext 7', 'tel +447400123456', '+999 123 456 789', 'phone']) {
      expect(code(() => all.parseForSignUp(input)), input).to.equal('PHONE_INVALID');
    }
  });

  it('refuses premium-rate and shared-cost numbers (max metadata knows the type)', () => {
    for (const input of ['+449098765432', '+449061234567', '+448451234567', '+33890123456']) {
      expect(code(() => all.parseForSignUp(input)), `premium ${input}`).to.equal('PHONE_TYPE_REFUSED');
    }
    for (const input of ['+33810123456', '+41840123456', '+34901123456']) {
      expect(code(() => all.parseForSignUp(input)), `shared cost ${input}`).to.equal('PHONE_TYPE_REFUSED');
    }
    // Toll-free, fixed-line and mobile numbers are fine.
    for (const input of ['+18005550199', '+4930123456', '+4915123456789']) {
      expect(code(() => all.parseForSignUp(input)), input).to.equal('NO_ERROR');
    }
  });

  it('applies the country allow-list, case-insensitively, and refuses non-geographic numbers under it', () => {
    const some = new PhoneNumbers({ allowedCountries: ['gb', 'US'], prefixDigits: 6 });
    expect(code(() => some.parseForSignUp('+447400123456'))).to.equal('NO_ERROR');
    expect(code(() => some.parseForSignUp('+12015550123'))).to.equal('NO_ERROR');
    expect(code(() => some.parseForSignUp('+4915123456789'))).to.equal('COUNTRY_NOT_ALLOWED');
    expect(code(() => some.parseForSignUp('+80012345678'))).to.equal('COUNTRY_NOT_ALLOWED');
    expect(code(() => all.parseForSignUp('+80012345678'))).to.equal('NO_ERROR');
    // Validity is checked before the allow-list: an invalid number is PHONE_INVALID everywhere.
    expect(code(() => some.parseForSignUp('+49123'))).to.equal('PHONE_INVALID');
  });

  it('takes the configured number of leading digits as the prefix', () => {
    expect(all.prefixOf('+447400123456')).to.equal('447400');
    expect(new PhoneNumbers({ prefixDigits: 4 }).prefixOf('+12015550123')).to.equal('1201');
    expect(() => new PhoneNumbers({ prefixDigits: 1 })).to.throw(TypeError);
  });

  it('normalises address-book numbers in the owner\'s region, and drops what is not a number', () => {
    expect(PhoneNumbers.countryOf('+447400123456')).to.equal('GB');
    expect(PhoneNumbers.normaliseContact('07400 123456', 'GB')).to.equal('+447400123456');
    expect(PhoneNumbers.normaliseContact('(201) 555-0123', 'US')).to.equal('+12015550123');
    expect(PhoneNumbers.normaliseContact('011 44 7400 123456', 'US')).to.equal('+447400123456');
    expect(PhoneNumbers.normaliseContact('+33 6 12 34 56 78', 'GB')).to.equal('+33612345678');
    expect(PhoneNumbers.normaliseContact('07400 123456', undefined)).to.equal(null);
    expect(PhoneNumbers.normaliseContact('12', 'GB')).to.equal(null);
    expect(PhoneNumbers.normaliseContact('Bob', 'GB')).to.equal(null);
  });
});
