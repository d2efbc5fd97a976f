/**
 * What every end-to-end flow needs: a private Redis, the code-gateway
 * stand-in, a hub serving the freshly built softphone, optionally a relay
 * node, and one headless Chromium in which each simulated user has its own
 * context. Users sign in through the UI with the code the gateway received.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { expect } from 'chai';
import type { Page } from 'playwright-core';
import type { Hub } from '../../server/Hub.js';
import type { InboundTrackStats } from '../../shared/client/stats.js';
import { decodeCdr, type CdrRecord } from '../../shared/cdr.js';
import { buildWeb } from '../../scripts/build-web.js';
import { TestRedis } from '../support/redis.js';
import { startTestHub } from '../support/hub.js';
import { TestBrowser, type SimulatedUser } from '../support/browser.js';
import { WebhookReceiver } from '../support/webhookReceiver.js';
import { validTestPhone } from '../support/signup.js';
import { readAllRecords } from '../support/cdr.js';

export interface E2eOptions {
  /** Extra hub settings (e.g. shorter ring timeout). */
  hubEnv?: Record<string, string>;
  /** Start a relay node (needed for relayed calls and conferences). */
  relay?: boolean;
}

/** A signed-in softphone in its own browser context. */
export interface Phone extends SimulatedUser {
  name: string;
  phone: string;
  userId: string;
}

interface RelayHandle {
  close(): Promise<void>;
}

export class E2eEnv {
  readonly phones: Phone[] = [];
  #closing?: Promise<void>;

  private constructor(
    readonly redis: TestRedis,
    readonly receiver: WebhookReceiver,
    readonly hub: Hub,
    readonly browser: TestBrowser,
    readonly relay: RelayHandle | undefined,
  ) {}

  static async start(opts: E2eOptions = {}): Promise<E2eEnv> {
    await buildWeb();
    const redis = await TestRedis.start();
    const receiver = await WebhookReceiver.start();
    let relay: RelayHandle | undefined;
    let hub: Hub | undefined;
    try {
      let relayEnv: Record<string, string> = {};
      if (opts.relay) {
        const started = await startRelay(redis.url);
        relay = started.handle;
        relayEnv = started.hubEnv;
      }
      hub = await startTestHub(redis.url, {
        ...receiver.hubEnv(),
        // Every sign-in comes from 127.0.0.1.
        OTP_RESEND_COOLDOWN_S: '0',
        OTP_PER_IP_PER_HOUR: '10000',
        OTP_PER_PREFIX_PER_HOUR: '10000',
        // The network is closed: no public STUN server (host candidates suffice on one machine).
        STUN_URLS: 'stun:127.0.0.1:9',
        // Records follow a call's end after the parties' final quality reports; 1 s is plenty on loopback.
        CALL_FINAL_REPORT_S: '1',
        ...relayEnv,
        ...opts.hubEnv,
      });
      const browser = await TestBrowser.launch();
      return new E2eEnv(redis, receiver, hub, browser, relay);
    } catch (err) {
      await hub?.close();
      await relay?.close();
      await receiver.close();
      await redis.stop();
      throw err;
    }
  }

  /** Opens the softphone in a new context and signs in through the UI. */
  async signIn(name: string, opts: { query?: string } = {}): Promise<Phone> {
    const user = await this.browser.newUser(this.hub.url);
    const phone = validTestPhone();
    const { page } = user;
    await page.goto(`${this.hub.url}/${opts.query ? `?${opts.query}` : ''}`);
    await page.getByTestId('phone').fill(phone);
    await page.getByTestId('send-code').click();
    const { code } = await this.receiver.waitForCode(phone);
    await page.getByTestId('code').fill(code);
    await page.getByTestId('display-name').fill(name);
    await page.getByTestId('verify').click();
    await page.getByTestId('home').waitFor();
    await expectText(page, 'conn-state', 'connected');
    const userId = await page.evaluate(() => window.callhubDebug?.userId() ?? '');
    expect(userId).to.match(/^[A-Za-z0-9_-]+$/);
    const p: Phone = { ...user, name, phone, userId };
    this.phones.push(p);
    return p;
  }

