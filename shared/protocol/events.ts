/**
 * The whole socket protocol, assembled from one file per domain. Server,
 * relay control, SDK and docs all derive from these maps.
 */
import type { ClientEventsOf, ServerEventsOf } from './define.js';
import { sessionNotices, sessionRequests } from './session.js';
import { contactsNotices, contactsRequests } from './contacts.js';
import { callsNotices, callsRequests } from './calls.js';
import { mediaNotices, mediaRequests } from './media.js';
import { conferenceNotices, conferenceRequests } from './conference.js';

export const clientRequests = {
  ...sessionRequests,
  ...contactsRequests,
  ...callsRequests,
  ...mediaRequests,
  ...conferenceRequests,
};

export const serverNotices = {
  ...sessionNotices,
  ...contactsNotices,
  ...callsNotices,
  ...mediaNotices,
  ...conferenceNotices,
};

export type ClientRequests = typeof clientRequests;
export type ServerNotices = typeof serverNotices;
export type ClientRequestName = keyof ClientRequests;
export type ServerNoticeName = keyof ServerNotices;

/** Socket.IO typing: `Server<ClientToServerEvents, ServerToClientEvents>`. */
export type ClientToServerEvents = ClientEventsOf<ClientRequests>;
export type ServerToClientEvents = ServerEventsOf<ServerNotices>;
