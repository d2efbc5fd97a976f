import { expect } from 'chai';
import type { Page } from 'playwright-core';
import { screenshot } from '../support/browser.js';
import { E2eEnv, expectAudioFlowing, recordMeasurement, type Phone } from './harness.js';

function participant(page: Page, userId: string, extra = '') {
  return page.locator(`[data-testid="participant"][data-user-id="${userId}"]${extra}`);
}

/** Waits until `page` shows `speaker` as the active speaker (highlighted in the list). */
async function expectSpeaker(page: Page, speaker: Phone): Promise<void> {
  await participant(page, speaker.userId, '[data-speaking="true"]').waitFor({ timeout: 15_000 });
}

/**
 * Replaces the page's microphone (Chromium's fake device, a constant-level
 * beep) with a WebAudio signal: `speech` is a tone whose loudness swings three
 * times a second, `silence` is nothing. mediasoup's dominant speaker detection
 * adapts to each sender's quietest level, so a constant beep can take many
 * seconds to count as speech; a varying level counts at once. Video, if asked
 * for, stays the fake camera.
 */
async function useMicrophone(page: Page, signal: 'speech' | 'silence'): Promise<void> {
  await page.evaluate((speech) => {
    const devices = navigator.mediaDevices;
    const real = devices.getUserMedia.bind(devices);
    devices.getUserMedia = async (constraints) => {
      const stream = await real(constraints);
      const ctx = new AudioContext();
      await ctx.resume();
      const out = ctx.createMediaStreamDestination();
      if (speech) {
        const tone = ctx.createOscillator();
        tone.frequency.value = 440;
        const loudness = ctx.createGain();
        loudness.gain.value = 0.5;
        const swing = ctx.createOscillator();
        swing.frequency.value = 3;
        const depth = ctx.createGain();
        depth.gain.value = 0.48; // loudness swings between 0.02 and 0.98
        swing.connect(depth).connect(loudness.gain);
        tone.connect(loudness).connect(out);
        tone.start();
        swing.start();
      }
      for (const t of stream.getAudioTracks()) {
        stream.removeTrack(t);
        t.stop();
      }
      stream.addTrack(out.stream.getAudioTracks()[0]!);
      return stream;
    };
  }, signal === 'speech');
}

