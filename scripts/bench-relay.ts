/**
 * Forwarding capacity of ONE mediasoup worker as built here (our
 * mediasoup-worker binary, created the way relay/WorkerPool.ts creates it, a
 * router with the relay's room codecs and an ActiveSpeakerObserver like
 * relay/Room.ts), carrying a simulated N-party audio room. Writes the figures
 * to docs/benchmarks.md between `<!-- relay:begin -->` and `<!-- relay:end -->`.
 *
 *   node --import tsx scripts/bench-relay.ts [--steps 4,8,16,24] [--push 32,40,48,56,64,80,96]
 *     [--seconds 3] [--budget 100] [--no-write]
 *
 * This measures the worker's forwarding, NOT the relay node: the relay node
 * never creates PlainTransports (its RecordingGuard closes any it did not
 * permit, and it permits only WebRtcTransports and its own pipes), and its
 * admission path (control channel, ICE/DTLS, SRTP in) is not exercised. Here,
 * in this standalone process with no RecordingGuard installed,
 * PlainTransports on 127.0.0.1 serve only as synthetic RTP sources and sinks:
 * - each participant sends Opus-like RTP (20 ms ptime, 100-byte payload,
 *   ssrc-audio-level extension) from a UDP socket of this process into its
 *   own comedia PlainTransport, where one producer takes it;
 * - each participant has a receiving PlainTransport with a consumer of every
 *   other participant's producer, sending to one UDP sink socket: the room
 *   forwards 50·N·(N−1) packets/s.
 *
 * Series:
 * - "read": sinks are sockets of this process that read and count every RTP
 *   packet (N from --steps);
 * - "kernel": sinks are sockets of a child process that never reads them (its
 *   event loop is parked), so the kernel drops and counts every datagram
 *   (/proc/net/udp `drops`): the sinks cost no user-space CPU and the worker
 *   can be pushed further (N from --push), with plain RTP out and again with
 *   SRTP out (AES_CM_128_HMAC_SHA1_80, as WebRTC egress is encrypted).
 *   A series stops once the worker's CPU passes 90 % or loss passes 1 %.
 *
 * Packets in and out come from producer/consumer getStats() totals (read
 * once the senders stop), packets at the sinks from the sinks, the worker's CPU from
 * getResourceUsage() deltas, this process's from process.cpuUsage() and the
 * rest of the machine's from /proc/stat.
 */
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import type { ChildProcess } from 'node:child_process';
import * as mediasoup from 'mediasoup';
import type { types as ms } from 'mediasoup';
import { relayEnvSchema } from '../relay/config.js';
import { ROOM_MEDIA_CODECS } from '../relay/Room.js';
import { spawnTracked, stopProcess, waitForLine } from '../test/support/processes.js';
import { fmt, machineCpuSeconds, machineFacts, say, today, waitForQuiet, writeBenchSection } from './lib/bench.js';

const { values: args } = parseArgs({
  options: {
    steps: { type: 'string', default: '4,8,16,24' },
    push: { type: 'string', default: '32,40,48,56,64,80,96' },
    seconds: { type: 'string', default: '3' },
    budget: { type: 'string', default: '100' },
    'no-write': { type: 'boolean', default: false },
  },
});
const list = (s: string) => s.split(',').map(Number).filter((n) => Number.isInteger(n) && n >= 2 && n <= 160);
const STEPS = list(args.steps);
const PUSH = list(args.push);
const SECONDS = Math.max(1, Math.min(20, Number(args.seconds)));
/** Seconds after which no further step starts. */
const BUDGET_S = Math.max(10, Math.min(300, Number(args.budget)));
const RUN_LIMIT_MS = (BUDGET_S + 120) * 1000;
const WARMUP_MS = 1000;
const PTIME_MS = 20;
const PAYLOAD_BYTES = 100;
const OPUS_PT = 100;
const AUDIO_LEVEL_EXT_ID = 1;
const SATURATED_CPU = 0.9;
const SATURATED_LOSS = 0.01;
/** Other processes using more than this many cores during a step make its result suspect. */
const DISTURBED_CORES = 0.3;

