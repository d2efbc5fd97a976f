import type { Redis } from 'ioredis';
import type { CountryCode } from 'libphonenumber-js/max';
import { AppError } from '../../shared/protocol/errors.js';
import type { ContactEntry, ContactsReply } from '../../shared/protocol/contacts.js';
import type { Logger } from '../../shared/runtime/log.js';
import { keys } from '../keys.js';
import type { HubServer } from '../socket/SocketGateway.js';
import { rooms } from '../socket/SocketGateway.js';
import type { PhoneHasher } from '../identity/PhoneHasher.js';
import { PhoneNumbers } from '../identity/PhoneNumbers.js';
import type { RateDecision, RateLimit, RateLimiter } from '../identity/RateLimiter.js';
import { AddressBook, BookFullError, type BookField, type BookTags } from './AddressBook.js';

export interface DiscoveryOptions {
  /** New numbers one account may check per day. */
  newNumbersPerDay: number;
  /** Entries accepted in one upload. */
  maxEntries: number;
  /** Distinct identifiers one book may hold, and names one request may carry (counted as sent). */
  maxIdentifiers: number;
}

export interface DiscoveryDeps {
  redis: Redis;
  book: AddressBook;
  hasher: PhoneHasher;
  limiter: RateLimiter;
  io: HubServer;
  log: Logger;
}

/** An uploaded entry reduced to what matching needs. */
interface ReadEntry {
  index: number;
  clientId: string | undefined;
  fields: BookField[];
}

/** Reading an upload against the discovery quota. */
interface QuotaGuard {
  userId: string;
  /** Fields of the stored book: numbers in it are free. */
  current: Set<BookField>;
  /** New numbers the quota allows (as last seen). */
  remaining: number;
  /** New numbers read so far. */
  newNumbers: Set<BookField>;
}

const DAY = 86400;
/** Numbers and emails read between two turns of the event loop. */
const CHUNK = 200;
const EMAIL_RE = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/**
 * Private contact discovery: normalises uploaded entries (numbers read in the
 * owner's own country, emails lower-cased), keeps only their keyed hashes,
 * charges new numbers against a daily quota so an account cannot enumerate
 * the number space, replies with the entries that are users, and tells
 * address-book owners when one of their contacts registers.
 */
export class Discovery {
  readonly #deps: DiscoveryDeps;
  readonly #opts: DiscoveryOptions;

  constructor(deps: DiscoveryDeps, opts: DiscoveryOptions) {
    this.#deps = deps;
    this.#opts = opts;
  }

