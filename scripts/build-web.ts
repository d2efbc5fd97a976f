/**
 * Bundles the web softphone for browsers: `web/src/main.ts` (with the client
 * SDK, socket.io-client, zod and mediasoup-client) and `web/src/style.css`
 * into `web/dist/assets/` with a content hash in each name, and writes
 * `web/dist/index.html` from `web/index.html` pointing at them. The hub serves
 * `web/dist` at `/`; nothing is fetched from a CDN at run time.
 *
 * Idempotent: the same sources give the same names; stale hashed files are
 * removed. Takes well under a second, so tests call it before they start.
 *
 *   node --import tsx scripts/build-web.ts        # build
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync, renameSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const webDir = join(root, 'web');
export const webDistDir = join(webDir, 'dist');
const assetsDir = join(webDistDir, 'assets');

export interface WebBuildResult {
  /** Asset file names (in `web/dist/assets/`) by logical name, e.g. `app.js` → `app-1a2b3c4d.js`. */
  assets: Record<string, string>;
  ms: number;
}

/** Builds the bundle; safe to call again and concurrently with the hub serving the old one. */
export async function buildWeb(opts: { minify?: boolean } = {}): Promise<WebBuildResult> {
  const started = Date.now();
  mkdirSync(assetsDir, { recursive: true });
  const result = await build({
    entryPoints: { app: join(webDir, 'src/main.ts'), style: join(webDir, 'src/style.css') },
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'browser',
    target: ['chrome100', 'safari15', 'firefox100'],
    minify: opts.minify ?? true,
    sourcemap: false,
    legalComments: 'none',
    outdir: assetsDir,
    logLevel: 'silent',
    // mediasoup-client's debug logging reads this at load time.
    define: { 'process.env.NODE_ENV': '"production"', 'process.env.DEBUG': 'undefined' },
  });
  const assets: Record<string, string> = {};
  for (const file of result.outputFiles) {
    const base = file.path.slice(assetsDir.length + 1); // app.js, style.css
    const dot = base.lastIndexOf('.');
    const hash = createHash('sha256').update(file.contents).digest('hex').slice(0, 10);
    const name = `${base.slice(0, dot)}-${hash}${base.slice(dot)}`;
    writeAtomic(join(assetsDir, name), file.contents);
    assets[base] = name;
  }
  const keep = new Set(Object.values(assets));
  for (const name of readdirSync(assetsDir)) {
    if (!keep.has(name)) rmSync(join(assetsDir, name), { force: true });
  }
  let html = readFileSync(join(webDir, 'index.html'), 'utf8');
  for (const [base, name] of Object.entries(assets)) html = html.replaceAll(`/assets/${base}`, `/assets/${name}`);
  writeAtomic(join(webDistDir, 'index.html'), html);
  return { assets, ms: Date.now() - started };
}

// A reader (the hub, a concurrent build) never sees a half-written file.
function writeAtomic(path: string, contents: Uint8Array | string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, contents);
  renameSync(tmp, path);
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  buildWeb().then(
    (r) => process.stdout.write(`[build-web] ${Object.values(r.assets).join(', ')} in ${r.ms} ms\n`),
    (err: unknown) => {
      process.stderr.write(`[build-web] failed: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