  /** Every call record of a call (the 1:1 record, or a conference's summary and legs). */
  async records(callId: string, count = 1, timeoutMs = 8000): Promise<CdrRecord[]> {
    const redis = this.redis.client();
    try {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const all = await readAllRecords(redis, this.hub.ctx.config.CDR_SHARDS);
        const mine = all.filter((r) => r.fields.callId === callId || r.fields.parentId === callId).map((r) => decodeCdr(r.fields));
        if (mine.length >= count || Date.now() > deadline) return mine;
        await new Promise((r) => setTimeout(r, 50));
      }
    } finally {
      redis.disconnect();
    }
  }

  /** Logs of every page, for a failing test's report. */
  dumpLogs(): string {
    return this.phones.map((p) => `--- ${p.name}\n${p.logs.slice(-40).join('\n')}`).join('\n');
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      await this.browser.close();
      await this.hub.close();
      await this.relay?.close();
      await this.receiver.close();
      await this.redis.stop();
    })();
    return this.#closing;
  }
}

/** Starts a relay node in-process, if the relay subsystem provides one, and the hub settings that point at it. */
async function startRelay(redisUrl: string): Promise<{ handle: RelayHandle; hubEnv: Record<string, string> }> {
  const { startTestRelay, TEST_RELAY_SECRET } = await import('../support/relay.js');
  const node = await startTestRelay(redisUrl);
  return { handle: { close: () => node.close() }, hubEnv: { RELAY_SECRET: TEST_RELAY_SECRET } };
}

// --- page helpers ------------------------------------------------------------------

export async function expectText(page: Page, testId: string, text: string | RegExp, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    last = (await page.getByTestId(testId).first().textContent({ timeout: timeoutMs }).catch(() => '')) ?? '';
    if (typeof text === 'string' ? last.includes(text) : text.test(last)) return;
    if (Date.now() > deadline) throw new Error(`[data-testid=${testId}] shows "${last}", expected ${String(text)}`);
    await page.waitForTimeout(50);
  }
}

export function inboundStats(page: Page): Promise<InboundTrackStats[]> {
  return page.evaluate(() => window.callhubDebug!.stats());
}

export async function callInfo(page: Page): Promise<{ id?: string; state: string; path?: string; timings: Record<string, number | undefined> } | null> {
  return page.evaluate(() => window.callhubDebug!.call());
}

/**
 * Waits until remote audio is received and decoded, then checks that it
 * keeps flowing: packets and decoded samples both grow over half a second
 * (`settleMs`; 0 only waits for the first decoded audio). `streams` is how
 * many remote audio streams must flow (conferences).
 */
export async function expectAudioFlowing(page: Page, opts: { streams?: number; timeoutMs?: number; settleMs?: number } = {}): Promise<InboundTrackStats[]> {
  const want = opts.streams ?? 1;
  const flowing = async () => (await inboundStats(page)).filter((s) => s.kind === 'audio' && s.packetsReceived > 0 && (s.totalSamplesReceived ?? 0) > 0);
  const deadline = Date.now() + (opts.timeoutMs ?? 15_000);
  let first = await flowing();
  while (first.length < want) {
    if (Date.now() > deadline) throw new Error(`expected ${want} decoded inbound audio stream(s): ${JSON.stringify(await inboundStats(page))}`);
    await page.waitForTimeout(100);
    first = await flowing();
  }
  if (opts.settleMs === 0) return first;
  await page.waitForTimeout(opts.settleMs ?? 500);
  const later = await flowing();
  const total = (list: InboundTrackStats[]) => list.reduce((a, s) => ({ packets: a.packets + s.packetsReceived, samples: a.samples + (s.totalSamplesReceived ?? 0) }), { packets: 0, samples: 0 });
  expect(total(later).packets, 'inbound audio packets grow').to.be.greaterThan(total(first).packets);
  expect(total(later).samples, 'decoded audio samples grow').to.be.greaterThan(total(first).samples);
  return later;
}

