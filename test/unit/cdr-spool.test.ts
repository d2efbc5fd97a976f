import { expect } from 'chai';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CdrRecord } from '../../shared/cdr.js';
import { Spool, SpoolLockedError } from '../../server/cdr/Spool.js';
import { createLogger } from '../../shared/runtime/log.js';

const log = createLogger({ level: 'silent', name: 'test' });
const rec = (i: number) => ({ v: '1', eventId: `e${i}`, callId: `c${i}` }) as unknown as CdrRecord;

describe('CDR spool', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'cdr-spool-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('keeps appended records across a reopen and hands them back in order', async () => {
    const spool = await Spool.open(dir, log);
    await Promise.all(Array.from({ length: 50 }, (_, i) => spool.append(rec(i))));
    expect(spool.pending).to.equal(50);
    await spool.close();
    const again = await Spool.open(dir, log);
    expect(again.pending).to.equal(50);
    const batch = await again.peek(1000);
    expect(batch.records.map((r) => r.eventId)).to.deep.equal(Array.from({ length: 50 }, (_, i) => `e${i}`));
    await again.close();
  });

  it('moves past a batch only when acknowledged, and truncates once everything is', async () => {
    const spool = await Spool.open(dir, log);
    for (let i = 0; i < 5; i++) await spool.append(rec(i));
    const first = await spool.peek(2);
    expect(first.records.map((r) => r.eventId)).to.deep.equal(['e0', 'e1']);
    // Not acknowledged: the same records come back.
    expect((await spool.peek(2)).records.map((r) => r.eventId)).to.deep.equal(['e0', 'e1']);
    await spool.ack(first);
    expect(spool.pending).to.equal(3);
    await spool.close();

    // The cursor survives a restart.
    const reopened = await Spool.open(dir, log);
    expect(reopened.pending).to.equal(3);
    const rest = await reopened.peek(10);
    expect(rest.records.map((r) => r.eventId)).to.deep.equal(['e2', 'e3', 'e4']);
    await reopened.ack(rest);
    expect(reopened.pending).to.equal(0);
    expect(statSync(join(dir, 'cdr.spool')).size).to.equal(0);
    await reopened.append(rec(9));
    expect((await reopened.peek(10)).records.map((r) => r.eventId)).to.deep.equal(['e9']);
    await reopened.close();
  });

  it('drops a torn last line left by a crash mid-append, keeping the complete ones', async () => {
    const spool = await Spool.open(dir, log);
    await spool.append(rec(1));
    await spool.append(rec(2));
    await spool.close();
    appendFileSync(join(dir, 'cdr.spool'), '{"v":"1","eventId":"e3","cal');
    const again = await Spool.open(dir, log);
    expect(again.pending).to.equal(2);
    expect((await again.peek(10)).records.map((r) => r.eventId)).to.deep.equal(['e1', 'e2']);
    await again.append(rec(4));
    expect((await again.peek(10)).records.map((r) => r.eventId)).to.deep.equal(['e1', 'e2', 'e4']);
    expect(readFileSync(join(dir, 'cdr.spool'), 'utf8').endsWith('\n')).to.equal(true);
    await again.close();
  });

  it('resets a cursor that points past a truncated file', async () => {
    const spool = await Spool.open(dir, log);
    await spool.append(rec(1));
    await spool.close();
    writeFileSync(join(dir, 'cdr.spool.ack'), '999999\n');
    const again = await Spool.open(dir, log);
    expect((await again.peek(10)).records.map((r) => r.eventId)).to.deep.equal(['e1']);
    await again.close();
  });

  it('belongs to one owner at a time', async () => {
    const spool = await Spool.open(dir, log);
    let err: unknown;
    try {
      await Spool.open(dir, log);
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(SpoolLockedError);
    await spool.close();
    await spool.close();
    const next = await Spool.open(dir, log);
    await next.close();
  });
});
