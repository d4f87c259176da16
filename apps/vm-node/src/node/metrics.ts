import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { zeroCounter } from '@mr/observability';
import type { FtStatus } from '@mr/vmft-core';

/** Log entry kinds (the codec's), for zero-initialised counters. */
const ENTRY_KINDS = ['interrupt', 'nic', 'disk', 'clock', 'random', 'progress', 'port'] as const;
const OPS = ['get', 'put', 'incr', 'append'] as const;

/**
 * Invariant monitors of a VM node: counters that must stay 0. Each counts a
 * breach the node itself detected, and says in its name whether the breach
 * happened or was detected and refused:
 * - `output-released-before-ack` (happened): an output went to a client while
 *   the node had a backup and the backup had not acknowledged the log entry
 *   the output depends on (the output rule, DESIGN.md rule 2);
 * - `state-hash-mismatch` (happened): the backup's machine state hash at a
 *   checkpoint differs from the primary's at the same log seq and instruction
 *   count (the replicas diverged).
 */
export const NODE_INVARIANTS = ['output-released-before-ack', 'state-hash-mismatch'] as const;
export type NodeInvariant = (typeof NODE_INVARIANTS)[number];

/** What protection is judged from (FtReplica's role, live and link()). */
export interface Protection {
  role: FtStatus['role'];
  live: boolean;
  peer: FtStatus['peer']['state'];
  acked: number;
}

/** Whether the VM is protected by this node: it is the live primary and its backup follows it (acknowledged the log). */
export function isProtected(s: Protection): boolean {
  return s.role === 'primary' && s.live && s.peer === 'connected' && s.acked > 0;
}

/**
 * Whether this node counts time unprotected: a primary (live or not yet) that
 * has no backup following it, or a backup whose primary went silent (the
 * failover in progress). A fresh backup no primary has streamed to yet, a
 * joining node and a stopped node count nothing.
 */
export function countsUnprotected(s: Protection): boolean {
  if (s.role === 'primary') return !isProtected(s);
  return s.role === 'backup' && (s.peer === 'suspected' || s.peer === 'lost');
}

/**
 * The FT node's own metrics (names are what deploy/ dashboards and alerts
 * query). The registry is the node's own, whose default labels carry
 * `node` and `vm` (server.ts), so every series names the VM it belongs to.
 * Every labelled counter starts at 0 for each label value it can take.
 */