type SinkMode = 'read' | 'kernel';

interface StepResult {
  n: number;
  sinks: SinkMode;
  srtp: boolean;
  seconds: number;
  sentPps: number;
  inPps: number;
  outPps: number;
  sinkPps: number;
  /** Datagrams the kernel dropped at sinks this process reads (it did not read fast enough). */
  sinkDropPps: number;
  workerCpu: number;
  benchCpu: number;
  others: number;
  maxLagMs: number;
  setupSeconds: number;
  /** Over the whole step, after the senders stopped and the last packets drained: 1 − packets at the sinks ÷ (packets sent × (N−1)). */
  loss: number;
  /** Of that: packets the worker never took in (1 − producer packets ÷ sent) ... */
  lossIn: number;
  /** ... and packets it took in but did not send to every consumer (1 − consumer packets ÷ (producer packets × (N−1))). */
  lossForward: number;
}

/** One RTP packet: 12-byte header, one-byte-header extension with ssrc-audio-level, Opus-like payload. */
function rtpPacket(ssrc: number, seq: number, timestamp: number, level: number): Buffer {
  const b = Buffer.allocUnsafe(12 + 8 + PAYLOAD_BYTES);
  b[0] = 0x90; // V=2, X=1
  b[1] = OPUS_PT;
  b.writeUInt16BE(seq & 0xffff, 2);
  b.writeUInt32BE(timestamp >>> 0, 4);
  b.writeUInt32BE(ssrc >>> 0, 8);
  b.writeUInt16BE(0xbede, 12); // RFC 8285 one-byte header extensions
  b.writeUInt16BE(1, 14); // one 32-bit word
  b[16] = (AUDIO_LEVEL_EXT_ID << 4) | 0; // id, length - 1
  b[17] = 0x80 | level; // voice activity + level (-dBov)
  b[18] = 0;
  b[19] = 0;
  b[20] = 0x78; // Opus TOC byte: hybrid fullband, one 20 ms frame
  b.fill(seq & 0xff, 21);
  return b;
}

/** Local UDP port -> kernel drop counter, for the given ports, from /proc/net/udp. */
function udpDrops(ports: Set<number>): number {
  let drops = 0;
  for (const line of readFileSync('/proc/net/udp', 'utf8').split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/);
    if (cols.length < 13) continue;
    const port = parseInt(cols[1]!.split(':')[1]!, 16);
    if (ports.has(port)) drops += Number(cols[cols.length - 1]);
  }
  return drops;
}

/** Sum of fn over items, at most 32 requests to the worker at a time. */
async function sumInBatches<T>(items: T[], fn: (item: T) => Promise<number>): Promise<number> {
  let total = 0;
  for (let i = 0; i < items.length; i += 32) total += (await Promise.all(items.slice(i, i + 32).map(fn))).reduce((a, b) => a + b, 0);
  return total;
}

const bind = (s: UdpSocket) => new Promise<void>((resolve) => s.bind(0, '127.0.0.1', () => resolve()));

/** Sink sockets in a child process whose event loop is parked: nothing reads them, the kernel counts every datagram as a drop. */
async function kernelSinks(n: number): Promise<{ ports: number[]; child: ChildProcess }> {
  const code = [
    "import { createSocket } from 'node:dgram';",
    `const ports = [];`,
    `for (let i = 0; i < ${n}; i++) {`,
    "  const s = createSocket({ type: 'udp4', recvBufferSize: 1024 });",
    "  await new Promise((r) => s.bind(0, '127.0.0.1', r));",
    '  ports.push(s.address().port);',
    '}',
    "process.stdout.write('SINK_PORTS ' + JSON.stringify(ports) + '\\n');",
    '// Park the event loop: the sockets stay open and unread until the parent ends this process (bounded anyway).',
    'Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 180000);',
    'process.exit(0);',
  ].join('\n');
  const child = spawnTracked(process.execPath, ['--input-type=module', '-e', code]);
  const line = await waitForLine(child, /SINK_PORTS (\[[\d,]*\])/, 15_000);
  return { ports: JSON.parse(line[1]!) as number[], child };
}

