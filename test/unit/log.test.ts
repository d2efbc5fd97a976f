import { expect } from 'chai';
import { Writable } from 'node:stream';
import { createLogger } from '../../shared/runtime/log.js';

function capture() {
  const lines: string[] = [];
  const stream = new Writable({ write(chunk, _enc, cb) { lines.push(String(chunk)); cb(); } });
  return { log: createLogger({ level: 'info', name: 'hub' }, stream), lines };
}

describe('logging', () => {
  it('logs errors without the failed command arguments that ioredis attaches', () => {
    const { log, lines } = capture();
    const err = Object.assign(new Error('Connection is closed.'), {
      command: { name: 'evalsha', args: ['abc', 1, 'call:x', 'v=0\r\no=- 1 1 IN IP4 203.0.113.7', 'candidate:1 1 udp 1 198.51.100.4 5000 typ host'] },
      code: 'ECONNRESET',
    });
    log.error({ err }, 'request failed');
    expect(lines).to.have.length(1);
    expect(lines[0]).to.contain('Connection is closed.');
    expect(lines[0]).to.contain('ECONNRESET');
    expect(lines[0]).not.to.contain('203.0.113.7');
    expect(lines[0]).not.to.contain('198.51.100.4');
  });

  it('redacts personal fields but keeps the logger name', () => {
    const { log, lines } = capture();
    log.info({ phone: '+447700900123', user: { displayName: 'Ada', name: 'Ada L' }, sdp: 'v=0' }, 'x');
    const line = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(line.name).to.equal('hub');
    expect(lines[0]).not.to.contain('+447700900123');
    expect(lines[0]).not.to.contain('Ada');
    expect(lines[0]).not.to.contain('v=0');
  });

  it('replaces account and device ids with stable keyed pseudonyms, including in child bindings', () => {
    const lines: string[] = [];
    const stream = new Writable({ write(chunk, _enc, cb) { lines.push(String(chunk)); cb(); } });
    const log = createLogger({ level: 'info', name: 'hub', pseudonymKey: 'log-key' }, stream);
    log.child({ userId: 'uSecretId1', deviceId: 'd1' }).info({ calleeId: 'uSecretId2', callId: 'c1' }, 'call created');
    log.info({ userId: 'uSecretId1' }, 'again');
    const [a, b] = lines.map((l) => JSON.parse(l) as Record<string, string>);
    expect(lines.join('')).not.to.contain('uSecretId');
    expect(a!.callId).to.equal('c1');
    expect(a!.userId).to.match(/^~[\w-]{12}$/);
    expect(a!.userId).to.equal(b!.userId);
    expect(a!.calleeId).not.to.equal(a!.userId);
  });
});
