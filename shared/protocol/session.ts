import { z } from 'zod';
import { notice, request } from './define.js';
import { Empty } from './common.js';

/** Session-level socket events: liveness and the reasons a socket is closed. */
export const SessionCloseReason = z.enum([
  'token_expired',
  'session_revoked',
  'account_deleted',
  'rate_limited',
  'server_shutdown',
]);
export type SessionCloseReason = z.infer<typeof SessionCloseReason>;

export const sessionRequests = {
  'session:ping': request({
    request: Empty,
    response: z.object({ serverTime: z.number() }),
    description: 'Round-trip check; returns the server clock (epoch ms).',
  }),
  'session:refresh': request({
    request: z.object({ accessToken: z.string().min(1).max(4096) }).strict(),
    response: z.object({ expiresAt: z.number() }),
    description: 'Hand a fresh access token to a live socket so it is not closed when the old one expires.',
  }),
};

export const sessionNotices = {
  'session:closing': notice({
    payload: z.object({ reason: SessionCloseReason, message: z.string() }),
    description: 'Sent just before the server disconnects the socket, with a reason the client can act on (refresh and reconnect, sign in again, stop).',
  }),
};
