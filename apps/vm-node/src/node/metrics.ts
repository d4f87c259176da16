import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { FtStatus } from '@mr/vmft-core';

/** The FT node's own metrics (names are what deploy/ dashboards query). */
export function nodeMetrics(registry: Registry, status: () => FtStatus) {
  const registers = [registry];
  return {
    logBytes: new Counter({ name: 'ft_log_bytes_total', help: 'Log bytes sent to the backup (primary) or received from the primary (backup)', labelNames: ['direction'] as const, registers }),
    logEntries: new Counter({ name: 'ft_log_entries_total', help: 'Log entries sent (primary) or received (backup), by kind', labelNames: ['direction', 'kind'] as const, registers }),
    failovers: new Counter({ name: 'ft_failovers_total', help: 'Times this node went live after losing its peer (backup took over, or primary went on alone)', labelNames: ['kind'] as const, registers }),
    requests: new Counter({ name: 'ft_client_requests_total', help: 'Client requests by outcome', labelNames: ['op', 'outcome'] as const, registers }),
    requestSeconds: new Histogram({ name: 'ft_client_request_duration_seconds', help: 'Client request time from receipt to answer (output rule included)', labelNames: ['op'] as const, buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers }),
    holdSeconds: new Histogram({ name: 'ft_output_hold_seconds', help: 'Time an output waited for the backup acknowledgement (output rule)', buckets: [0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1], registers }),
    released: new Counter({ name: 'ft_outputs_released_total', help: 'Outputs released to clients', registers }),
    streams: new Counter({ name: 'ft_log_streams_total', help: 'Log streams opened (reconnects included)', registers }),
    refused: new Counter({ name: 'ft_peer_refused_total', help: 'Peer requests refused: log streams from a node that does not hold the epoch at storage, a second stream over the live one, joins from URLs not configured', labelNames: ['what'] as const, registers }),
    gauges: [
      new Gauge({ name: 'ft_backup_lag_instructions', help: 'Instructions the backup trails the primary by', registers, collect() { this.set(status().peer.lagInstructions); } }),
      new Gauge({ name: 'ft_outputs_held', help: 'Outputs waiting for the backup acknowledgement', registers, collect() { this.set(status().outputs.held); } }),
      new Gauge({ name: 'ft_instructions', help: 'Instructions the VM has executed (instruction count)', registers, collect() { this.set(status().icount); } }),
      new Gauge({ name: 'ft_epoch', help: 'Epoch this node is in', registers, collect() { this.set(status().epoch); } }),
      new Gauge({ name: 'ft_live', help: '1 when this node is the live primary', registers, collect() { this.set(status().live ? 1 : 0); } }),
      new Gauge({ name: 'ft_log_unacked_bytes', help: 'Log bytes not yet acknowledged (primary) or not yet consumed (backup)', registers, collect() { this.set(status().log.unackedBytes); } }),
      new Gauge({ name: 'ft_log_seq', help: 'Log sequence numbers: sent/received and acked/consumed', labelNames: ['which'] as const, registers, collect() { const s = status(); this.set({ which: 'sent' }, s.log.sent); this.set({ which: 'acked' }, s.log.acked); } }),
      new Gauge({ name: 'ft_role', help: '1 for the role this node is in', labelNames: ['role'] as const, registers, collect() { const r = status().role; for (const x of ['primary', 'backup', 'joining', 'stopped']) this.set({ role: x }, x === r ? 1 : 0); } }),
    ],
  };
}
export type NodeMetrics = ReturnType<typeof nodeMetrics>;