  /** PUT: the upload becomes the whole book. */
  async replace(owner: { userId: string; phone: string }, entries: ContactEntry[]): Promise<ContactsReply> {
    this.#checkSize(entries, countNames(entries));
    const current = new Set(await this.#deps.book.fields(owner.userId));
    const quota = await this.#quotaGuard(owner.userId, current);
    const { read, ignored } = await this.#read(entries, PhoneNumbers.countryOf(owner.phone), new Chunker(), quota);
    const book = toBook(read);
    const refund = await this.#charge(owner.userId, quota.newNumbers.size);
    try {
      await this.#deps.book.replace(owner.userId, book);
    } catch (err) {
      await refund();
      throw err;
    }
    return this.#reply(owner.userId, read, ignored);
  }

  /** PATCH: removals then additions, in one atomic step; replies with matches among the additions. */
  async patch(
    owner: { userId: string; phone: string },
    change: { add?: ContactEntry[]; remove?: { clientIds?: string[]; phones?: string[]; emails?: string[] } },
  ): Promise<ContactsReply> {
    const add = change.add ?? [];
    const remove = change.remove ?? {};
    this.#checkSize(add, countNames(add) + (remove.phones?.length ?? 0) + (remove.emails?.length ?? 0) + (remove.clientIds?.length ?? 0));
    const country = PhoneNumbers.countryOf(owner.phone);
    const current = new Set(await this.#deps.book.fields(owner.userId));
    const quota = await this.#quotaGuard(owner.userId, current);
    const chunker = new Chunker();
    const { read, ignored } = await this.#read(add, country, chunker, quota);
    const removal = await this.#removalFields(remove, country, chunker);
    const book = toBook(read);
    // Charged before anything changes, and the change is one script, so a refusal leaves the book as it was.
    const refund = await this.#charge(owner.userId, quota.newNumbers.size);
    try {
      await this.#deps.book.change(owner.userId, { removeFields: removal.fields, removeClientIds: remove.clientIds ?? [], add: book }, this.#opts.maxIdentifiers);
    } catch (err) {
      await refund();
      if (err instanceof BookFullError) throw tooMany(err.max);
      throw err;
    }
    return this.#reply(owner.userId, read, ignored + removal.ignored);
  }

  /** New numbers checked in the current daily window. */
  async usedToday(userId: string): Promise<number> {
    return Number((await this.#deps.redis.get(keys.userQuota(userId, 'discovery'))) ?? 0);
  }

  /** Tells every user holding this number that its owner just registered (on any hub, through the adapter). */
  async announce(user: { userId: string; phone: string; displayName: string | null }): Promise<number> {
    const owners = await this.#deps.book.ownersOf(`n:${this.#deps.hasher.hash(user.phone)}`);
    let told = 0;
    for (const { userId, tags } of owners) {
      if (userId === user.userId) continue;
      this.#deps.io.to(rooms.user(userId)).emit('contact:joined', {
        userId: user.userId, displayName: user.displayName, clientIds: [...tags.ids],
      });
      told += 1;
    }
    return told;
  }

  /**
   * Refuses oversized requests from their raw counts, before any number is
   * parsed (parsing is the expensive part): entries per upload, and names
   * (numbers, emails, client ids to remove) per request.
   */
  #checkSize(entries: ContactEntry[], names: number): void {
    if (entries.length > this.#opts.maxEntries) {
      throw new AppError('PAYLOAD_TOO_LARGE', `At most ${this.#opts.maxEntries} entries per upload`);
    }
    if (names > this.#opts.maxIdentifiers) {
      throw new AppError('PAYLOAD_TOO_LARGE', `At most ${this.#opts.maxIdentifiers} numbers and emails per request`);
    }
  }

  /**
   * What the quota allows before parsing starts: new numbers (not in the
   * stored book) found while reading are counted, and reading stops as soon
   * as they pass what is left today, so an account out of quota cannot make
   * the hub parse a whole upload that is bound to be refused. Known numbers
   * stay free (a re-sync always works).
   */
  async #quotaGuard(userId: string, current: Set<BookField>): Promise<QuotaGuard> {
    const peek = await this.#deps.limiter.peek(keys.userQuota(userId, 'discovery'), this.#quotaLimit());
    return { userId, current, remaining: peek.remaining, newNumbers: new Set() };
  }

  #quotaLimit(): RateLimit {
    return { limit: this.#opts.newNumbersPerDay, windowSeconds: DAY, kind: 'fixed' };
  }

