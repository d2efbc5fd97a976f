import { expect } from 'chai';
import {
  CDR_SCHEMA_VERSION, cdrParties, decodeCdr, encodeCdr, findPersonalData, hangupCauseOf, personalDataIn, CdrDecodeError,
} from '../../shared/cdr.js';
import { Pseudonymizer } from '../../server/cdr/Pseudonymizer.js';
import { CdrRefusedError, recordFromFact } from '../../server/cdr/recordFromFact.js';
import { shardOf } from '../../server/cdr/CdrWriter.js';
import { conferenceFacts, DISPOSITION_CASES, oneToOneFact, personalDataFindings } from '../support/cdr.js';

const ring = (...pairs: [string, string][]) => new Map(pairs);
const pseudonymizer = new Pseudonymizer({
  billing: ring(['1', 'billing-secret-one-0123456789']),
  analytics: ring(['1', 'analytics-secret-one-012345678']),
});
const caller = 'uCallerAbc123456789';
const callee = 'uCalleeXyz987654321';

describe('call record schema and building', () => {
  it('builds a valid record for every disposition, with Asterisk durations', () => {
    for (const c of DISPOSITION_CASES) {
      const fact = oneToOneFact(caller, callee, c);
      const { record } = recordFromFact(fact, pseudonymizer);
      expect(record.v).to.equal(String(CDR_SCHEMA_VERSION));
      expect(record.disposition).to.equal(c.disposition);
      expect(record.endReason).to.equal(c.endReason);
      expect(record.hangupBy).to.equal(c.hangupBy);
      expect(record.duration).to.equal(String(Math.floor((fact.endedAt - fact.createdAt) / 1000)));
      if (c.answered) {
        expect(record.billsec).to.equal(String(Math.floor((fact.endedAt - fact.answeredAt!) / 1000)));
        expect(record.setupMs).to.equal('4200');
        expect(record.mediaSetupMs).to.equal('450');
        expect(record['caller.lossPct']).to.equal('1.2');
        expect(record['caller.rttMs']).to.equal('49');
        expect(record.mediaPath).to.equal('direct');
      } else {
        expect(record.billsec).to.equal('0');
        expect(record.setupMs).to.equal(undefined);
        expect(record.answeredAt).to.equal(undefined);
      }
      expect(record['caller.bill']).to.match(/^[A-Za-z0-9_-]{22}$/);
      expect(record['callee.anon']).to.match(/^[A-Za-z0-9_-]{22}$/);
      expect(record.billKeyVersion).to.equal('1');
      // What is stored decodes to the same record.
      expect(decodeCdr(encodeCdr(record))).to.deep.equal(record);
    }
  });

  it('maps end reasons to hangup causes (Q.850 values)', () => {
    expect(hangupCauseOf('completed')).to.deep.equal({ cause: 'NORMAL_CLEARING', code: 16 });
    expect(hangupCauseOf('busy')).to.deep.equal({ cause: 'USER_BUSY', code: 17 });
    expect(hangupCauseOf('no_answer')).to.deep.equal({ cause: 'NO_ANSWER', code: 19 });
    expect(hangupCauseOf('declined')).to.deep.equal({ cause: 'CALL_REJECTED', code: 21 });
    expect(hangupCauseOf('cancelled').cause).to.equal('ORIGINATOR_CANCEL');
    expect(hangupCauseOf('something_new')).to.deep.equal({ cause: 'NORMAL_UNSPECIFIED', code: 31 });
    const { record } = recordFromFact(oneToOneFact(caller, callee, DISPOSITION_CASES[2]!), pseudonymizer);
    expect([record.cause, record.causeCode]).to.deep.equal(['USER_BUSY', '17']);
  });

  it('records the host of a conference and the one party of each leg', () => {
    const [summary, ...legs] = conferenceFacts('uHost000000001', ['uPart000000002', 'uPart000000003']);
    const s = recordFromFact(summary!, pseudonymizer).record;
    expect(cdrParties(s).map((p) => p.role)).to.deep.equal(['host']);
    expect(s.participantCount).to.equal('3');
    expect(s.relayNode).to.equal('relay-a');
    for (const leg of legs) {
      const r = recordFromFact(leg, pseudonymizer).record;
      expect(r.kind).to.equal('conference-leg');
      expect(r.parentId).to.equal(summary!.callId);
      expect(cdrParties(r)).to.have.length(1);
    }
    // A conference and its legs share a shard.
    const shards = new Set([summary!, ...legs].map((f) => shardOf(recordFromFact(f, pseudonymizer).record, 8)));
    expect(shards.size).to.equal(1);
  });

  it('carries no personal data in any field', () => {
    const records = [...DISPOSITION_CASES.map((c) => oneToOneFact(caller, callee, c)), ...conferenceFacts(caller, [callee])]
      .map((f) => recordFromFact(f, pseudonymizer).record);
    const stored = records.map((r, i) => ({ stream: 'x', id: String(i), fields: r as unknown as Record<string, string> }));
    expect(personalDataFindings(stored, { phones: [], names: [], userIds: [caller, callee] })).to.deep.equal([]);
  });

  it('detects phone numbers, IP addresses and raw user ids', () => {
    for (const v of ['+447700900123', 'x+44 7700 900123', '+1 (415) 555-0100']) expect(findPersonalData(v), v).to.equal('phone number');
    for (const v of ['10.0.0.1', 'relay-192.168.1.20', '8.8.8.8']) expect(findPersonalData(v), v).to.equal('IPv4 address');
    for (const v of ['::1', 'fe80::1', '2001:db8::8a2e:370:7334', '::ffff:192.0.2.1']) expect(findPersonalData(v), v).to.match(/IPv[46] address/);
    expect(findPersonalData('call-uAbcdef123', ['uAbcdef123'])).to.equal('raw user id');
    for (const v of ['1718000000000', 'opus', '2.4.1', 'ANSWERED', 'Zx3_9kq-0aBcDeFgHiJkLm']) expect(findPersonalData(v), v).to.equal(null);
    expect(personalDataIn({ a: 'ok', b: '+447700900123' })).to.deep.equal(['b: phone number']);
  });

  it('refuses a record whose server-made fields would carry personal data', () => {
    const c = DISPOSITION_CASES[0]!;
    expect(() => recordFromFact(oneToOneFact(caller, callee, c, { callId: caller }), pseudonymizer)).to.throw(CdrRefusedError, /raw user id/);
    expect(() => recordFromFact(oneToOneFact(caller, callee, c, { callId: '10.1.2.3' }), pseudonymizer)).to.throw(CdrRefusedError, /IPv4/);
    expect(() => recordFromFact(oneToOneFact(caller, callee, c, { parentId: '+447700900123' }), pseudonymizer)).to.throw(CdrRefusedError, /phone/);
    // Schema problems are refused too (here: a 1:1 call without its callee).
    const noCallee = oneToOneFact(caller, callee, c);
    noCallee.parties = noCallee.parties.slice(0, 1);
    expect(() => recordFromFact(noCallee, pseudonymizer)).to.throw(CdrRefusedError, /lacks callee/);
  });

  it('reduces client-supplied text to a safe vocabulary instead of storing it', () => {
    const fact = oneToOneFact(caller, callee, DISPOSITION_CASES[0]!);
    fact.parties[0]!.platform = '+447700900123';
    fact.parties[0]!.appVersion = '192.168.0.1';
    fact.parties[1]!.appVersion = '1.0-a447700900123';
    fact.parties[0]!.quality!.codec = 'opus 10.0.0.7';
    fact.parties[1]!.iceType = 'relay 10.0.0.8:3478';
    fact.parties[1]!.quality!.loss = 7; // not a fraction
    fact.relayNode = 'relay-10.0.0.9';
    const { record, sanitized } = recordFromFact(fact, pseudonymizer);
    expect(record['caller.platform']).to.equal('other');
    expect(record['caller.appVersion']).to.equal('other');
    expect(record['callee.appVersion']).to.equal('other');
    expect(record['caller.codec']).to.equal('other');
    expect(record['callee.ice']).to.equal('other');
    expect(record['callee.lossPct']).to.equal(undefined);
    expect(record.relayNode).to.equal('redacted');
    expect(sanitized).to.include.members(['relayNode', 'caller.platform', 'caller.appVersion']);
  });

  it('stores no digits a number could hide in: app versions are short version strings, codecs known names', () => {
    const withClient = (appVersion: string, codec: string) => {
      const fact = oneToOneFact(caller, callee, DISPOSITION_CASES[0]!);
      fact.parties[0]!.appVersion = appVersion;
      fact.parties[0]!.quality!.codec = codec;
      return recordFromFact(fact, pseudonymizer);
    };
    // A UK mobile number split so no run is 7 digits long and there is no '+'.
    for (const [appVersion, codec] of [['447.700900.123', 'opus.447700.900123'], ['447.7009.0012.3', 'opus-447700900123'], ['1.2.3-a4477009', 'VP8.4477009001']] as const) {
      const { record, sanitized } = withClient(appVersion, codec);
      expect(record['caller.appVersion'], appVersion).to.equal('other');
      expect(record['caller.codec'], codec).to.equal('other');
      expect(sanitized).to.include.members(['caller.appVersion', 'caller.codec']);
      expect(JSON.stringify(record)).not.to.match(/447/);
    }
    // Ordinary values are kept; codecs in their usual spelling, whatever the client's case or MIME prefix.
    for (const [appVersion, codec, stored] of [['2.4.1', 'opus', 'opus'], ['10.0', 'audio/opus', 'opus'], ['1.2.300.4', 'pcmu', 'PCMU'],
      ['2.3.0-beta.1', 'video/vp9', 'VP9'], ['3', 'h264', 'H264'], ['1.0.0+build.7', 'AV1', 'AV1']] as const) {
      const { record } = withClient(appVersion, codec);
      expect(record['caller.appVersion'], appVersion).to.equal(appVersion);
      expect(record['caller.codec'], codec).to.equal(stored);
    }
    // More than 6 digits in all, groups beyond the version shape, or an address shape are not a version.
    for (const v of ['1234.567', '1.2.3.4.5', '1234567', '1.0-', 'v1.0', '1.0 beta', '10.0.0.7']) expect(withClient(v, 'opus').record['caller.appVersion'], v).to.equal('other');
    for (const c of ['opus2', 'x-opus', 'speex', 'G.711', '']) expect(withClient('1.0', c).record['caller.codec'], c).to.equal('other');
  });

  it('refuses undecodable stream entries with the reasons', () => {
    const { record } = recordFromFact(oneToOneFact(caller, callee, DISPOSITION_CASES[0]!), pseudonymizer);
    expect(() => decodeCdr({ ...(record as unknown as Record<string, string>), v: '999' })).to.throw(CdrDecodeError, /v/);
    expect(() => decodeCdr({ ...(record as unknown as Record<string, string>), phone: '+447700900123' })).to.throw(CdrDecodeError, /phone/);
    expect(() => decodeCdr(['v', '1', 'eventId', 'x'])).to.throw(CdrDecodeError);
  });

  it('clamps inconsistent times instead of storing negative durations', () => {
    const fact = oneToOneFact(caller, callee, DISPOSITION_CASES[0]!);
    fact.answeredAt = fact.endedAt + 5000;
    const { record } = recordFromFact(fact, pseudonymizer);
    expect(record.billsec).to.equal('0');
    expect(Number(record.answeredAt)).to.equal(fact.endedAt);
  });
});

