import { z } from 'zod';

/** Identifiers minted by the server: URL-safe, bounded. */
export const Id = z.string().min(1).max(64).regex(/^[A-Za-z0-9_-]+$/, 'must be an id');
export const UserId = Id;
export const CallId = Id;
export const RoomId = Id;
export const DeviceId = z.string().min(1).max(64).regex(/^[A-Za-z0-9_.:-]+$/, 'must be a device id');

/** A phone number as typed by a user; parsed and normalised by the server. */
export const PhoneInput = z.string().min(3).max(32);
/** E.164, as the server hands it out. */
export const E164 = z.string().regex(/^\+[1-9]\d{6,14}$/);

export const DisplayName = z.string().trim().min(1).max(64);
export const Platform = z.enum(['ios', 'android', 'web', 'desktop']);

export const Empty = z.object({}).strict();
