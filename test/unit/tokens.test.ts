import { expect } from 'chai';
import jwt from 'jsonwebtoken';
import { Tokens } from '../../server/identity/Tokens.js';
import { AppError } from '../../shared/protocol/errors.js';

const base = { issuer: 'callhub', audience: 'callhub-clients', ttlSeconds: 60 };
const claims = { userId: 'u1', sessionId: 's1', deviceId: 'd1' };

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return err instanceof AppError ? err.code : 'NOT_APP_ERROR';
  }
  return 'NO_ERROR';
}

describe('Tokens', () => {
  const oldKey = 'old-secret-0123456789abcdef';
  const newKey = 'new-secret-0123456789abcdef';

  it('verifies tokens signed with an older key after rotation', () => {
    const before = new Tokens({ ...base, keys: new Map([['a', oldKey]]), signingKid: 'a' });
    const after = new Tokens({ ...base, keys: new Map([['a', oldKey], ['b', newKey]]), signingKid: 'b' });
    const { token } = before.issue(claims);
    expect(after.verify(token).sub).to.equal('u1');
    expect(jwt.decode(after.issue(claims).token, { complete: true })?.header.kid).to.equal('b');
  });

  it('refuses a retired kid, a wrong audience, another algorithm and an expired token', () => {
    const t = new Tokens({ ...base, keys: new Map([['b', newKey]]), signingKid: 'b' });
    const retired = jwt.sign({ sid: 's', did: 'd' }, oldKey, { keyid: 'a', subject: 'u', issuer: 'callhub', audience: 'callhub-clients', expiresIn: 60 });
    expect(code(() => t.verify(retired))).to.equal('TOKEN_INVALID');
    const wrongAud = jwt.sign({ sid: 's', did: 'd' }, newKey, { keyid: 'b', subject: 'u', issuer: 'callhub', audience: 'other', expiresIn: 60 });
    expect(code(() => t.verify(wrongAud))).to.equal('TOKEN_INVALID');
    const hs512 = jwt.sign({ sid: 's', did: 'd' }, newKey, { algorithm: 'HS512', keyid: 'b', subject: 'u', issuer: 'callhub', audience: 'callhub-clients', expiresIn: 60 });
    expect(code(() => t.verify(hs512))).to.equal('TOKEN_INVALID');
    // alg=none with a valid kid, so it is the algorithm pin (not the key lookup) that refuses it.
    const none = jwt.sign({ sid: 's', did: 'd', sub: 'u' }, '', { algorithm: 'none' as jwt.Algorithm, keyid: 'b', issuer: 'callhub', audience: 'callhub-clients', expiresIn: 60 });
    expect(code(() => t.verify(none))).to.equal('TOKEN_INVALID');
    const expired = jwt.sign({ sid: 's', did: 'd', exp: Math.floor(Date.now() / 1000) - 10 }, newKey, { keyid: 'b', subject: 'u', issuer: 'callhub', audience: 'callhub-clients' });
    expect(code(() => t.verify(expired))).to.equal('TOKEN_EXPIRED');
    expect(code(() => t.verify(undefined))).to.equal('UNAUTHENTICATED');
  });
});
