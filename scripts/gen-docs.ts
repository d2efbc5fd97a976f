/**
 * Generates the parts of the docs that must never drift from the code:
 * - docs/protocol.md: conventions, the hand-written sections in docs/protocol/
 *   (HTTP endpoints, flows), and the socket event reference built from the
 *   shared zod maps;
 * - the configuration tables in README.md (between markers), from the env schemas.
 * `--check` fails when a committed file is out of date (run by `npm test`).
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { z } from 'zod';
import { clientRequests, serverNotices } from '../shared/protocol/events.js';
import { ErrorCodes } from '../shared/protocol/errors.js';
import { describeEnv, type EnvSchema } from '../shared/env.js';
import { hubEnvSchema } from '../server/config.js';

const root = resolve(import.meta.dirname, '..');
const check = process.argv.includes('--check');

/** A compact TypeScript-like rendering of a zod v3 schema. */
export function typeOf(t: z.ZodTypeAny, depth = 0): string {
  const pad = '  '.repeat(depth + 1);
  const end = '  '.repeat(depth);
  if (t instanceof z.ZodOptional) return typeOf(t.unwrap(), depth);
  if (t instanceof z.ZodNullable) return `${typeOf(t.unwrap(), depth)} | null`;
  if (t instanceof z.ZodDefault) return typeOf(t._def.innerType, depth);
  if (t instanceof z.ZodEffects) return typeOf(t.innerType(), depth);
  if (t instanceof z.ZodPipeline) return typeOf(t._def.in, depth);
  if (t instanceof z.ZodLazy) return 'object';
  if (t instanceof z.ZodBranded) return typeOf(t.unwrap(), depth);
  if (t instanceof z.ZodString) {
    const checks = t._def.checks.map((c) => ('value' in c ? `${c.kind} ${String(c.value)}` : c.kind)).filter((c) => c !== 'trim');
    return checks.length ? `string (${checks.join(', ')})` : 'string';
  }
  if (t instanceof z.ZodNumber) return t.isInt ? 'integer' : 'number';
  if (t instanceof z.ZodBoolean) return 'boolean';
  if (t instanceof z.ZodLiteral) return JSON.stringify(t.value);
  if (t instanceof z.ZodEnum) return (t.options as string[]).map((o) => JSON.stringify(o)).join(' | ');
  if (t instanceof z.ZodNativeEnum) return 'enum';
  if (t instanceof z.ZodArray) {
    const max = t._def.maxLength ? ` (max ${t._def.maxLength.value})` : '';
    return `Array<${typeOf(t.element, depth)}>${max}`;
  }
  if (t instanceof z.ZodRecord) return `Record<string, ${typeOf(t.valueSchema, depth)}>`;
  if (t instanceof z.ZodUnion || t instanceof z.ZodDiscriminatedUnion) {
    return (t.options as z.ZodTypeAny[]).map((o) => typeOf(o, depth)).join('\n' + end + '| ');
  }
  if (t instanceof z.ZodIntersection) return `${typeOf(t._def.left, depth)} & ${typeOf(t._def.right, depth)}`;
  if (t instanceof z.ZodTuple) return `[${(t.items as z.ZodTypeAny[]).map((i) => typeOf(i, depth)).join(', ')}]`;
  if (t instanceof z.ZodObject) {
    const entries = Object.entries(t.shape as Record<string, z.ZodTypeAny>);
    if (entries.length === 0) return '{}';
    const lines = entries.map(([k, v]) => `${pad}${k}${v.isOptional() ? '?' : ''}: ${typeOf(v, depth + 1)}`);
    return `{\n${lines.join('\n')}\n${end}}`;
  }
  if (t instanceof z.ZodAny || t instanceof z.ZodUnknown) return 'unknown';
  return t.constructor.name.replace(/^Zod/, '').toLowerCase();
}

