import { expect } from 'chai';
import { screenshot } from '../support/browser.js';
import { E2eEnv, callInfo, expectAudioFlowing, expectText, expectVideoFlowing, recordMeasurement, type Phone } from './harness.js';

describe('e2e: direct 1:1 call in the browser', function () {
  this.timeout(90_000);
  let env: E2eEnv;
  let alice: Phone;
  let bob: Phone;

  before(async () => {
    env = await E2eEnv.start();
  });
  afterEach(function () {
    if (this.currentTest?.state === 'failed') console.log(env?.dumpLogs());
  });
  after(async () => {
    await env?.close();
  });

  it('finds a contact, rings them, carries audio peer-to-peer both ways, hangs up, and records ANSWERED over the direct path', async () => {
    const started = Date.now();
    alice = await env.signIn('Alice');
    bob = await env.signIn('Bob');

    // Alice finds Bob through her address book and calls him.
    await alice.page.getByTestId('contacts-input').fill(`Bob Builder, ${bob.phone}\nNobody, +447400000001`);
    await alice.page.getByTestId('contacts-upload').click();
    const contact = alice.page.getByTestId('contact');
    await contact.waitFor();
    expect(await contact.count()).to.equal(1);
    expect(await contact.getAttribute('data-user-id')).to.equal(bob.userId);
    await alice.page.getByTestId('call-contact').click();

    // Bob's phone rings with Alice's verified number and name.
    await bob.page.getByTestId('incoming').waitFor();
    await expectText(bob.page, 'incoming-name', 'Alice');
    await expectText(bob.page, 'incoming-number', alice.phone);
    await expectText(alice.page, 'call-status', 'Ringing');
    await bob.page.getByTestId('answer').click();

    // Media connects directly and audio is received and decoded on both sides.
    for (const p of [alice, bob]) {
      await p.page.locator('[data-testid="call-path"][data-path="direct"]').waitFor({ timeout: 15_000 });
    }
    await expectAudioFlowing(bob.page);
    await expectAudioFlowing(alice.page);
    const bobCall = await callInfo(bob.page);
    const aliceCall = await callInfo(alice.page);
    expect(bobCall?.path).to.equal('direct');
    expect(bobCall?.id).to.equal(aliceCall?.id);
    const callId = bobCall!.id!;

    // A screenshot of the softphone during the call (flow 5).
    await screenshot(bob.page, 'direct-call-connected');
    await screenshot(alice.page, 'direct-call-connected-caller');

    // Mute reaches the other side.
    await alice.page.getByTestId('mute').click();
    await bob.page.getByTestId('peer-muted').waitFor();
    await alice.page.getByTestId('mute').click();
    await bob.page.getByTestId('peer-muted').waitFor({ state: 'detached' });

    await alice.page.getByTestId('hangup').click();
    await bob.page.locator('[data-testid="call-ended"][data-reason="completed"]').waitFor();
    await alice.page.locator('[data-testid="call-ended"][data-reason="completed"]').waitFor();

    const [record] = await env.records(callId);
    expect(record, 'call record').to.not.equal(undefined);
    expect(record!.disposition).to.equal('ANSWERED');
    expect(record!.kind).to.equal('p2p');
    expect(record!.mediaPath).to.equal('direct');
    expect(record!.hangupBy).to.equal('caller');
    expect(record!['caller.ice']).to.be.oneOf(['host', 'srflx', 'prflx']);
    // Both parties' quality reports made it into the record (the callee's after the hangup).
    expect(record!['caller.codec']).to.equal('opus');
    expect(record!['callee.codec']).to.equal('opus');

    const answerToAudio = (t: typeof bobCall) => (t?.timings.firstAudioAt ?? NaN) - (t?.timings.answeredAt ?? NaN);
    recordMeasurement({
      flow: '1. direct 1:1 call',
      flowMs: Date.now() - started,
      answerToAudioMs: Math.round(Math.max(answerToAudio(bobCall), answerToAudio(aliceCall))),
      note: 'sign-in of 2 users, contact discovery, ring, answer, mute, hangup;',
    });
  });

  it('carries video both ways in a direct video call (frames decoded on both sides)', async () => {
    const started = Date.now();
    await bob.page.getByTestId('contacts-input').fill(`Alice, ${alice.phone}`);
    await bob.page.getByTestId('contacts-upload').click();
    await bob.page.getByTestId('video-call-contact').click();
    await alice.page.getByTestId('incoming').waitFor();
    await expectText(alice.page, 'incoming', 'video');
    await alice.page.getByTestId('answer').click();
    await expectVideoFlowing(alice.page);
    await expectVideoFlowing(bob.page);
    await expectAudioFlowing(alice.page);
    await alice.page.getByTestId('remote-video').waitFor();
    await screenshot(alice.page, 'direct-video-call');
    const info = await callInfo(alice.page);
    await bob.page.getByTestId('hangup').click();
    await alice.page.locator('[data-testid="call-ended"][data-reason="completed"]').waitFor();
    const [record] = await env.records(info!.id!);
    expect(record?.disposition).to.equal('ANSWERED');
    expect(record?.mediaPath).to.equal('direct');
    recordMeasurement({
      flow: '1b. direct video call',
      flowMs: Date.now() - started,
      answerToAudioMs: Math.round((info?.timings.firstAudioAt ?? NaN) - (info?.timings.answeredAt ?? NaN)),
      note: 'video + audio, callee side;',
    });
  });
});