async function usage(worker: ms.Worker): Promise<{ wall: number; worker: number; bench: number; machine: number }> {
  const u = await worker.getResourceUsage();
  const b = process.cpuUsage();
  return { wall: performance.now() / 1000, worker: (u.ru_utime + u.ru_stime) / 1000, bench: (b.user + b.system) / 1e6, machine: machineCpuSeconds().busy };
}

async function runStep(worker: ms.Worker, router: ms.Router, n: number, sinks: SinkMode, srtp: boolean): Promise<StepResult> {
  const setupStart = performance.now();
  const speaker = await router.createActiveSpeakerObserver({ interval: 300 });
  const transports: ms.PlainTransport[] = [];
  const sockets: UdpSocket[] = [];
  let child: ChildProcess | undefined;
  let sending: NodeJS.Timeout | undefined;
  try {
    // Sinks.
    let sinkPorts: number[];
    let readCount = 0;
    if (sinks === 'kernel') {
      const k = await kernelSinks(n);
      child = k.child;
      sinkPorts = k.ports;
    } else {
      sinkPorts = [];
      for (let i = 0; i < n; i++) {
        const s = createSocket({ type: 'udp4', recvBufferSize: 4 * 1024 * 1024 });
        s.on('message', (msg) => {
          // RTP only (RTCP packet types 200-204 share the port: RFC 5761).
          const pt = (msg[1] ?? 0) & 0x7f;
          if (pt < 64 || pt > 95) readCount++;
        });
        await bind(s);
        sockets.push(s);
        sinkPorts.push(s.address().port);
      }
    }
    const sinkPortSet = new Set(sinkPorts);

    // Senders and their producers.
    const producers: ms.Producer[] = [];
    const senders: { socket: UdpSocket; port: number; ssrc: number; seq: number; ts: number; due: number }[] = [];
    for (let i = 0; i < n; i++) {
      const t = await router.createPlainTransport({ listenIp: '127.0.0.1', rtcpMux: true, comedia: true });
      transports.push(t);
      const ssrc = 10_000_000 + i;
      const producer = await t.produce({
        kind: 'audio',
        rtpParameters: {
          codecs: [{ mimeType: 'audio/opus', payloadType: OPUS_PT, clockRate: 48000, channels: 2, parameters: { useinbandfec: 1 } }],
          headerExtensions: [{ uri: 'urn:ietf:params:rtp-hdrext:ssrc-audio-level', id: AUDIO_LEVEL_EXT_ID }],
          encodings: [{ ssrc }],
        },
      });
      producers.push(producer);
      await speaker.addProducer({ producerId: producer.id });
      const socket = createSocket('udp4');
      await bind(socket);
      sockets.push(socket);
      senders.push({ socket, port: t.tuple.localPort, ssrc, seq: randomBytes(2).readUInt16BE(), ts: randomBytes(4).readUInt32BE(), due: 0 });
    }

    // Receivers: one PlainTransport each, consuming everyone else.
    const consumers: ms.Consumer[] = [];
    for (let i = 0; i < n; i++) {
      const t = await router.createPlainTransport({ listenIp: '127.0.0.1', rtcpMux: true, comedia: false, enableSrtp: srtp });
      transports.push(t);
      await t.connect({
        ip: '127.0.0.1',
        port: sinkPorts[i]!,
        ...(srtp ? { srtpParameters: { cryptoSuite: 'AES_CM_128_HMAC_SHA1_80' as const, keyBase64: randomBytes(30).toString('base64') } } : {}),
      });
      consumers.push(...await Promise.all(producers.filter((_, j) => j !== i).map((p) => t.consume({ producerId: p.id, rtpCapabilities: router.rtpCapabilities }))));
    }
    if (transports.some((t) => t.closed)) throw new Error('a PlainTransport was closed at creation (is a RecordingGuard installed in this process?)');
    const setupSeconds = (performance.now() - setupStart) / 1000;

    // Send: participant i's k-th packet is due at start + i·ptime/n + k·ptime, so sends spread over the ptime.
    let sent = 0;
    let maxLagMs = 0;
    const start = performance.now() + 20;
    senders.forEach((s, i) => { s.due = start + (i * PTIME_MS) / n; });
    const tick = () => {
      const now = performance.now();
      for (const s of senders) {
        if (s.due <= now) maxLagMs = Math.max(maxLagMs, now - s.due);
        while (s.due <= now) {
          s.socket.send(rtpPacket(s.ssrc, s.seq++, s.ts, 30 + (s.seq % 40)), s.port, '127.0.0.1');
          s.ts += 960; // 20 ms at 48 kHz
          s.due += PTIME_MS;
          sent++;
        }
      }
    };
    sending = setInterval(tick, 1);
    await new Promise((r) => setTimeout(r, WARMUP_MS));

    maxLagMs = 0;
    const u0 = await usage(worker);
    await new Promise((r) => setTimeout(r, SECONDS * 1000));
    const u1 = await usage(worker);
    clearInterval(sending);
    const sendSeconds = (performance.now() - start) / 1000;
    await new Promise((r) => setTimeout(r, 300));
    // Kernel sinks queue their first datagram or two instead of dropping them: at most 2 per sink are missed.
    const drops = udpDrops(sinkPortSet);
    const atSinks = sinks === 'kernel' ? drops : readCount;
    // Totals once the worker is idle again (stats requests to a saturated worker queue behind the packets), a few at a time.
    const [totalIn, totalOut] = [
      await sumInBatches(producers, async (p) => (await p.getStats()).reduce((a, x) => a + x.packetCount, 0)),
      await sumInBatches(consumers, async (c) => (await c.getStats()).filter((x) => x.type === 'outbound-rtp').reduce((a, x) => a + x.packetCount, 0)),
    ];

    const wall = u1.wall - u0.wall;
    const workerCpu = (u1.worker - u0.worker) / wall;
    const benchCpu = (u1.bench - u0.bench) / wall;
    return {
      n, sinks, srtp, seconds: wall, setupSeconds,
      // Counts over the whole step (a sender that fell behind catches up in a burst, which a window would cut).
      sentPps: sent / sendSeconds,
      inPps: totalIn / sendSeconds,
      outPps: totalOut / sendSeconds,
      sinkPps: atSinks / sendSeconds,
      sinkDropPps: sinks === 'kernel' ? 0 : drops / sendSeconds,
      workerCpu, benchCpu,
      others: Math.max(0, (u1.machine - u0.machine) / wall - workerCpu - benchCpu),
      maxLagMs,
      loss: Math.max(0, 1 - atSinks / (sent * (n - 1))),
      lossIn: Math.max(0, 1 - totalIn / sent),
      lossForward: Math.max(0, 1 - totalOut / (totalIn * (n - 1))),
    };
  } finally {
    clearInterval(sending);
    for (const t of transports) t.close();
    speaker.close();
    for (const s of sockets) s.close();
    if (child) await stopProcess(child, 1000);
  }
}

