import { z } from 'zod';
import { notice } from './define.js';
import { DisplayName, UserId } from './common.js';
import { httpRoute } from './identity.js';
import type { ErrorCode } from './errors.js';

export const contactsRequests = {};

export const contactsNotices = {
  'contact:joined': notice({
    payload: z.object({
      userId: UserId,
      displayName: DisplayName.nullable(),
      /** The client's own id for the address-book entry, when it gave one. */
      clientIds: z.array(z.string()),
    }),
    description: 'Someone in your address book just registered.',
  }),
};

/** The client's own id for an entry (e.g. the phone's contact id); stored so matches and notices can name the entry. */
export const ContactClientId = z.string().min(1).max(64).regex(/^\S+$/, 'must not contain whitespace');

/**
 * One address-book entry. Numbers may be in national format (read in the
 * owner's own country); the name is accepted so clients can send entries as
 * they are, and discarded at once: it is never stored.
 */
export const ContactEntry = z.object({
  clientId: ContactClientId.optional(),
  name: z.string().max(256).optional(),
  phones: z.array(z.string().max(64)).max(20).default([]),
  emails: z.array(z.string().max(254)).max(20).default([]),
}).strict();

export const ContactsPutRequest = z.object({ entries: z.array(ContactEntry).max(100_000) }).strict();

export const ContactsRemove = z.object({
  clientIds: z.array(ContactClientId).max(100_000).optional(),
  phones: z.array(z.string().max(64)).max(100_000).optional(),
  emails: z.array(z.string().max(254)).max(100_000).optional(),
}).strict();

export const ContactsPatchRequest = z.object({
  add: z.array(ContactEntry).max(100_000).optional(),
  remove: ContactsRemove.optional(),
}).strict().refine((v) => v.add !== undefined || v.remove !== undefined, { message: 'give add or remove' });

export const ContactMatch = z.object({
  /** Position of the entry in `entries` (PUT) or `add` (PATCH). */
  index: z.number().int(),
  clientId: ContactClientId.optional(),
  userId: UserId,
  displayName: DisplayName.nullable(),
});

export const ContactsReply = z.object({
  matches: z.array(ContactMatch),
  /** What the stored address book now holds (distinct keyed hashes). */
  stored: z.object({ numbers: z.number().int(), emails: z.number().int() }),
  /** Numbers and emails in the request that could not be read and were dropped. */
  ignored: z.number().int(),
});

export const ContactsDeleteReply = z.object({ deleted: z.literal(true) });

const common: ErrorCode[] = ['UNAUTHENTICATED', 'TOKEN_INVALID', 'TOKEN_EXPIRED', 'SESSION_REVOKED', 'BAD_REQUEST', 'VALIDATION_FAILED', 'PAYLOAD_TOO_LARGE'];

export const contactsRoutes = {
  contactsPut: httpRoute({
    method: 'PUT', path: '/v1/contacts', auth: true, request: ContactsPutRequest, response: ContactsReply,
    errors: [...common, 'DISCOVERY_QUOTA_EXCEEDED', 'RATE_LIMITED', 'ACCOUNT_DELETED'],
    description: 'Replaces the whole address book; replies with the entries that are users.',
  }),
  contactsPatch: httpRoute({
    method: 'PATCH', path: '/v1/contacts', auth: true, request: ContactsPatchRequest, response: ContactsReply,
    errors: [...common, 'DISCOVERY_QUOTA_EXCEEDED', 'RATE_LIMITED', 'ACCOUNT_DELETED'],
    description: 'Removes entries (by client id, number or email), then adds entries; replies with the added entries that are users.',
  }),
  contactsDelete: httpRoute({
    method: 'DELETE', path: '/v1/contacts', auth: true, request: undefined, response: ContactsDeleteReply,
    errors: [...common.slice(0, 4), 'RATE_LIMITED'],
    description: 'Deletes the address book with its reverse-index entries.',
  }),
};

export type ContactEntry = z.infer<typeof ContactEntry>;
export type ContactsReply = z.infer<typeof ContactsReply>;