  async #charge(userId: string, newNumbers: number): Promise<() => Promise<void>> {
    if (newNumbers === 0) return async () => undefined;
    const decision = await this.#deps.limiter.consume(keys.userQuota(userId, 'discovery'), this.#quotaLimit(), newNumbers);
    if (!decision.allowed) throw quotaExceeded(newNumbers, decision);
    return decision.refund;
  }

  /** Normalises and hashes the entries, yielding to the event loop between chunks; throws once new numbers pass the quota. */
  async #read(entries: ContactEntry[], country: CountryCode | undefined, chunker: Chunker, quota: QuotaGuard): Promise<{ read: ReadEntry[]; ignored: number }> {
    const { hasher } = this.#deps;
    let ignored = 0;
    const read: ReadEntry[] = [];
    for (const [index, entry] of entries.entries()) {
      const fields = new Set<BookField>();
      for (const raw of entry.phones) {
        await chunker.step();
        const e164 = PhoneNumbers.normaliseContact(raw, country);
        if (!e164) {
          ignored += 1;
          continue;
        }
        const field: BookField = `n:${hasher.hash(e164)}`;
        fields.add(field);
        if (!quota.current.has(field)) await this.#countNew(quota, field);
      }
      for (const raw of entry.emails) {
        await chunker.step();
        const email = normaliseEmail(raw);
        if (email) fields.add(`e:${hasher.hashTagged('email', email)}`);
        else ignored += 1;
      }
      read.push({ index, clientId: entry.clientId, fields: [...fields] });
    }
    return { read, ignored };
  }

  async #countNew(quota: QuotaGuard, field: BookField): Promise<void> {
    if (quota.newNumbers.has(field)) return;
    quota.newNumbers.add(field);
    if (quota.newNumbers.size <= quota.remaining) return;
    // Past what the peek saw: ask again (the window may have rolled over meanwhile).
    const decision = await this.#deps.limiter.peek(keys.userQuota(quota.userId, 'discovery'), this.#quotaLimit(), quota.newNumbers.size);
    if (!decision.allowed) throw quotaExceeded(quota.newNumbers.size, decision);
    quota.remaining = decision.remaining;
  }

  async #removalFields(remove: { phones?: string[]; emails?: string[] }, country: CountryCode | undefined, chunker: Chunker): Promise<{ fields: BookField[]; ignored: number }> {
    const { hasher } = this.#deps;
    const fields: BookField[] = [];
    let ignored = 0;
    for (const raw of remove.phones ?? []) {
      await chunker.step();
      const e164 = PhoneNumbers.normaliseContact(raw, country);
      if (e164) fields.push(`n:${hasher.hash(e164)}`);
      else ignored += 1;
    }
    for (const raw of remove.emails ?? []) {
      await chunker.step();
      const email = normaliseEmail(raw);
      if (email) fields.push(`e:${hasher.hashTagged('email', email)}`);
      else ignored += 1;
    }
    return { fields, ignored };
  }

  /** Looks the uploaded numbers up in the phone index and names the users found. */
  async #reply(ownerId: string, read: ReadEntry[], ignored: number): Promise<ContactsReply> {
    const { redis, book } = this.#deps;
    const numberHashes = [...new Set(read.flatMap((e) => e.fields.filter((f) => f.startsWith('n:')).map((f) => f.slice(2))))];
    const userOf = new Map<string, string>();
    if (numberHashes.length > 0) {
      const pipeline = redis.pipeline();
      for (const h of numberHashes) pipeline.get(keys.phoneIndex(h));
      const results = (await pipeline.exec()) ?? [];
      numberHashes.forEach((h, i) => {
        const uid = results[i]?.[1];
        if (typeof uid === 'string' && uid !== ownerId) userOf.set(h, uid);
      });
    }
    const names = new Map<string, string | null>();
    const uids = [...new Set(userOf.values())];
    if (uids.length > 0) {
      const pipeline = redis.pipeline();
      for (const uid of uids) pipeline.hmget(keys.user(uid), 'phone', 'displayName');
      const results = (await pipeline.exec()) ?? [];
      uids.forEach((uid, i) => {
        const [phone, displayName] = (results[i]?.[1] ?? []) as (string | null)[];
        if (phone) names.set(uid, displayName ?? null);
      });
    }
    const matches: ContactsReply['matches'] = [];
    for (const entry of read) {
      const seen = new Set<string>();
      for (const f of entry.fields) {
        const uid = f.startsWith('n:') ? userOf.get(f.slice(2)) : undefined;
        if (!uid || seen.has(uid) || !names.has(uid)) continue;
        seen.add(uid);
        matches.push({ index: entry.index, ...(entry.clientId !== undefined ? { clientId: entry.clientId } : {}), userId: uid, displayName: names.get(uid) ?? null });
      }
    }
    const { numbers, emails } = await book.summary(ownerId);
    return { matches, stored: { numbers, emails }, ignored };
  }
}

function toBook(read: ReadEntry[]): Map<BookField, BookTags> {
  const book = new Map<BookField, BookTags>();
  for (const entry of read) {
    for (const f of entry.fields) {
      let tags = book.get(f);
      if (!tags) book.set(f, (tags = { ids: new Set(), anon: false }));
      if (entry.clientId !== undefined) tags.ids.add(entry.clientId);
      else tags.anon = true;
    }
  }
  return book;
}

function normaliseEmail(raw: string): string | null {
  const email = raw.trim().toLowerCase();
  return email.length <= 254 && EMAIL_RE.test(email) ? email : null;
}

function tooMany(max: number): AppError {
  return new AppError('PAYLOAD_TOO_LARGE', `An address book holds at most ${max} numbers and emails`);
}

function quotaExceeded(newNumbers: number, decision: RateDecision): AppError {
  return new AppError('DISCOVERY_QUOTA_EXCEEDED', `This upload checks ${newNumbers} new numbers; ${decision.remaining} are left today`, {
    retryAfter: decision.retryAfter, details: { newNumbers, remaining: decision.remaining },
  });
}

/** Numbers and emails an upload names, as sent (counted before anything is parsed). */
function countNames(entries: ContactEntry[]): number {
  let n = 0;
  for (const e of entries) n += e.phones.length + e.emails.length;
  return n;
}

/**
 * Parsing a large upload takes a while (libphonenumber is synchronous):
 * give other requests and sockets a turn every CHUNK items.
 */
class Chunker {
  #done = 0;

  async step(): Promise<void> {
    this.#done += 1;
    if (this.#done % CHUNK === 0) await new Promise<void>((resolve) => setImmediate(resolve));
  }
}
