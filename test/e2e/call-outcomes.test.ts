import { expect } from 'chai';
import type { Page } from 'playwright-core';
import { E2eEnv, expectAudioFlowing, recordMeasurement, type Phone } from './harness.js';

/** Dials a number from the softphone's keypad field. */
async function dial(from: Phone, to: Phone): Promise<void> {
  await from.page.getByTestId('dial-input').fill(to.phone);
  await from.page.getByTestId('dial-call').click();
}

async function endedReason(page: Page, reason: string): Promise<string> {
  await page.locator(`[data-testid="call-ended"][data-reason="${reason}"]`).waitFor({ timeout: 15_000 });
  const ended = await page.evaluate(() => window.callhubDebug!.lastEnded());
  expect(ended?.reason).to.equal(reason);
  return ended!.callId!;
}

describe('e2e: unanswered calls from the UI (decline, busy, no answer, cancel)', function () {
  this.timeout(90_000);
  let env: E2eEnv;
  let alice: Phone;
  let bob: Phone;
  let carol: Phone;

  before(async () => {
    // The shortest ring the hub allows, so no-answer does not wait a minute.
    env = await E2eEnv.start({ hubEnv: { CALL_RING_TIMEOUT_S: '5' } });
    [alice, bob, carol] = await Promise.all([env.signIn('Alice'), env.signIn('Bob'), env.signIn('Carol')]);
  });
  afterEach(function () {
    if (this.currentTest?.state === 'failed') console.log(env?.dumpLogs());
  });
  after(async () => {
    await env?.close();
  });

  it('decline: the callee declines, the caller sees it, the record says DECLINED', async () => {
    const started = Date.now();
    await dial(alice, bob);
    await bob.page.getByTestId('incoming').waitFor();
    await bob.page.getByTestId('decline').click();
    const callId = await endedReason(alice.page, 'declined');
    await bob.page.getByTestId('incoming').waitFor({ state: 'detached' });
    const [record] = await env.records(callId);
    expect(record?.disposition).to.equal('DECLINED');
    expect(record?.billsec).to.equal('0');
    expect(record?.mediaPath).to.equal('none');
    recordMeasurement({ flow: '4a. declined call', flowMs: Date.now() - started, note: 'dial, ring, decline;' });
  });

  it('busy: calling someone already on a call ends busy at once, the record says BUSY, the call in progress goes on', async () => {
    const started = Date.now();
    await dial(carol, bob);
    await bob.page.getByTestId('incoming').waitFor();
    await bob.page.getByTestId('answer').click();
    await expectAudioFlowing(bob.page);

    await dial(alice, bob);
    const callId = await endedReason(alice.page, 'busy');
    const [record] = await env.records(callId);
    expect(record?.disposition).to.equal('BUSY');

    // Bob never saw the second call and his call with Carol still carries audio.
    expect(await bob.page.getByTestId('incoming').count()).to.equal(0);
    await expectAudioFlowing(bob.page);
    await bob.page.getByTestId('hangup').click();
    await endedReason(carol.page, 'completed');
    recordMeasurement({ flow: '4b. busy callee', flowMs: Date.now() - started, note: 'a call in progress, then a second caller gets busy;' });
  });

  it('no answer: the call rings out after the ring timeout on both sides, the record says NO_ANSWER', async () => {
    const started = Date.now();
    await dial(alice, bob);
    await bob.page.getByTestId('incoming').waitFor();
    const callId = await endedReason(alice.page, 'no_answer');
    await bob.page.getByTestId('incoming').waitFor({ state: 'detached' });
    const [record] = await env.records(callId);
    expect(record?.disposition).to.equal('NO_ANSWER');
    expect(record?.hangupBy).to.equal('system');
    recordMeasurement({ flow: '4c. no answer', flowMs: Date.now() - started, note: 'ring timeout set to 5 s;' });
  });

  it('cancel: the caller hangs up while it rings, the callee stops ringing, the record says CANCELLED', async () => {
    const started = Date.now();
    await dial(alice, bob);
    await bob.page.getByTestId('incoming').waitFor();
    await alice.page.getByTestId('hangup').click();
    const callId = await endedReason(alice.page, 'cancelled');
    await bob.page.getByTestId('incoming').waitFor({ state: 'detached' });
    const [record] = await env.records(callId);
    expect(record?.disposition).to.equal('CANCELLED');
    recordMeasurement({ flow: '4d. cancelled call', flowMs: Date.now() - started, note: 'dial, ring, caller hangs up;' });
  });
});
