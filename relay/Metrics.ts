import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { RelayNodeReport } from '../shared/protocol/relayControl.js';

/**
 * The node's Prometheus metrics (served at /metrics). Labels are bounded:
 * worker index, request name, outcome, refusal kind. Never per user, room or
 * peer (unbounded label sets leak memory in Prometheus and in this process).
 */
export class Metrics {
  readonly registry = new Registry();
  readonly #rooms: Gauge;
  readonly #peers: Gauge;
  readonly #objects: Gauge<'object' | 'worker'>;
  readonly #cpu: Gauge<'worker'>;
  readonly #bitrate: Gauge<'direction' | 'worker'>;
  readonly #load: Gauge;
  readonly #draining: Gauge;
  readonly #requests: Counter<'request' | 'outcome'>;
  readonly #refusals: Counter<'what' | 'type'>;
  readonly #workerDeaths: Counter;
  readonly #roomsLost: Counter;
  readonly #hubConnections: Gauge;
  readonly #authFailures: Counter;

  constructor(nodeId: string) {
    const registers = [this.registry];
    this.registry.setDefaultLabels({ node: nodeId });
    collectDefaultMetrics({ register: this.registry, prefix: 'relay_process_' });
    this.#rooms = new Gauge({ name: 'relay_rooms', help: 'Rooms on this node', registers });
    this.#peers = new Gauge({ name: 'relay_peers', help: 'Participants on this node', registers });
    this.#objects = new Gauge({ name: 'relay_mediasoup_objects', help: 'mediasoup routers, transports, producers and consumers per worker', labelNames: ['object', 'worker'], registers });
    this.#cpu = new Gauge({ name: 'relay_worker_cpu_ratio', help: 'Share of one core used by a worker over the last report interval', labelNames: ['worker'], registers });
    this.#bitrate = new Gauge({ name: 'relay_worker_bitrate_bps', help: 'Participant media bitrate through a worker', labelNames: ['direction', 'worker'], registers });
    this.#load = new Gauge({ name: 'relay_load_ratio', help: 'Load figure used for room placement (0..1)', registers });
    this.#draining = new Gauge({ name: 'relay_draining', help: '1 while the node drains', registers });
    this.#requests = new Counter({ name: 'relay_control_requests_total', help: 'Control requests from hubs by outcome (ok or error code)', labelNames: ['request', 'outcome'], registers });
    this.#refusals = new Counter({ name: 'relay_recording_guard_refusals_total', help: 'Transports, consumers or data channels the recording guard closed', labelNames: ['what', 'type'], registers });
    this.#workerDeaths = new Counter({ name: 'relay_worker_deaths_total', help: 'Worker processes that died and were replaced', registers });
    this.#roomsLost = new Counter({ name: 'relay_rooms_lost_total', help: 'Rooms lost with a dead worker or at shutdown', registers });
    this.#hubConnections = new Gauge({ name: 'relay_control_connections', help: 'Hubs connected to the control channel', registers });
    this.#authFailures = new Counter({ name: 'relay_control_auth_failures_total', help: 'Control connections refused for a wrong secret', registers });
  }

  observeReport(report: RelayNodeReport): void {
    this.#rooms.set(report.counts.rooms);
    this.#peers.set(report.counts.peers);
    this.#load.set(report.load);
    this.#draining.set(report.state === 'draining' ? 1 : 0);
    this.#objects.reset();
    this.#cpu.reset();
    this.#bitrate.reset();
    for (const w of report.workers) {
      const worker = String(w.index);
      for (const object of ['routers', 'transports', 'producers', 'consumers'] as const) this.#objects.set({ object, worker }, w[object]);
      this.#cpu.set({ worker }, w.cpu);
      this.#bitrate.set({ direction: 'in', worker }, w.bitrateIn);
      this.#bitrate.set({ direction: 'out', worker }, w.bitrateOut);
    }
  }

  request(name: string, outcome: string): void {
    this.#requests.inc({ request: name, outcome });
  }

  refusal(what: string, type: string): void {
    this.#refusals.inc({ what, type });
  }

  workerDied(): void {
    this.#workerDeaths.inc();
  }

  roomsLost(n: number): void {
    this.#roomsLost.inc(n);
  }

  hubConnections(n: number): void {
    this.#hubConnections.set(n);
  }

  authFailure(): void {
    this.#authFailures.inc();
  }
}
