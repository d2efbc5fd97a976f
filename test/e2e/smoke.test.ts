import { expect } from 'chai';
import type { Hub } from '../../server/Hub.js';
import { buildWeb } from '../../scripts/build-web.js';
import { TestRedis } from '../support/redis.js';
import { startTestHub } from '../support/hub.js';
import { TestBrowser, screenshot } from '../support/browser.js';

describe('e2e: softphone page', function () {
  this.timeout(60_000);
  let redis: TestRedis;
  let hub: Hub;
  let browser: TestBrowser;

  before(async () => {
    await buildWeb();
    redis = await TestRedis.start();
    hub = await startTestHub(redis.url);
    browser = await TestBrowser.launch();
  });
  after(async () => {
    await browser?.close();
    await hub?.close();
    await redis?.stop();
  });

  it('is served by the hub at / with its bundle and no request leaving the origin', async () => {
    const user = await browser.newUser(hub.url);
    const foreign: string[] = [];
    user.page.on('request', (req) => { if (!req.url().startsWith(hub.url)) foreign.push(req.url()); });
    const res = await user.page.goto(`${hub.url}/`);
    expect(res?.status()).to.equal(200);
    expect(res?.headers()['content-security-policy']).to.include("default-src 'self'");
    await user.page.waitForSelector('[data-testid="app"][data-state="signin"]');
    const shot = await screenshot(user.page, 'smoke-signin');
    expect(shot).to.match(/smoke-signin\.png$/);
    expect(foreign).to.deep.equal([]);
    expect(user.logs.filter((l) => l.startsWith('[pageerror]'))).to.deep.equal([]);
  });
});
