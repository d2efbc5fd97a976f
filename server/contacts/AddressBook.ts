import type { Redis } from 'ioredis';
import { AppError } from '../../shared/protocol/errors.js';
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

// Shared by the scripts: the book may be written only while the account exists
// (profile present, no erasure tombstone), so an upload racing an erasure
// cannot leave a book (and reverse-index entries) behind.
const ACCOUNT_LIVE = `
local function accountLive(profileKey, tombstoneKey)
  return redis.call('EXISTS', tombstoneKey) == 0 and redis.call('EXISTS', profileKey) == 1
end
`;

// KEYS: book, profile, erasure tombstone. ARGV: field/value pairs.
// Replaces the book; returns the fields held before, or -2 when the account is gone.
const REPLACE = new LuaScript(`${ACCOUNT_LIVE}
if not accountLive(KEYS[2], KEYS[3]) then return -2 end
local before = redis.call('HKEYS', KEYS[1])
redis.call('DEL', KEYS[1])
for i = 1, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
return before
`);

// Values are `<0|1> id id ...`: the anon flag, then client ids (which never hold whitespace).
// KEYS: book, profile, erasure tombstone. ARGV: max, F, F fields to remove, I, I client ids
// to remove, then field/value pairs to merge in.
// Removals first: the named fields go outright; the client ids leave every field, and a
// field left with no id and no anon entry goes. Then the pairs merge in. The whole change
// is planned before anything is written: when the result would hold more than max fields
// it returns -1 and the book is untouched (-2: the account is gone). Otherwise returns
// { fields that left the book, fields that are new }.
const CHANGE = new LuaScript(`${ACCOUNT_LIVE}
if not accountLive(KEYS[2], KEYS[3]) then return -2 end
local max = tonumber(ARGV[1])
local nFields = tonumber(ARGV[2])
local idsAt = nFields + 3
local nIds = tonumber(ARGV[idsAt])
local addAt = idsAt + nIds + 1

-- after[f]: false when f leaves the book, a string when its value changes.
local after, leaving = {}, 0
for i = 3, nFields + 2 do
  local f = ARGV[i]
  if after[f] == nil and redis.call('HEXISTS', KEYS[1], f) == 1 then after[f] = false; leaving = leaving + 1 end
end
if nIds > 0 then
  local drop = {}
  for i = idsAt + 1, idsAt + nIds do drop[ARGV[i]] = true end
  local all = redis.call('HGETALL', KEYS[1])
  for i = 1, #all, 2 do
    if after[all[i]] == nil then
      local keep, changed, first, anon = {}, false, true, '0'
      for tok in string.gmatch(all[i + 1], '%S+') do
        if first then anon = tok; first = false
        elseif drop[tok] then changed = true
        else keep[#keep + 1] = tok end
      end
      if changed then
        if #keep == 0 and anon ~= '1' then after[all[i]] = false; leaving = leaving + 1
        else after[all[i]] = anon .. (#keep > 0 and (' ' .. table.concat(keep, ' ')) or '') end
      end
    end
  end
end

local current = function(f)
  local v = after[f]
  if v == nil then return redis.call('HGET', KEYS[1], f) end
  return v
end
local fresh = {}
for i = addAt, #ARGV, 2 do
  if not current(ARGV[i]) then fresh[#fresh + 1] = ARGV[i] end
end
-- Only new fields can make it too large (a book over a lowered max may still shrink or retag).
if #fresh > 0 and redis.call('HLEN', KEYS[1]) - leaving + #fresh > max then return -1 end

for f, v in pairs(after) do
  if v == false then redis.call('HDEL', KEYS[1], f) else redis.call('HSET', KEYS[1], f, v) end
end
local readded = {}
for i = addAt, #ARGV, 2 do
  local old = redis.call('HGET', KEYS[1], ARGV[i])
  if not old then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
    readded[ARGV[i]] = true
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
local left = {}
for f, v in pairs(after) do
  if v == false and not readded[f] then left[#left + 1] = f end
end
local added = {}
for _, f in ipairs(fresh) do
  if after[f] ~= false then added[#added + 1] = f end
end
return { left, added }
`);

/**
 * A user's address book as keyed hashes only (never names or plain values),
 * plus the reverse index from each hash to the users holding it.
 *
 * The book (`user:{uid}:book`) lives in the user's hash slot and changes
 * atomically (MULTI or Lua); writes refuse with ACCOUNT_DELETED once the
 * account is gone or being erased. Reverse-index sets (`contacts:owners:{hash}`)
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

  /** Replaces the whole book atomically; returns the fields held before. Throws ACCOUNT_DELETED when the account is gone. */
  async replace(userId: string, book: Map<BookField, BookTags>): Promise<BookField[]> {
    const args: string[] = [];
    for (const [f, t] of book) args.push(f, encodeTags(t));
    const result = await REPLACE.run(this.redis, this.#scriptKeys(userId), args);
    if (result === -2) throw accountGone();
    const before = result as BookField[];
    const beforeSet = new Set(before);
    await this.#reindex(userId, before.filter((f) => !book.has(f)), [...book.keys()].filter((f) => !beforeSet.has(f)));
    return before;
  }

  /**
   * Removes fields outright and client ids wherever they appear, then merges
   * `add` in, as one atomic step: if the result would exceed `max` fields it
   * throws BookFullError and nothing changed (ACCOUNT_DELETED when the account
   * is gone). Returns the fields that left the book and those that are new.
   */
  async change(
    userId: string,
    change: { removeFields?: BookField[]; removeClientIds?: string[]; add?: Map<BookField, BookTags> },
    max: number,
  ): Promise<{ removed: BookField[]; added: BookField[] }> {
    const removeFields = change.removeFields ?? [];
    const removeIds = change.removeClientIds ?? [];
    const add = change.add ?? new Map<BookField, BookTags>();
    if (removeFields.length === 0 && removeIds.length === 0 && add.size === 0) return { removed: [], added: [] };
    const args: (string | number)[] = [max, removeFields.length, ...removeFields, removeIds.length, ...removeIds];
    for (const [f, t] of add) args.push(f, encodeTags(t));
    const result = await CHANGE.run(this.redis, this.#scriptKeys(userId), args);
    if (result === -1) throw new BookFullError(max);
    if (result === -2) throw accountGone();
    const [removed, added] = result as [BookField[], BookField[]];
    await this.#reindex(userId, removed, added);
    return { removed, added };
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

  #scriptKeys(userId: string): string[] {
    return [keys.userBook(userId), keys.user(userId), keys.userErased(userId)];
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

function accountGone(): AppError {
  return new AppError('ACCOUNT_DELETED', 'The account was erased; the address book was not stored');
}
