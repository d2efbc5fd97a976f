import type { Redis } from 'ioredis';
import { keys } from '../keys.js';
import { LuaScript } from '../LuaScript.js';

/** `n:` numbers, `e:` emails, followed by the identifier's keyed hash. */
export type BookField = `n:${string}` | `e:${string}`;

/** What the book keeps per identifier: the client's entry ids naming it, and whether an entry without id named it. */
export interface BookTags {
  ids: Set<string>;
  anon: boolean;
}

export class BookFullError extends Error {
  constructor(readonly max: number) {
    super(`the address book would exceed ${max} numbers and emails`);
    this.name = 'BookFullError';
  }
}

// Values are `<0|1> id id ...`: the anon flag, then client ids (which never hold whitespace).
// KEYS: book. ARGV: max, then field/value pairs. Merges the tags into the book.
// Returns { fields that were new }, or { -1 } when the book would exceed max.
const ADD = new LuaScript(`
local max = tonumber(ARGV[1])
local fresh = {}
for i = 2, #ARGV, 2 do
  if redis.call('HEXISTS', KEYS[1], ARGV[i]) == 0 then fresh[#fresh + 1] = ARGV[i] end
end
if redis.call('HLEN', KEYS[1]) + #fresh > max then return { -1 } end
for i = 2, #ARGV, 2 do
  local old = redis.call('HGET', KEYS[1], ARGV[i])
  if not old then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  else
    local seen, ids = {}, {}
    local anon = string.sub(old, 1, 1) == '1' or string.sub(ARGV[i + 1], 1, 1) == '1'
    for _, v in ipairs({ old, ARGV[i + 1] }) do
      local first = true
      for id in string.gmatch(v, '%S+') do
        if not first and not seen[id] then seen[id] = true; ids[#ids + 1] = id end
        first = false
      end
    end
    redis.call('HSET', KEYS[1], ARGV[i], (anon and '1' or '0') .. (#ids > 0 and (' ' .. table.concat(ids, ' ')) or ''))
  end
end
return fresh
`);

// KEYS: book. ARGV: count of fields F, F fields, then client ids. Drops the named fields
// outright, and the client ids from every field; a field left with no id and no anon
// entry goes. Returns the fields removed.
const REMOVE = new LuaScript(`
local nFields = tonumber(ARGV[1])
local removed = {}
for i = 2, nFields + 1 do
  if redis.call('HDEL', KEYS[1], ARGV[i]) == 1 then removed[#removed + 1] = ARGV[i] end
end
if #ARGV > nFields + 1 then
  local drop = {}
  for i = nFields + 2, #ARGV do drop[ARGV[i]] = true end
  local all = redis.call('HGETALL', KEYS[1])
  for i = 1, #all, 2 do
    local keep, changed, first, anon = {}, false, true, '0'
    for tok in string.gmatch(all[i + 1], '%S+') do
      if first then anon = tok; first = false
      elseif drop[tok] then changed = true
      else keep[#keep + 1] = tok end
    end
    if changed then
      if #keep == 0 and anon ~= '1' then
        redis.call('HDEL', KEYS[1], all[i]); removed[#removed + 1] = all[i]
      else
        redis.call('HSET', KEYS[1], all[i], anon .. (#keep > 0 and (' ' .. table.concat(keep, ' ')) or ''))
      end
    end
  end
end
return removed
`);

/**
 * A user's address book as keyed hashes only (never names or plain values),
 * plus the reverse index from each hash to the users holding it.
 *
 * The book (`user:{uid}:book`) lives in the user's hash slot and changes
 * atomically (MULTI or Lua). Reverse-index sets (`contacts:owners:{hash}`)
 * live in one slot per hash, so they are updated after the book, each set on
 * its own; the book is the truth, and a reverse entry whose book field is
 * gone is treated as stale and removed when read (see `ownersOf`).
 */
export class AddressBook {
  constructor(private readonly redis: Redis) {}

  /** The fields currently held. */
  async fields(userId: string): Promise<BookField[]> {
    return (await this.redis.hkeys(keys.userBook(userId))) as BookField[];
  }

  /** The client ids stored with one field, or null when the book does not hold it. */
  async tagsOf(userId: string, field: BookField): Promise<BookTags | null> {
    const raw = await this.redis.hget(keys.userBook(userId), field);
    return raw === null ? null : decodeTags(raw);
  }

