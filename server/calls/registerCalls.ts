import type { HubContext } from '../HubContext.js';
import { registerIceRoutes } from '../http/ice.js';
import { CallService } from './CallService.js';

/**
 * Wires 1:1 calls into the hub: socket requests, connect/disconnect
 * reactions (resume, late ringing, reconnect grace), account erasure, the
 * ICE-servers route, and `ctx.calls` for other subsystems.
 */
export function registerCalls(ctx: HubContext): CallService {
  const calls = new CallService(ctx);
  ctx.calls = calls;
  const g = ctx.gateway;
  g.handle('call:invite', (s, p) => calls.invite(s, p));
  g.handle('call:accept', (s, p) => calls.accept(s, p));
  g.handle('call:reject', (s, p) => calls.reject(s, p));
  g.handle('call:cancel', (s, p) => calls.cancel(s, p));
  g.handle('call:hangup', (s, p) => calls.hangup(s, p));
  g.handle('call:signal', (s, p) => calls.signal(s, p));
  g.handle('call:media-state', (s, p) => calls.mediaState(s, p));
  g.handle('call:report', (s, p) => calls.report(s, p));
  g.handle('call:list', (s) => calls.list(s));
  g.handle('call:state', (s, p) => calls.state(s, p));
  g.onConnect((s) => calls.onConnect(s));
  g.onDisconnect((s) => calls.onDisconnect(s));
  ctx.events.on('user:deleted', ({ userId }) => calls.onUserDeleted(userId));
  registerIceRoutes(ctx, calls.iceServers);
  calls.start();
  ctx.onClose(() => calls.close());
  return calls;
}