const loss = (r: StepResult) => r.loss;
const saturated = (r: StepResult) => r.workerCpu >= SATURATED_CPU || loss(r) > SATURATED_LOSS;

async function main(): Promise<void> {
  const watchdog = setTimeout(() => {
    process.stderr.write('bench-relay: run limit reached; stopping\n');
    process.exit(1);
  }, RUN_LIMIT_MS);
  watchdog.unref();
  const began = performance.now();
  const elapsed = () => (performance.now() - began) / 1000;
  // As relay/WorkerPool.ts creates its workers.
  const worker = await mediasoup.createWorker({ logLevel: 'warn' });
  const workerBin = process.env.MEDIASOUP_WORKER_BIN ?? 'node_modules/mediasoup/worker/out/Release/mediasoup-worker';
  const router = await worker.createRouter({ mediaCodecs: ROOM_MEDIA_CODECS });
  const results: StepResult[] = [];
  const own = async () => {
    const u = await usage(worker);
    return u.worker + u.bench;
  };
  const step = async (n: number, sinks: SinkMode, srtp: boolean) => {
    await waitForQuiet(own, 5000);
    let r = await runStep(worker, router, n, sinks, srtp);
    if (saturated(r) && r.others > DISTURBED_CORES) {
      // Other work on the machine may have caused it: once more, after waiting longer for quiet.
      say(`N=${n}: loss ${(100 * loss(r)).toFixed(2)} % / worker CPU ${(100 * r.workerCpu).toFixed(0)} % with ${r.others.toFixed(2)} cores used by other processes; retrying`);
      await waitForQuiet(own, 15_000);
      r = await runStep(worker, router, n, sinks, srtp);
    }
    results.push(r);
    say(`N=${n} ${sinks}${srtp ? ' srtp' : ''}: sent ${fmt(r.sentPps)} in ${fmt(r.inPps)} out ${fmt(r.outPps)} sinks ${fmt(r.sinkPps)} pkts/s (expected ${fmt(50 * n * (n - 1))}); loss ${(100 * loss(r)).toFixed(2)} % (in ${(100 * r.lossIn).toFixed(2)}, fwd ${(100 * r.lossForward).toFixed(2)}); worker CPU ${(100 * r.workerCpu).toFixed(0)} %, bench ${(100 * r.benchCpu).toFixed(0)} %, others ${r.others.toFixed(2)} cores; setup ${r.setupSeconds.toFixed(1)} s, max send lag ${r.maxLagMs.toFixed(1)} ms`);
    return r;
  };
  try {
    say(`worker pid ${worker.pid} (${workerBin}), mediasoup ${mediasoup.version}`);
    for (const n of STEPS) {
      if (elapsed() > BUDGET_S) break;
      if (saturated(await step(n, 'read', false))) break;
    }
    for (const srtp of [false, true]) {
      for (const n of PUSH) {
        if (elapsed() > BUDGET_S) break;
        if (saturated(await step(n, 'kernel', srtp))) break;
      }
    }
  } finally {
    worker.close();
  }
  report(results, workerBin);
}

