import { z } from 'zod';
import type { HubContext } from '../HubContext.js';
import { requireAdmin } from '../http/adminAuth.js';
import { parse } from '../http/errors.js';
import { AppError } from '../../shared/protocol/errors.js';
import { MediaGateway } from './MediaGateway.js';
import { RelayDirectory } from './RelayDirectory.js';
import { RelayService } from './RelayService.js';
import { RoomMembership } from './RoomMembership.js';

/** What other subsystems use: `ctx.relay` once registerRelay(ctx) ran. */
export interface RelayServices {
  /** Rooms on relay nodes: openRoom, request, closeRoom, notices as events. */
  service: RelayService;
  /** Which devices may use a room's media. */
  membership: RoomMembership;
  /** Client media signaling; removePeer / closeRoom. */
  media: MediaGateway;
}

const NodeParams = z.object({ nodeId: z.string().regex(/^[A-Za-z0-9_-]{1,40}$/) });

/**
 * Wires the relay subsystem into the hub: the directory and control links,
 * client media signaling, a readiness check, and operator endpoints.
 * Sets `ctx.relay`.
 */
export function registerRelay(ctx: HubContext): RelayServices {
  const { config } = ctx;
  const log = ctx.log.child({ sub: 'relay' });
  const directory = new RelayDirectory({
    redis: ctx.redis,
    log,
    policy: { maxLoad: config.RELAY_MAX_LOAD, roomCost: config.RELAY_PLACEMENT_ROOM_COST },
    placementWindowMs: config.RELAY_PLACEMENT_WINDOW_MS,
    roomTtlS: config.RELAY_ROOM_TTL_S,
  });
  const service = new RelayService({
    directory,
    log,
    hubId: ctx.hubId,
    secret: config.RELAY_SECRET,
    requestTimeoutMs: config.RELAY_REQUEST_TIMEOUT_MS,
    refreshMs: config.RELAY_DIRECTORY_REFRESH_MS,
  });
  const membership = new RoomMembership(ctx.redis, config.RELAY_ROOM_TTL_S);
  const media = new MediaGateway(ctx, service, membership, { disconnectGraceMs: config.CALL_RECONNECT_GRACE_S * 1000 });
  service.start();
  ctx.onClose(async () => {
    media.close();
    await service.close();
  });

  ctx.healthChecks.set('relay', async () => {
    const serving = (await service.nodes()).filter((n) => n.state === 'serving');
    if (serving.length === 0 && config.RELAY_REQUIRED) throw new Error('no relay node is serving');
    return `${serving.length} serving relay node(s)`;
  });

  // Operator endpoints.
  ctx.app.get('/admin/relays', async (request) => {
    requireAdmin(ctx, request);
    const nodes = await service.nodes();
    return {
      ok: true,
      nodes: nodes.map((n) => ({
        nodeId: n.nodeId,
        state: n.state,
        load: n.load,
        reportedAt: n.reportedAt,
        connected: service.connectedNodes.includes(n.nodeId),
        counts: n.counts,
        workers: n.workers,
      })),
    };
  });
  const setDrain = (draining: boolean) => async (request: Parameters<typeof requireAdmin>[1]) => {
    requireAdmin(ctx, request);
    const { nodeId } = parse(NodeParams, request.params);
    if (!(await directory.node(nodeId))) throw new AppError('NOT_FOUND', 'No such relay node');
    const state = await service.drain(nodeId, draining);
    log.info({ nodeId, state }, 'relay node drain changed by operator');
    return { ok: true, nodeId, state };
  };
  ctx.app.post('/admin/relays/:nodeId/drain', setDrain(true));
  ctx.app.post('/admin/relays/:nodeId/undrain', setDrain(false));

  const services: RelayServices = { service, membership, media };
  ctx.relay = services;
  return services;
}
