import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

/** Debian's Chromium, installed by scripts/setup.sh. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Where screenshots and browser logs of test runs go (gitignored). */
export const ARTIFACTS_DIR = resolve('test-artifacts');

// Fake camera and microphone (a beeping tone and a test pattern), no
// permission prompts, no calls home (the network is closed), and raw host
// candidates on loopback so two pages on one machine can connect directly.
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-features=WebRtcHideLocalIpsWithMdns',
  '--disable-gpu',
  '--disable-quic',
  '--autoplay-policy=no-user-gesture-required',
];

export interface SimulatedUser {
  context: BrowserContext;
  page: Page;
  /** Console lines and page errors, kept for the failure report. */
  logs: string[];
}

/**
 * One headless Chromium for a test file. playwright gives each launch a fresh
 * temporary user-data-dir; each simulated user gets its own context (separate
 * storage, separate media devices). `close()` is idempotent and closes every
 * context first.
 */
export class TestBrowser {
  readonly #browser: Browser;
  readonly #users = new Set<SimulatedUser>();
  #closing?: Promise<void>;

  private constructor(browser: Browser) {
    this.#browser = browser;
  }

  static async launch(): Promise<TestBrowser> {
    const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: CHROMIUM_ARGS });
    return new TestBrowser(browser);
  }

  /** A new user: its own context with microphone and camera allowed for `origin`, and one page. */
  async newUser(origin: string, opts: { viewport?: { width: number; height: number } } = {}): Promise<SimulatedUser> {
    const context = await this.#browser.newContext({
      viewport: opts.viewport ?? { width: 390, height: 780 }, // a phone-sized screen
      permissions: ['microphone', 'camera'],
    });
    await context.grantPermissions(['microphone', 'camera'], { origin });
    // Test code runs through tsx (esbuild with keepNames), which wraps named
    // functions in __name(); functions handed to page.evaluate need it too.
    await context.addInitScript('globalThis.__name = (fn) => fn;');
    const page = await context.newPage();
    const logs: string[] = [];
    page.on('console', (msg) => logs.push(`[${msg.type()}] ${msg.text()}`));
    page.on('pageerror', (err) => logs.push(`[pageerror] ${err.message}`));
    const user: SimulatedUser = { context, page, logs };
    this.#users.add(user);
    return user;
  }

  async closeUser(user: SimulatedUser): Promise<void> {
    this.#users.delete(user);
    await user.context.close().catch(() => undefined);
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      await Promise.all([...this.#users].map((u) => this.closeUser(u)));
      await this.#browser.close().catch(() => undefined);
    })();
    return this.#closing;
  }
}

/** Saves a full-page screenshot as test-artifacts/<name>.png and returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS_DIR, { recursive: true });
  const path = join(ARTIFACTS_DIR, `${name.replace(/[^A-Za-z0-9_.-]+/g, '-')}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}
