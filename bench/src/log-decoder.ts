/**
 * The log channel's frame decoder under a peer that dribbles one big frame in
 * 16 KiB pieces (the hostile case of issue 6: the old decoder copied its whole
 * pending buffer per chunk, quadratic: 2.7 s at 8 MiB, 77 s at 32 MiB).
 * Reports CPU seconds of this process (the machine is shared) and the bytes
 * the decoder copied per byte received (at most 2: linear).
 */
import { encodeFrame, FrameDecoder } from '@mr/vmft-protocol';
import type { Benchmark } from './benchmark.ts';

function dribble(mib: number): { cpuSeconds: number; copiedPerByte: number } {
  const frame = encodeFrame({ type: 'snapshot', epoch: 1, seq: 0, icount: 0, state: new Uint8Array(mib * 1024 * 1024) });
  const d = new FrameDecoder();
  const c0 = process.cpuUsage();
  let frames = 0;
  for (let p = 0; p < frame.length; p += 16 * 1024) frames += d.push(frame.subarray(p, Math.min(frame.length, p + 16 * 1024))).length;
  const c = process.cpuUsage(c0);
  if (frames !== 1) throw new Error(`decoded ${frames} frames`);
  return { cpuSeconds: (c.user + c.system) / 1e6, copiedPerByte: d.bytesCopied / frame.length };
}

export const logDecoder: Benchmark = {
  name: 'log-decoder',
  description: 'a snapshot frame dribbled in 16 KiB pieces: decoder CPU time and copies per byte',
  async run(ctx) {
    const out: Record<string, number> = {};
    for (const mib of ctx.quick ? [8] : [8, 32]) {
      const r = dribble(mib);
      ctx.log(`${mib} MiB in 16 KiB pieces: ${r.cpuSeconds.toFixed(3)} s CPU, ${r.copiedPerByte.toFixed(2)} bytes copied per byte`);
      out[`${mib}MiB_cpu_s`] = Number(r.cpuSeconds.toFixed(3));
      out[`${mib}MiB_copied_per_byte`] = Number(r.copiedPerByte.toFixed(2));
    }
    return out;
  },
};