/** Waits until remote video frames are decoded and checks that more keep being decoded. */
export async function expectVideoFlowing(page: Page, opts: { streams?: number; timeoutMs?: number } = {}): Promise<InboundTrackStats[]> {
  const want = opts.streams ?? 1;
  const decoding = async () => (await inboundStats(page)).filter((s) => s.kind === 'video' && (s.framesDecoded ?? 0) > 0);
  const deadline = Date.now() + (opts.timeoutMs ?? 15_000);
  let first = await decoding();
  while (first.length < want) {
    if (Date.now() > deadline) throw new Error(`expected ${want} decoded inbound video stream(s): ${JSON.stringify(await inboundStats(page))}`);
    await page.waitForTimeout(100);
    first = await decoding();
  }
  await page.waitForTimeout(500);
  const later = await decoding();
  const frames = (list: InboundTrackStats[]) => list.reduce((a, s) => a + (s.framesDecoded ?? 0), 0);
  expect(frames(later), 'decoded video frames grow').to.be.greaterThan(frames(first));
  return later;
}

// --- measurements --------------------------------------------------------------------

const BEGIN = '<!-- e2e:begin -->';
const END = '<!-- e2e:end -->';
const BENCH_FILE = 'docs/benchmarks.md';

export interface Measurement {
  flow: string;
  /** Wall time of the whole flow, ms. */
  flowMs: number;
  /** Answer to first decoded remote audio, ms (1:1 calls). */
  answerToAudioMs?: number;
  note?: string;
}

/**
 * Prints a flow's measured times and keeps them in docs/benchmarks.md between
 * the e2e markers (one row per flow, replaced on each run). Measured, never
 * asserted: this machine's speed is not a test outcome.
 */
export function recordMeasurement(m: Measurement): void {
  const line = `      [measured] ${m.flow}: flow ${m.flowMs} ms${m.answerToAudioMs !== undefined ? `, answer -> first audio ${m.answerToAudioMs} ms` : ''}`;
  console.log(line);
  const text = existsSync(BENCH_FILE) ? readFileSync(BENCH_FILE, 'utf8') : '# Benchmarks\n';
  const rows = new Map<string, string>();
  const start = text.indexOf(BEGIN);
  const end = text.indexOf(END);
  if (start >= 0 && end > start) {
    for (const row of text.slice(start, end).split('\n')) {
      const cells = row.split('|').map((c) => c.trim());
      if (cells.length >= 5 && cells[1] && cells[1] !== 'flow' && !/^-+$/.test(cells[1])) rows.set(cells[1], row);
    }
  }
  const date = new Date().toISOString().slice(0, 10);
  rows.set(m.flow, `| ${m.flow} | ${m.flowMs} | ${m.answerToAudioMs ?? '–'} | ${m.note ?? ''} ${date} |`);
  const section = [
    BEGIN,
    '## End-to-end flows (headless Chromium, fake media, this machine)',
    '',
    'Written by `npm run test:e2e` (test/e2e/harness.ts); each row is the latest run of that flow. Measured, not asserted.',
    '"answer -> first audio" is the time from the answer (callee: accept sent; caller: `call:accepted`) to the first decoded remote audio, seen by polling `getStats()` every 25 ms.',
    '',
    '| flow | flow time (ms) | answer -> first audio (ms) | notes / date |',
    '|---|---|---|---|',
    ...[...rows.keys()].sort().map((k) => rows.get(k)!),
    END,
  ].join('\n');
  const next = start >= 0 && end > start
    ? `${text.slice(0, start)}${section}${text.slice(end + END.length)}`
    : `${text.trimEnd()}\n\n${section}\n`;
  writeFileSync(BENCH_FILE, next);
}
