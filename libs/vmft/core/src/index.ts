/**
 * @mr/vmft-core — the VMware-FT protocol as a pure, deterministic state
 * machine: one `FtReplica` per node, primary or backup. No I/O, no clock, no
 * Math.random: time arrives as `nowMs` in inputs and as ticks, randomness
 * from the injected `random()`, and everything the node must do comes back as
 * effects.
 *
 * ## Driving it from a shell (vm-node)
 *
 * ```ts
 * const core = new FtReplica({ vmId, nodeId, role: 'primary', machine: new Cpu(program),
 *   random: () => crypto.getRandomValues(new Uint32Array(1))[0]! });
 * function drive(input: FtInput) {
 *   core.step(input);
 *   const fx = core.ready();
 *   if (fx.snapshot) stream.write(encodeFrame(fx.snapshot));          // join: state transfer first
 *   for (const e of fx.entries) stream.write(encodeFrame({ type: 'entry', entry: e }));
 *   if (fx.ack) stream.write(encodeFrame(fx.ack));                     // backup → primary
 *   if (fx.tas) storage.tas(fx.tas.epoch).then((r) => drive({ type: 'tas-result', ...r }));
 *   for (const d of fx.disk) d.op === 'read'
 *       ? storage.read(d).then((data) => drive({ type: 'disk-read-done', reqId: d.reqId, data }))
 *       : storage.write(d).catch(refused => drive({ type: 'disk-refused', reqId: d.reqId, epoch: refused.epoch }));
 *   for (const o of fx.outputs) clients.answer(o.packet);             // the output rule is met
 *   for (const ev of fx.events) telemetry.record(ev);
 *   core.advance();
 * }
 * every tickMs (e.g. 20 ms):  drive({ type: 'tick', nowMs: <host clock, ms> })
 * in a loop that yields:     drive({ type: 'run', nowMs: <host clock, ms> })    // execute slices
 * on client request:  if (core.accepting().ok) drive({ type: 'packet', packet, tag: reqKey }) else 503
 * on log stream open: send core.hello(); on the peer's hello h: drive({ type: 'link-up', epoch: h.epoch, seq: h.seq })
 * on frames:          primary: ack → drive({type:'ack', ...}); backup: entries → drive({type:'entries', entries})
 * on stream close:    drive({ type: 'link-down' })
 * on GET /v1/vms/:id: core.status() (+ guest name, URLs)
 * ```
 *
 * ## The rules it keeps (DESIGN.md "FT VM contracts")
 *
 * 1. The backup never executes past the newest entry's icount; the primary
 *    logs a `progress` entry at the end of a run slice that advanced, and a
 *    heartbeat one every `heartbeatTicks` ticks.
 * 2. Outputs (NIC transmits, disk writes) are tagged with the last log seq
 *    at the time they were produced and released only when the backup has
 *    acknowledged (received) that seq; the primary keeps running meanwhile,
 *    and stalls only at `maxUnackedBytes` / `maxHeldOutputs` /
 *    `maxLagInstructions`.
 * 3. Timer interrupts (from the guest's programmed period and `nowMs`), NIC
 *    packets, disk read completions and clock/random/host-port reads are all
 *    log entries stamped with their exact icount.
 * 4. A backup that hears nothing for `suspectTicks` consumes every entry it
 *    holds, then asks test-and-set for epoch+1 (fx.tas), and only when it
 *    wins turns its devices real (timer, NIC outputs, disk writes; in-flight
 *    disk reads and the guest's written blocks are reissued).
 * 5. Disk writes carry the epoch; a `disk-refused` (newer epoch at storage)
 *    stops the node.
 * 6. A primary whose backup goes silent asks test-and-set for epoch+1 too;
 *    winning, it goes on alone (releasing held outputs); losing, it stops.
 * 7. `join` on a live primary without a backup yields a snapshot frame at
 *    icount N after seq S; the log continues at S+1 while the primary runs.
 *
 * Shell notes:
 * - Open the log stream only once the primary is live (`core.live`); a
 *   primary ignores `link-up` before, a backup ignores an epoch-0 hello.
 * - A backup that hears a hello from a NEWER epoch stops: the primary went on
 *   alone without it, and only a new `--join` can make it a backup again.
 * - Outputs released after a failover can carry NIC tags assigned by the
 *   previous primary (the guest answers requests that were in the log): give
 *   client tags that cannot collide across nodes (e.g. start at a random u32).
 * - A joiner whose stream breaks before the snapshot arrived gets a fresh
 *   snapshot when it reconnects (its hello names a seq below the snapshot's);
 *   if it stays away `transferTicks`, it stops and the primary goes on alone
 *   through test-and-set.
 *
 * - A primary is `live` only while it may not have been deposed: a backup
 *   silent for the suspicion window in host time (feed `ticks` = tick periods
 *   elapsed, so a stopped or starved process counts its stall) makes it not
 *   live until the backup acks an entry created after the silence, or
 *   test-and-set confirms it (then it goes on alone) or stops it.
 * - A joiner and its primary suspect each other only after `transferTicks`
 *   (the bounded state-transfer window), not `suspectTicks`.
 *
 * Acks mean "received and buffered every entry up to seq" (VMware FT acks on
 * receipt). Outcomes are data: a backup replay that disagrees with the log
 * stops the replica (role 'stopped', reason "diverged: …"): rebuild it by a
 * join. A throw from `step` means a broken invariant: the shell must stop
 * serving (fail-stop). FT_ERR_DIVERGENCE remains for callers that want to
 * raise a divergence they detect themselves.
 */
export { FtReplica } from './replica.ts';
export { validateConfig, DEFAULTS, FT_ERR_BAD_CONFIG, FT_ERR_DIVERGENCE, FT_ERR_BAD_SNAPSHOT_ENVELOPE } from './config.ts';
export { DEVICES } from './machine.ts';
export { PhiDetector, type DetectorConfig } from './detector.ts';
export type { Machine, DeviceHost, DiskRequest, ExitReason } from './machine.ts';
export type { FtConfig, ResolvedConfig, FtInput, FtReady, FtEvent, FtStatus, Output, DiskOp, Accepting, StartRole } from './types.ts';
export { encodeEnvelope, decodeEnvelope, type CoreSnapshotHeader } from './snapshot.ts';