describe('Pseudonymizer', () => {
  it('is stable per user, differs per purpose and per user, and records the key version', () => {
    const a = pseudonymizer.pseudonymize(caller);
    expect(pseudonymizer.pseudonymize(caller)).to.deep.equal(a);
    expect(a.bill).to.not.equal(a.anon);
    expect(pseudonymizer.pseudonymize(callee).bill).to.not.equal(a.bill);
    expect(a.billKeyVersion).to.equal('1');
  });

  it('uses the last key of a ring for new records and keeps the older ones for lookups', () => {
    const rotated = new Pseudonymizer({
      billing: ring(['1', 'billing-secret-one-0123456789'], ['2', 'billing-secret-two-0123456789']),
      analytics: ring(['1', 'analytics-secret-one-012345678'], ['a2', 'analytics-secret-two-012345678']),
    });
    const now = rotated.pseudonymize(caller);
    expect([now.billKeyVersion, now.anonKeyVersion]).to.deep.equal(['2', 'a2']);
    const all = rotated.allVersions('billing', caller);
    expect([...all.keys()]).to.deep.equal(['1', '2']);
    expect(all.get('1')).to.equal(pseudonymizer.pseudonymize(caller).bill);
    expect(all.get('2')).to.equal(now.bill);
  });

  it('refuses empty rings and a secret shared between purposes', () => {
    expect(() => new Pseudonymizer({ billing: new Map(), analytics: ring(['1', 'x'.repeat(20)]) })).to.throw(TypeError);
    expect(() => new Pseudonymizer({ billing: ring(['1', 'y'.repeat(20)]), analytics: ring(['1', 'y'.repeat(20)]) })).to.throw(TypeError, /differ/);
  });
});
