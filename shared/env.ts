/**
 * Reading configuration from the environment: one zod schema per process,
 * every variable described and defaulted in one place, and a startup error
 * that names each bad variable. Nothing outside a config module reads
 * process.env.
 */
import { z } from 'zod';

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

export type EnvSchema = z.ZodObject<z.ZodRawShape>;

export function parseEnv<S extends EnvSchema>(schema: S, env: Record<string, string | undefined>): z.output<S> {
  // Empty strings mean "unset", as in most shells' `VAR= cmd`.
  const cleaned: Record<string, string> = {};
  for (const key of Object.keys(schema.shape)) {
    const value = env[key];
    if (value !== undefined && value !== '') cleaned[key] = value;
  }
  const result = schema.safeParse(cleaned);
  if (!result.success) {
    throw new ConfigError(result.error.issues.map((i) => `${i.path.join('.') || '(env)'}: ${i.message}`));
  }
  return result.data;
}

/** Boolean env values: 1/0, true/false, yes/no. */
export const envBool = z
  .enum(['1', '0', 'true', 'false', 'yes', 'no'])
  .transform((v) => v === '1' || v === 'true' || v === 'yes');

export const envInt = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

/** Comma-separated list. */
export const envList = z.string().transform((v) => v.split(',').map((s) => s.trim()).filter(Boolean));

/** `kid:secret,kid:secret` pairs, used for keyed hashes and JWT keys with rotation. */
export const envKeyRing = z.string().transform((v, ctx) => {
  const keys = new Map<string, string>();
  for (const part of v.split(',')) {
    const idx = part.indexOf(':');
    const id = part.slice(0, idx).trim();
    const secret = part.slice(idx + 1).trim();
    if (idx <= 0 || !/^[A-Za-z0-9_-]{1,32}$/.test(id) || secret.length < 16) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: 'expected id:secret pairs (id [A-Za-z0-9_-], secret at least 16 chars)' });
      return z.NEVER;
    }
    keys.set(id, secret);
  }
  return keys;
});

/** A line per variable for docs: name, default, description. */
export function describeEnv(schema: EnvSchema): { name: string; default: string; description: string }[] {
  return Object.entries(schema.shape).map(([name, type]) => {
    const t = type as z.ZodTypeAny;
    let def = '';
    if (t instanceof z.ZodDefault) def = JSON.stringify(t._def.defaultValue());
    else if (t.isOptional()) def = '(unset)';
    else def = '(required)';
    return { name, default: def, description: t.description ?? '' };
  });
}