function report(results: StepResult[], workerBin: string): void {
  const cores = cpus().length;
  const table = [
    '| N | sinks | egress | expected out (50·N·(N−1)) | sent pkts/s | worker in pkts/s | worker out pkts/s | at sinks pkts/s | loss: total (not taken in / not forwarded) | worker CPU | out pkts/s per worker CPU-second | worker µs per packet out | benchmark process CPU | other processes (cores) |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...results.map((r) => {
      const notes = r.sinkDropPps > 0 ? ` (${fmt(r.sinkDropPps)}/s dropped unread)` : '';
      return `| ${r.n} | ${r.sinks} | ${r.srtp ? 'SRTP' : 'RTP'} | ${fmt(50 * r.n * (r.n - 1))} | ${fmt(r.sentPps)} | ${fmt(r.inPps)} | ${fmt(r.outPps)} | ${fmt(r.sinkPps)}${notes} | ${(100 * loss(r)).toFixed(2)} % (${(100 * r.lossIn).toFixed(2)} / ${(100 * r.lossForward).toFixed(2)}) | ${(100 * r.workerCpu).toFixed(0)} % | ${fmt(r.outPps / Math.max(r.workerCpu, 1e-6))} | ${((1e6 * r.workerCpu) / Math.max(r.outPps, 1)).toFixed(2)} | ${(100 * r.benchCpu).toFixed(0)} % | ${r.others.toFixed(2)} |`;
    }),
  ];
  for (const line of table) say(line);
  if (args['no-write']) return;

  const ok = (r: StepResult) => loss(r) <= SATURATED_LOSS;
  const best = (pred: (r: StepResult) => boolean) => results.filter((r) => pred(r) && ok(r)).reduce<StepResult | undefined>((a, r) => (!a || r.outPps > a.outPps ? r : a), undefined);
  const plain = best((r) => r.sinks === 'kernel' && !r.srtp);
  const srtp = best((r) => r.srtp);
  const read = best((r) => r.sinks === 'read');
  const perCore = (r: StepResult) => r.outPps / Math.max(r.workerCpu, 1e-6);
  const describe = (r: StepResult | undefined, what: string) => (r
    ? `${what}, ${fmt(r.outPps)} packets/s out at N = ${r.n} with the worker at ${(100 * r.workerCpu).toFixed(0)} % of a core and ${(100 * loss(r)).toFixed(2)} % loss (≈ ${fmt(perCore(r))} packets/s per worker CPU-second)`
    : `${what}, no step stayed under ${SATURATED_LOSS * 100} % loss`);
  // Worker CPU per packet from the busier steps, where the fixed costs (timers, the observer) weigh least.
  const usPerPacket = (pred: (r: StepResult) => boolean) => {
    const rows = results.filter((r) => pred(r) && ok(r) && r.workerCpu > 0.2);
    return rows.length ? rows.reduce((a, r) => a + (1e6 * r.workerCpu) / r.outPps, 0) / rows.length : undefined;
  };
  const usPlain = usPerPacket((r) => !r.srtp);
  const usSrtp = usPerPacket((r) => r.srtp);
  const benchMax = results.reduce((a, r) => Math.max(a, r.benchCpu), 0);
  const disturbed = results.filter((r) => r.others > DISTURBED_CORES);
  const consumersPerWorker = relayEnvSchema.shape.RELAY_CONSUMERS_PER_WORKER.parse(undefined);
  const reading = [
    `Best steps: ${describe(read, 'with sinks this process reads')}; ${describe(plain, 'with plain RTP out')}; ${describe(srtp, 'with SRTP out')}.`,
    usPlain !== undefined && usSrtp !== undefined
      ? `The worker spends about ${usPlain.toFixed(1)} µs of CPU per forwarded packet with plain RTP out and ${usSrtp.toFixed(1)} µs with SRTP out; Debian's libsrtp2, which our worker links, does its crypto through NSS (ldd shows libnss3), whereas upstream mediasoup builds libsrtp against OpenSSL, which may account for part of the SRTP cost (not measured separately).`
      : '',
    'REFERENCE §6 quotes ~400-500 k packets/s per core for mediasoup routing alone (in-process transports: no sockets, no SRTP) and ~75 k packets/s per busy vCPU for LiveKit\'s audio fan-out (SRTP over real sockets).',
    'Our plain-RTP figure sits below the first because every packet here costs a sendto() on loopback, whose kernel work is charged to the worker.',
    srtp ? `The SRTP rows are the ones to set against LiveKit's: ≈ ${fmt(perCore(srtp))} packets/s per worker CPU-second is ${(perCore(srtp) / 75_000).toFixed(1)}× its figure, but a real room adds SRTP decryption of what participants send (one per packet in, against N−1 encryptions out), transport-cc feedback and real NICs, and LiveKit's figure is for a whole server process.` : '',
    'The per-CPU-second extrapolation only means something for the busier rows: at small N fixed costs (timers, RTCP, the speaker observer) dominate the worker\'s few percent.',
    `The benchmark process (senders, "read" sinks) used at most ${(100 * benchMax).toFixed(0)} % of a core, ${benchMax > 0.8 ? 'so in the steps where it did it may have been the bottleneck rather than the worker' : 'so it was not the bottleneck here; it does share the cores with the worker, and the "kernel" rows take its receive cost away entirely'}.`,
    disturbed.length ? `Other processes used more than ${DISTURBED_CORES} cores during ${disturbed.length} step(s) (last column); those rows are less reliable.` : 'No other process used a noticeable share of the machine during the steps.',
    srtp ? `For sizing: a 16-party audio room (CONFERENCE_MAX_PARTICIPANTS default) forwards 12,000 packets/s, about ${(100 * 12_000 / perCore(srtp)).toFixed(0)} % of one worker with SRTP out by this measure; RELAY_CONSUMERS_PER_WORKER=${consumersPerWorker} audio consumers (${fmt(consumersPerWorker * 50)} packets/s) would use about ${(100 * consumersPerWorker * 50 / perCore(srtp)).toFixed(0)} %, leaving room for video consumers, which carry several times more packets each.` : '',
  ].filter(Boolean).join(' ');
  const section = [
    '<!-- relay:begin -->',
    '## Relay: forwarding capacity of one mediasoup worker',
    '',
    `Written by \`npm run bench:relay\` (scripts/bench-relay.ts) on ${today()}: ${machineFacts()}, mediasoup ${mediasoup.version} with our worker binary (${workerBin}, built against Debian 12's libraries by scripts/build-worker.sh), one worker, loopback only.`,
    '',
    '**What this measures: the worker\'s forwarding, not the relay node.** The script creates a worker as relay/WorkerPool.ts does and a router with the room codecs and an ActiveSpeakerObserver as relay/Room.ts does, then simulates an N-party audio room with',
    'PlainTransports on 127.0.0.1 used **only** as synthetic RTP sources and sinks in the benchmark process (no RecordingGuard is installed there). The relay node itself never creates PlainTransports: its RecordingGuard closes any transport it did not permit and it permits only participants\' WebRtcTransports and its own pipes.',
    'Not exercised: the control channel, ICE and DTLS, SRTP decryption of what participants send, congestion-control feedback (no transport-cc), and anything above one worker.',
    '',
    `Each participant sends Opus-like RTP (20 ms ptime, ${PAYLOAD_BYTES}-byte payload plus ssrc-audio-level: ${12 + 8 + PAYLOAD_BYTES} bytes per packet) from a UDP socket of the benchmark process into its own comedia PlainTransport; every other participant's receiving PlainTransport has a consumer of it and sends to one sink socket, so the room forwards 50·N·(N−1) packets/s.`,
    '"read" sinks are sockets the benchmark process reads and counts (RTP only); "kernel" sinks belong to a child process whose event loop is parked, so the kernel drops and counts every datagram (`drops` in /proc/net/udp; this includes the few RTCP sender reports per second per transport) and no user-space CPU is spent receiving. "SRTP" egress turns on SRTP (AES_CM_128_HMAC_SHA1_80) on the receiving transports, so the worker encrypts every packet it sends, as it does for WebRTC.',
    `Packet rates are totals over the whole step (sending, warm-up included) ÷ its duration: sent by the senders, in/out from producer/consumer getStats() (read after the senders stop: stats requests to a saturated worker queue behind the packets), at the sinks; worker CPU from getResourceUsage() deltas over ${SECONDS} s after ${WARMUP_MS / 1000} s of warm-up, "out pkts/s per worker CPU-second" = out rate ÷ worker CPU share (a linear extrapolation to one busy core). Loss = 1 − packets at the sinks ÷ (packets sent × (N−1)) over the whole step, counted after the senders stop and the last packets drain. A series stops at ${SATURATED_CPU * 100} % worker CPU or ${SATURATED_LOSS * 100} % loss (a step that hits either while other processes use more than ${DISTURBED_CORES} cores is run once more first). Measured, not asserted.`,
    `The ${cores} cores are shared by the worker, the benchmark process (senders, "read" sinks, stats) and anything else running on the machine (last column).`,
    '',
    ...table,
    '',
    `**Reading the figures.** ${reading}`,
    '<!-- relay:end -->',
  ].join('\n');
  writeBenchSection('relay', section);
  say('wrote docs/benchmarks.md (section "Relay")');
}

main().then(() => process.exit(0), (err: unknown) => {
  process.stderr.write(`bench-relay: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
