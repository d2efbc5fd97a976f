/** One line of the address book the user typed or pasted. */
export interface BookEntry {
  clientId: string;
  name?: string;
  phones: string[];
}

/** An address-book entry that is a user of the service. */
export interface Contact {
  userId: string;
  /** The name in the user's own address book, else the profile name. */
  name: string;
  phone?: string;
  clientId?: string;
}

const KEY = 'callhub.addressBook';

/**
 * The user's address book on this device (localStorage: it is the user's
 * own data on the user's own device; the hub keeps only keyed hashes) and
 * the entries known to be users, so the contact list survives a reload.
 */
export class AddressBook {
  #entries: BookEntry[] = [];
  #contacts: Contact[] = [];

  constructor(private readonly storage: Storage) {
    try {
      const saved = JSON.parse(storage.getItem(KEY) ?? 'null') as { entries?: BookEntry[]; contacts?: Contact[] } | null;
      this.#entries = Array.isArray(saved?.entries) ? saved.entries : [];
      this.#contacts = Array.isArray(saved?.contacts) ? saved.contacts : [];
    } catch {
      // a damaged entry is dropped; the user can upload again
    }
  }

  get contacts(): readonly Contact[] {
    return this.#contacts;
  }

  /** Reads "Name, +44 7700 900123" lines (comma, semicolon or tab separated). */
  static parse(text: string): BookEntry[] {
    return text.split('\n').map((line, i) => {
      const parts = line.split(/[,;\t]/).map((p) => p.trim()).filter(Boolean);
      const phone = parts.find((p) => /^\+?[\d\s().-]{5,}$/.test(p));
      const name = parts.filter((p) => p !== phone).join(' ');
      const entry: BookEntry = { clientId: `c${i}`, phones: phone ? [phone] : [] };
      if (name) entry.name = name;
      return entry;
    }).filter((e) => e.phones.length > 0);
  }

  /** Replaces the book with an upload and the hub's matches (by entry index). */
  replace(entries: BookEntry[], matches: { index: number; userId: string; displayName: string | null }[]): void {
    this.#entries = entries;
    this.#contacts = matches.map((m) => toContact(entries[m.index], m.userId, m.displayName));
    this.#save();
  }

  /** Someone in the book just registered (`contact:joined`). */
  joined(userId: string, displayName: string | null, clientIds: string[]): void {
    if (this.#contacts.some((c) => c.userId === userId)) return;
    const entry = this.#entries.find((e) => clientIds.includes(e.clientId));
    this.#contacts = [...this.#contacts, toContact(entry, userId, displayName)];
    this.#save();
  }

  clear(): void {
    this.#entries = [];
    this.#contacts = [];
    this.storage.removeItem(KEY);
  }

  #save(): void {
    this.storage.setItem(KEY, JSON.stringify({ entries: this.#entries, contacts: this.#contacts }));
  }
}

function toContact(entry: BookEntry | undefined, userId: string, displayName: string | null): Contact {
  const contact: Contact = { userId, name: entry?.name ?? displayName ?? 'Unknown' };
  if (entry?.phones[0]) contact.phone = entry.phones[0];
  if (entry?.clientId) contact.clientId = entry.clientId;
  return contact;
}
