import { expect } from 'chai';
import { screenshot } from '../support/browser.js';
import { E2eEnv, callInfo, expectAudioFlowing, recordMeasurement } from './harness.js';

describe('e2e: 1:1 call that cannot connect directly moves to the relay', function () {
  this.timeout(90_000);
  let env: E2eEnv;

  before(async () => {
    // The shortest connect timeout the hub allows: no `connected` report within 2 s of the answer moves the call.
    env = await E2eEnv.start({ relay: true, hubEnv: { CALL_CONNECT_TIMEOUT_S: '2' } });
  });
  afterEach(function () {
    if (this.currentTest?.state === 'failed') console.log(env?.dumpLogs());
  });
  after(async () => {
    await env?.close();
  });

  it('moves to the relay by itself, carries audio through the SFU both ways, and records the call as relayed', async () => {
    const started = Date.now();
    // `test-block-direct` makes both softphones drop every ICE candidate: direct media is impossible.
    const alice = await env.signIn('Alice', { query: 'test-block-direct=1' });
    const bob = await env.signIn('Bob', { query: 'test-block-direct=1' });

    await alice.page.getByTestId('dial-input').fill(bob.phone);
    await alice.page.getByTestId('dial-call').click();
    await bob.page.getByTestId('incoming').waitFor();
    await bob.page.getByTestId('answer').click();

    for (const p of [alice, bob]) {
      await p.page.locator('[data-testid="call-path"][data-path="relay"]').waitFor({ timeout: 20_000 });
    }
    await expectAudioFlowing(bob.page);
    await expectAudioFlowing(alice.page);
    const bobCall = await callInfo(bob.page);
    const aliceCall = await callInfo(alice.page);
    expect(bobCall?.path).to.equal('relay');
    expect(bobCall?.id).to.equal(aliceCall?.id);
    await screenshot(bob.page, 'relayed-call-connected');

    // Mute on the relay path pauses the producer; the other side is told.
    await bob.page.getByTestId('mute').click();
    await alice.page.getByTestId('peer-muted').waitFor();
    await bob.page.getByTestId('mute').click();

    await bob.page.getByTestId('hangup').click();
    await alice.page.locator('[data-testid="call-ended"][data-reason="completed"]').waitFor();

    const [record] = await env.records(bobCall!.id!);
    expect(record?.disposition).to.equal('ANSWERED');
    expect(record?.kind).to.equal('relayed');
    expect(record?.mediaPath).to.equal('relay');
    expect(record?.relayNode).to.be.a('string');

    const since = (t: typeof bobCall, from: 'answeredAt' | 'relayAt') => (t?.timings.firstAudioAt ?? NaN) - (t?.timings[from] ?? NaN);
    const moveToAudio = Math.round(Math.max(since(bobCall, 'relayAt'), since(aliceCall, 'relayAt')));
    recordMeasurement({
      flow: '2. relayed 1:1 call',
      flowMs: Date.now() - started,
      answerToAudioMs: Math.round(Math.max(since(bobCall, 'answeredAt'), since(aliceCall, 'answeredAt'))),
      note: `includes the 2 s connect timeout before the move (CALL_CONNECT_TIMEOUT_S=2); call:relay -> first audio ${moveToAudio} ms;`,
    });
  });
});