function socketReference(): string {
  const out: string[] = ['## Socket event reference (generated)', '',
    'Generated from `shared/protocol/*.ts` by `npm run docs`. Client requests are acknowledged with',
    '`{ ok: true, ...response }` or `{ ok: false, error: { code, message } }`.', ''];
  out.push('### Client → server requests', '');
  for (const [name, spec] of Object.entries(clientRequests)) {
    out.push(`#### \`${name}\``, '', spec.description, '', 'Request:', '```ts', typeOf(spec.request), '```', 'Response:', '```ts', typeOf(spec.response), '```', '');
  }
  out.push('### Server → client notices', '');
  for (const [name, spec] of Object.entries(serverNotices)) {
    out.push(`#### \`${name}\``, '', spec.description, '', '```ts', typeOf(spec.payload), '```', '');
  }
  out.push('## Error codes (generated)', '', '| code | HTTP status | meaning |', '|---|---|---|');
  for (const [code, e] of Object.entries(ErrorCodes)) out.push(`| \`${code}\` | ${e.status} | ${e.message} |`);
  return out.join('\n') + '\n';
}

function protocolDoc(): string {
  const dir = resolve(root, 'docs/protocol');
  const order = ['identity', 'calls', 'relay', 'conference', 'cdr'];
  const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.md')) : [];
  files.sort((a, b) => {
    const ia = order.indexOf(a.replace(/\.md$/, ''));
    const ib = order.indexOf(b.replace(/\.md$/, ''));
    return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib) || a.localeCompare(b);
  });
  const header = readFileSync(resolve(root, 'docs/protocol.head.md'), 'utf8');
  const sections = files.map((f) => readFileSync(resolve(dir, f), 'utf8').trim() + '\n');
  return ['<!-- Generated by `npm run docs` from docs/protocol.head.md, docs/protocol/*.md and shared/protocol. Edit those, not this file. -->', '', header.trim(), '', ...sections, socketReference()].join('\n');
}

function envTable(schema: EnvSchema): string {
  const rows = describeEnv(schema).map((v) => `| \`${v.name}\` | ${v.default.replace(/\|/g, '\\|')} | ${v.description.replace(/\|/g, '\\|')} |`);
  return ['| variable | default | meaning |', '|---|---|---|', ...rows].join('\n');
}

async function readme(current: string): Promise<string> {
  const tables: [string, EnvSchema][] = [['hub', hubEnvSchema]];
  const relayConfig = resolve(root, 'relay/config.ts');
  if (existsSync(relayConfig)) {
    const mod = (await import(pathToFileURL(relayConfig).href)) as { relayEnvSchema?: EnvSchema };
    if (mod.relayEnvSchema) tables.push(['relay', mod.relayEnvSchema]);
  }
  let text = current;
  for (const [name, schema] of tables) {
    const begin = `<!-- config:${name}:begin -->`;
    const end = `<!-- config:${name}:end -->`;
    const i = text.indexOf(begin);
    const j = text.indexOf(end);
    if (i < 0 || j < 0) continue;
    text = text.slice(0, i + begin.length) + '\n' + envTable(schema) + '\n' + text.slice(j);
  }
  return text;
}

async function main(): Promise<void> {
  const targets: [string, string][] = [['docs/protocol.md', protocolDoc()]];
  const readmePath = resolve(root, 'README.md');
  if (existsSync(readmePath)) targets.push(['README.md', await readme(readFileSync(readmePath, 'utf8'))]);
  let stale = 0;
  for (const [rel, content] of targets) {
    const path = resolve(root, rel);
    const old = existsSync(path) ? readFileSync(path, 'utf8') : '';
    if (old === content) continue;
    if (check) {
      process.stderr.write(`${rel} is out of date: run \`npm run docs\`\n`);
      stale++;
    } else {
      writeFileSync(path, content);
      process.stdout.write(`wrote ${rel}\n`);
    }
  }
  process.exit(stale ? 1 : 0);
}

void main();