export function nodeMetrics(
  registry: Registry,
  status: () => FtStatus,
  protection: () => Protection,
  lag: () => { instructions: number; replayPerMs: number },
  suspicion: () => { windowMs: number } | undefined,
) {
  const registers = [registry];
  const m = {
    logBytes: new Counter({ name: 'ft_log_bytes_total', help: 'Log bytes sent to the backup (primary) or received from the primary (backup)', labelNames: ['direction'] as const, registers }),
    logEntries: new Counter({ name: 'ft_log_entries_total', help: 'Log entries sent (primary) or received (backup), by kind', labelNames: ['direction', 'kind'] as const, registers }),
    failovers: new Counter({
      name: 'ft_failovers_total',
      help: 'Times this node went live after losing its peer (takeover: the backup took over; alone: the primary went on without its backup)',
      labelNames: ['kind'] as const,
      registers,
    }),
    requests: new Counter({ name: 'ft_client_requests_total', help: 'Client requests by outcome', labelNames: ['op', 'outcome'] as const, registers }),
    requestSeconds: new Histogram({
      name: 'ft_client_request_duration_seconds',
      help: 'Client request time from receipt to answer (output rule included)',
      labelNames: ['op'] as const,
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    }),
    holdSeconds: new Histogram({
      name: 'ft_output_hold_seconds',
      help: 'Time an output waited for the backup acknowledgement (output rule)',
      buckets: [0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1],
      registers,
    }),
    released: new Counter({ name: 'ft_outputs_released_total', help: 'Outputs released to clients', registers }),
    streams: new Counter({ name: 'ft_log_streams_total', help: 'Log streams opened (reconnects included)', registers }),
    refused: new Counter({
      name: 'ft_peer_refused_total',
      help: 'Peer requests refused: log streams from a node that does not hold the epoch at storage, a second stream over the live one, joins from URLs not configured',
      labelNames: ['what'] as const,
      registers,
    }),
    unprotectedSeconds: new Counter({
      name: 'ft_unprotected_seconds_total',
      help: 'Seconds this node ran the VM (or was taking it over) without a backup following it; take max by (vm) across nodes',
      registers,
    }),
    invariants: new Counter({
      name: 'ft_invariant_violations_total',
      help: 'Invariant monitors, must stay 0: breaches this node detected (output-released-before-ack, state-hash-mismatch: both happened)',
      labelNames: ['invariant'] as const,
      registers,
    }),
    gauges: [
      new Gauge({ name: 'ft_backup_lag_instructions', help: 'Instructions the backup trails the primary by', registers, collect() { this.set(status().peer.lagInstructions); } }),
      new Gauge({
        name: 'ft_lag_limit_instructions',
        help: 'Primary: the lag limit (the backup may trail by this many instructions before the primary waits), sized from the backup\'s measured replay speed',
        registers,
        collect() { this.set(lag().instructions); },
      }),
      new Gauge({ name: 'ft_backup_replay_instructions_per_second', help: 'Primary: the backup\'s replay speed as measured from its acks (0 until measured)', registers, collect() { this.set(Math.round(lag().replayPerMs * 1000)); } }),
      new Gauge({
        name: 'ft_suspicion_window_seconds',
        help: 'Silence from the peer after which it is suspected now (the adaptive detector\'s window, beyond the --suspect-ticks floor)',
        registers,
        collect() { this.set((suspicion()?.windowMs ?? 0) / 1000); },
      }),
      new Gauge({ name: 'ft_outputs_held', help: 'Outputs waiting for the backup acknowledgement', registers, collect() { this.set(status().outputs.held); } }),
      new Gauge({ name: 'ft_instructions', help: 'Instructions the VM has executed (instruction count)', registers, collect() { this.set(status().icount); } }),
      new Gauge({ name: 'ft_epoch', help: 'Epoch this node is in', registers, collect() { this.set(status().epoch); } }),
      new Gauge({ name: 'ft_live', help: '1 when this node is the live primary', registers, collect() { this.set(status().live ? 1 : 0); } }),
      new Gauge({
        name: 'ft_protected',
        help: '1 when this node is the live primary and its backup follows it (the VM survives this node\'s death); the VM is protected when max by (vm) is 1',
        registers,
        collect() { this.set(isProtected(protection()) ? 1 : 0); },
      }),
      new Gauge({ name: 'ft_log_unacked_bytes', help: 'Log bytes not yet acknowledged (primary) or not yet consumed (backup)', registers, collect() { this.set(status().log.unackedBytes); } }),
      new Gauge({
        name: 'ft_log_seq',
        help: 'Log sequence numbers: sent/received and acked/consumed',
        labelNames: ['which'] as const,
        registers,
        collect() {
          const s = status();
          this.set({ which: 'sent' }, s.log.sent);
          this.set({ which: 'acked' }, s.log.acked);
        },
      }),
      new Gauge({
        name: 'ft_role',
        help: '1 for the role this node is in',
        labelNames: ['role'] as const,
        registers,
        collect() {
          const r = status().role;
          for (const x of ['primary', 'backup', 'joining', 'stopped']) this.set({ role: x }, x === r ? 1 : 0);
        },
      }),
    ],
  };
  zeroCounter(m.logBytes, { direction: ['sent', 'received'] });
  zeroCounter(m.logEntries, { direction: ['sent', 'received'], kind: ENTRY_KINDS });
  zeroCounter(m.failovers, { kind: ['takeover', 'alone'] });
  zeroCounter(m.requests, { op: OPS, outcome: ['ok', 'not-live', 'error'] });
  zeroCounter(m.refused, { what: ['join', 'stream-not-holder', 'stream-busy'] });
  zeroCounter(m.invariants, { invariant: NODE_INVARIANTS });
  return m;
}
export type NodeMetrics = ReturnType<typeof nodeMetrics>;