/** Waits until every page highlights the same participant as the active speaker; returns that user id. */
async function agreedSpeaker(phones: Phone[]): Promise<string> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const shown = await Promise.all(phones.map((p) => p.page.evaluate(() =>
      document.querySelector('[data-testid="participant"][data-speaking="true"]')?.getAttribute('data-user-id') ?? null)));
    if (shown[0] && shown.every((s) => s === shown[0])) return shown[0];
    if (Date.now() > deadline) throw new Error(`the pages do not agree on an active speaker: ${JSON.stringify(shown)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('e2e: three-party conference through the relay', function () {
  this.timeout(120_000);
  let env: E2eEnv;

  before(async () => {
    env = await E2eEnv.start({ relay: true });
  });
  afterEach(function () {
    if (this.currentTest?.state === 'failed') console.log(env?.dumpLogs());
  });
  after(async () => {
    await env?.close();
  });

  it('everyone hears the other two, the active speaker follows who talks, the host mutes and removes, and each leg is recorded', async () => {
    const started = Date.now();
    const [alice, bob, carol, dave] = await Promise.all([env.signIn('Alice'), env.signIn('Bob'), env.signIn('Carol'), env.signIn('Dave')]);
    const everyone = [alice, bob, carol];
    for (const p of everyone) await useMicrophone(p.page, 'speech');

    // Alice starts a conference and invites her two contacts.
    await alice.page.getByTestId('contacts-input').fill(`Bob, ${bob.phone}\nCarol, ${carol.phone}`);
    await alice.page.getByTestId('contacts-upload').click();
    await alice.page.getByTestId('contact').nth(1).waitFor();
    await alice.page.getByTestId('conf-create').click();
    await alice.page.locator('[data-testid="conference"][data-phase="joined"]').waitFor();
    const conferenceId = await alice.page.getByTestId('conf-id').textContent();
    for (const invitee of [bob, carol]) {
      await alice.page.locator(`[data-testid="conf-invite-contact"][data-user-id="${invitee.userId}"]`).click();
    }

    // The invitations ring with the inviter's name; both join.
    let lastJoinClick = 0;
    for (const invitee of [bob, carol]) {
      await invitee.page.getByTestId('conf-incoming').waitFor();
      expect(await invitee.page.getByTestId('conf-inviter-name').textContent()).to.equal('Alice');
      lastJoinClick = Date.now();
      await invitee.page.getByTestId('conf-accept').click();
    }
    // Measured: the last joiner's "Join" to decoding both others.
    await expectAudioFlowing(carol.page, { streams: 2, settleMs: 0 });
    const joinToAudioMs = Date.now() - lastJoinClick;
    for (const p of everyone) {
      await p.page.locator('[data-testid="conference"][data-phase="joined"]').waitFor();
      for (const other of everyone) await participant(p.page, other.userId).waitFor();
    }

    // Every participant receives and decodes the other two.
    for (const p of everyone) await expectAudioFlowing(p.page, { streams: 2 });
    await screenshot(bob.page, 'conference-three-party');

    // Everyone shows who speaks, the later joiners too: the relay picked a
    // speaker (Alice, alone at first) before they came in, and voices alike
    // do not displace her, so what they show came from their media:join reply.
    const speaker = await agreedSpeaker(everyone);
    // Only someone else talks: the others mute themselves, which everyone's
    // list shows, and the active speaker changes to the one still talking.
    const talker = speaker === alice.userId ? bob : alice;
    const quiet = everyone.filter((p) => p !== talker);
    for (const p of quiet) await p.page.getByTestId('mute').click();
    for (const p of everyone) {
      for (const q of quiet) await participant(p.page, q.userId, '[data-audio="muted"]').waitFor();
      await expectSpeaker(p.page, talker);
    }
    // Dave joins now with a silent microphone: the speaker stays the same, so
    // no change is announced; he shows it from his media:join reply alone.
    await useMicrophone(dave.page, 'silence');
    await alice.page.getByTestId('conf-invite-input').fill(dave.phone);
    await alice.page.getByTestId('conf-invite').click();
    await dave.page.getByTestId('conf-incoming').waitFor();
    await dave.page.getByTestId('conf-accept').click();
    await dave.page.locator('[data-testid="conference"][data-phase="joined"]').waitFor();
    await expectSpeaker(dave.page, talker);
    await dave.page.getByTestId('conf-leave').click();
    await dave.page.locator('[data-testid="conf-ended"][data-reason="left"]').waitFor();
    for (const p of everyone) await participant(p.page, dave.userId).waitFor({ state: 'detached' });
    for (const p of quiet) await p.page.getByTestId('mute').click(); // everyone talks again

    // The host mutes Carol: Carol's softphone shows it, and everyone's list says so.
    await participant(alice.page, carol.userId, '[data-audio="on"]').waitFor();
    await alice.page.locator(`[data-testid="participant-mute"][data-user-id="${carol.userId}"]`).click();
    await carol.page.locator('[data-testid="mute"][aria-pressed="true"]').waitFor();
    for (const p of everyone) await participant(p.page, carol.userId, '[data-audio="muted"]').waitFor();

    // The host removes Carol: she is out, the others see two participants and still hear each other.
    await alice.page.locator(`[data-testid="participant-remove"][data-user-id="${carol.userId}"]`).click();
    await carol.page.locator('[data-testid="conf-ended"][data-reason="removed"]').waitFor();
    for (const p of [alice, bob]) {
      await participant(p.page, carol.userId).waitFor({ state: 'detached' });
      expect(await p.page.getByTestId('participant').count()).to.equal(2);
      await expectAudioFlowing(p.page, { streams: 1 });
    }

    // The host ends it for everyone.
    await alice.page.getByTestId('conf-end').click();
    await bob.page.locator('[data-testid="conf-ended"][data-reason="ended_by_host"]').waitFor();

    // One summary record and one leg per participant.
    const records = await env.records(conferenceId!, 5);
    const summary = records.find((r) => r.kind === 'conference');
    const legs = records.filter((r) => r.kind === 'conference-leg');
    expect(summary?.mediaPath).to.equal('relay');
    expect(legs).to.have.length(4);
    expect(legs.every((l) => l.parentId === conferenceId && l.disposition === 'ANSWERED')).to.equal(true);
    expect(legs.map((l) => l.endReason)).to.include('removed');

    recordMeasurement({
      flow: '3. three-party conference',
      flowMs: Date.now() - started,
      note: `last joiner's Join click -> decoding both others: ${joinToAudioMs} ms (polled every 100 ms); speaker known to late joiners and changing, self/host mute, remove, end;`,
    });
  });

  it('turns a 1:1 call into a conference by adding a third person', async () => {
    const started = Date.now();
    const [dan, erin, frank] = await Promise.all([env.signIn('Dan'), env.signIn('Erin'), env.signIn('Frank')]);
    await dan.page.getByTestId('dial-input').fill(erin.phone);
    await dan.page.getByTestId('dial-call').click();
    await erin.page.getByTestId('incoming').waitFor();
    await erin.page.getByTestId('answer').click();
    await expectAudioFlowing(erin.page);
    const callId = await erin.page.evaluate(() => window.callhubDebug!.call()?.id);

    // Dan adds Frank: Dan and Erin move into a conference, Frank is invited.
    await dan.page.getByTestId('call-add-input').fill(frank.phone);
    await dan.page.getByTestId('call-add').click();
    await erin.page.locator('[data-testid="conference"][data-phase="joined"]').waitFor();
    await frank.page.getByTestId('conf-incoming').waitFor();
    await frank.page.getByTestId('conf-accept').click();
    for (const p of [dan, erin, frank]) {
      await p.page.locator('[data-testid="conference"][data-phase="joined"]').waitFor();
      await expectAudioFlowing(p.page, { streams: 2 });
    }
    const [callRecord] = await env.records(callId!);
    expect(callRecord?.disposition).to.equal('ANSWERED');
    expect(callRecord?.endReason).to.equal('completed');

    for (const p of [frank, erin, dan]) await p.page.getByTestId('conf-leave').click();
    await dan.page.locator('[data-testid="conf-ended"][data-reason="left"]').waitFor();
    recordMeasurement({ flow: '3b. call turned into a conference', flowMs: Date.now() - started, note: '1:1 call, add a third person, all hear both others, all leave;' });
  });
});
