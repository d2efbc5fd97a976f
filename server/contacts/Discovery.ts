import type { Redis } from 'ioredis';
import type { CountryCode } from 'libphonenumber-js/max';
import { AppError } from '../../shared/protocol/errors.js';
import type { ContactEntry, ContactsReply } from '../../shared/protocol/contacts.js';
import type { Logger } from '../log.js';
import { keys } from '../keys.js';
import type { HubServer } from '../socket/SocketGateway.js';
import { rooms } from '../socket/SocketGateway.js';
import type { PhoneHasher } from '../identity/PhoneHasher.js';
import { PhoneNumbers } from '../identity/PhoneNumbers.js';
import type { RateLimiter } from '../identity/RateLimiter.js';
import { AddressBook, BookFullError, type BookField, type BookTags } from './AddressBook.js';

export interface DiscoveryOptions {
  /** New numbers one account may check per day. */
  newNumbersPerDay: number;
  /** Entries accepted in one upload. */
  maxEntries: number;
  /** Distinct identifiers one book may hold. */
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

const DAY = 86400;
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
    this.#checkSize(entries);
    const { read, ignored } = this.#read(entries, PhoneNumbers.countryOf(owner.phone));
    const book = toBook(read);
    if (book.size > this.#opts.maxIdentifiers) throw tooMany(this.#opts.maxIdentifiers);
    const current = new Set(await this.#deps.book.fields(owner.userId));
    const refund = await this.#charge(owner.userId, [...book.keys()].filter((f) => f.startsWith('n:') && !current.has(f)).length);
    try {
      await this.#deps.book.replace(owner.userId, book);
    } catch (err) {
      await refund();
      throw err;
    }
    return this.#reply(owner.userId, read, ignored);
  }

  /** PATCH: removals first, then additions; replies with matches among the additions. */
  async patch(
    owner: { userId: string; phone: string },
    change: { add?: ContactEntry[]; remove?: { clientIds?: string[]; phones?: string[]; emails?: string[] } },
  ): Promise<ContactsReply> {
    const add = change.add ?? [];
    this.#checkSize(add);
    const country = PhoneNumbers.countryOf(owner.phone);
    const { read, ignored } = this.#read(add, country);
    const removal = this.#removalFields(change.remove, country);
    const book = toBook(read);
    if (book.size > this.#opts.maxIdentifiers) throw tooMany(this.#opts.maxIdentifiers);
    // Charged before anything changes, so a refusal leaves the book as it was.
    const current = new Set(await this.#deps.book.fields(owner.userId));
    const refund = await this.#charge(owner.userId, [...book.keys()].filter((f) => f.startsWith('n:') && !current.has(f)).length);
    try {
      await this.#deps.book.remove(owner.userId, removal.fields, change.remove?.clientIds ?? []);
      await this.#deps.book.add(owner.userId, book, this.#opts.maxIdentifiers);
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

  #checkSize(entries: ContactEntry[]): void {
    if (entries.length > this.#opts.maxEntries) {
      throw new AppError('PAYLOAD_TOO_LARGE', `At most ${this.#opts.maxEntries} entries per upload`);
    }
  }

  async #charge(userId: string, newNumbers: number): Promise<() => Promise<void>> {
    if (newNumbers === 0) return async () => undefined;
    const decision = await this.#deps.limiter.consume(
      keys.userQuota(userId, 'discovery'),
      { limit: this.#opts.newNumbersPerDay, windowSeconds: DAY, kind: 'fixed' },
      newNumbers,
    );
    if (!decision.allowed) {
      throw new AppError('DISCOVERY_QUOTA_EXCEEDED', `This upload checks ${newNumbers} new numbers; ${decision.remaining} are left today`, {
        retryAfter: decision.retryAfter, details: { newNumbers, remaining: decision.remaining },
      });
    }
    return decision.refund;
  }

  #read(entries: ContactEntry[], country: CountryCode | undefined): { read: ReadEntry[]; ignored: number } {
    const { hasher } = this.#deps;
    let ignored = 0;
    const read = entries.map((entry, index): ReadEntry => {
      const fields = new Set<BookField>();
      for (const raw of entry.phones) {
        const e164 = PhoneNumbers.normaliseContact(raw, country);
        if (e164) fields.add(`n:${hasher.hash(e164)}`);
        else ignored += 1;
      }
      for (const raw of entry.emails) {
        const email = normaliseEmail(raw);
        if (email) fields.add(`e:${hasher.hashTagged('email', email)}`);
        else ignored += 1;
      }
      return { index, clientId: entry.clientId, fields: [...fields] };
    });
    return { read, ignored };
  }

  #removalFields(remove: { phones?: string[]; emails?: string[] } | undefined, country: CountryCode | undefined): { fields: BookField[]; ignored: number } {
    const { hasher } = this.#deps;
    const fields: BookField[] = [];
    let ignored = 0;
    for (const raw of remove?.phones ?? []) {
      const e164 = PhoneNumbers.normaliseContact(raw, country);
      if (e164) fields.push(`n:${hasher.hash(e164)}`);
      else ignored += 1;
    }
    for (const raw of remove?.emails ?? []) {
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