  /** Replaces the whole book atomically; returns the fields held before. */
  async replace(userId: string, book: Map<BookField, BookTags>): Promise<BookField[]> {
    const key = keys.userBook(userId);
    const tx = this.redis.multi().hkeys(key).del(key);
    if (book.size > 0) tx.hset(key, Object.fromEntries([...book].map(([f, t]) => [f, encodeTags(t)])));
    const results = await tx.exec();
    const before = (results?.[0]?.[1] ?? []) as BookField[];
    const beforeSet = new Set(before);
    await this.#reindex(userId, before.filter((f) => !book.has(f)), [...book.keys()].filter((f) => !beforeSet.has(f)));
    return before;
  }

  /** Merges entries into the book; returns the fields that were new. Throws BookFullError past `max`. */
  async add(userId: string, book: Map<BookField, BookTags>, max: number): Promise<BookField[]> {
    if (book.size === 0) return [];
    const args: (string | number)[] = [max];
    for (const [f, t] of book) args.push(f, encodeTags(t));
    const result = (await ADD.run(this.redis, [keys.userBook(userId)], args)) as (string | number)[];
    if (result[0] === -1) throw new BookFullError(max);
    const fresh = result as BookField[];
    await this.#reindex(userId, [], fresh);
    return fresh;
  }

  /** Removes fields outright and client ids wherever they appear; returns the fields that left the book. */
  async remove(userId: string, fields: BookField[], clientIds: string[]): Promise<BookField[]> {
    if (fields.length === 0 && clientIds.length === 0) return [];
    const removed = (await REMOVE.run(this.redis, [keys.userBook(userId)], [fields.length, ...fields, ...clientIds])) as BookField[];
    await this.#reindex(userId, removed, []);
    return removed;
  }

  /** Deletes the book and every reverse-index entry pointing at it. */
  async deleteAll(userId: string): Promise<void> {
    const key = keys.userBook(userId);
    const results = await this.redis.multi().hkeys(key).del(key).exec();
    await this.#reindex(userId, (results?.[0]?.[1] ?? []) as BookField[], []);
  }

  /** Counts per kind and the client ids held (for export). */
  async summary(userId: string): Promise<{ numbers: number; emails: number; clientIds: string[] }> {
    const all = await this.redis.hgetall(keys.userBook(userId));
    let numbers = 0;
    let emails = 0;
    const ids = new Set<string>();
    for (const [field, raw] of Object.entries(all)) {
      if (field.startsWith('n:')) numbers += 1;
      else emails += 1;
      for (const id of decodeTags(raw).ids) ids.add(id);
    }
    return { numbers, emails, clientIds: [...ids].sort() };
  }

  /**
   * Users whose book holds this field, with the client ids they gave it.
   * Reverse entries the book no longer confirms are dropped on the way.
   */
  async ownersOf(field: BookField): Promise<{ userId: string; tags: BookTags }[]> {
    const hash = field.slice(2);
    const owners = await this.redis.smembers(keys.contactOwners(hash));
    const out: { userId: string; tags: BookTags }[] = [];
    for (const userId of owners) {
      const tags = await this.tagsOf(userId, field);
      if (tags) out.push({ userId, tags });
      else await this.redis.srem(keys.contactOwners(hash), userId);
    }
    return out;
  }

  async #reindex(userId: string, removed: BookField[], added: BookField[]): Promise<void> {
    if (removed.length === 0 && added.length === 0) return;
    // One command per reverse set: each lives in its own slot.
    const pipeline = this.redis.pipeline();
    for (const f of removed) pipeline.srem(keys.contactOwners(f.slice(2)), userId);
    for (const f of added) pipeline.sadd(keys.contactOwners(f.slice(2)), userId);
    const results = await pipeline.exec();
    const failed = results?.find(([err]) => err);
    if (failed) throw failed[0]!;
  }
}

export function encodeTags(t: BookTags): string {
  return [t.anon ? '1' : '0', ...t.ids].join(' ');
}

export function decodeTags(raw: string): BookTags {
  const [flag, ...ids] = raw.split(' ').filter(Boolean);
  return { anon: flag === '1', ids: new Set(ids) };
}
