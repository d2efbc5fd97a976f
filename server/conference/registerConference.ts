import type { CallEndedFact } from '../calls/CallEndedFact.js';
import type { HubContext } from '../HubContext.js';
import { ConferenceService } from './ConferenceService.js';
import { RelayFallback } from './RelayFallback.js';

/**
 * Wires conferences and the P2P -> relay fallback of 1:1 calls into the hub:
 * socket requests, connect/disconnect reactions, account erasure, the
 * fallback hook on ctx.calls, and closing relayed calls' rooms. Needs
 * ctx.relay (registerRelay) and, for the fallback, ctx.calls (registerCalls).
 */
export function registerConference(ctx: HubContext): ConferenceService {
  const relay = ctx.relay;
  if (!relay) throw new Error('registerRelay() must run before registerConference()');
  const conferences = new ConferenceService(ctx, relay);
  const g = ctx.gateway;
  g.handle('conference:create', (s, p) => conferences.create(s, p));
  g.handle('conference:invite', (s, p) => conferences.invite(s, p));
  g.handle('conference:join', (s, p) => conferences.join(s, p));
  g.handle('conference:decline', (s, p) => conferences.decline(s, p));
  g.handle('conference:leave', (s, p) => conferences.leave(s, p));
  g.handle('conference:end', (s, p) => conferences.end(s, p));
  g.handle('conference:mute', (s, p) => conferences.mute(s, p));
  g.handle('conference:remove', (s, p) => conferences.remove(s, p));
  g.handle('conference:state', (s, p) => conferences.state(s, p));
  g.handle('conference:list', (s) => conferences.list(s));
  g.onConnect((s) => conferences.onConnect(s));
  g.onDisconnect((s) => conferences.onDisconnect(s));
  const onUserDeleted = ({ userId }: { userId: string }) => conferences.onUserDeleted(userId);
  ctx.events.on('user:deleted', onUserDeleted);

  const fallback = new RelayFallback(ctx, relay);
  ctx.calls?.setRelayFallback(fallback);
  const onCallEnded = (fact: CallEndedFact) => fallback.onCallEnded(fact);
  ctx.events.on('call:ended', onCallEnded);

  conferences.start();
  ctx.onClose(async () => {
    ctx.events.off('user:deleted', onUserDeleted);
    ctx.events.off('call:ended', onCallEnded);
    await conferences.close();
    await fallback.close();
  });
  return conferences;
}
