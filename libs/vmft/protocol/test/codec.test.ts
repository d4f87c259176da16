import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isCodedError } from '@mr/errors';
import { encodeFrame, encodeFrames, decodeFrames, decodeBody, FrameDecoder, entryWireSize, type Frame, type LogEntry } from '../src/index.ts';

const u64 = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const bytes = fc.uint8Array({ maxLength: 300 });
const id = fc.string({ maxLength: 40 });

const plain = <T extends object>(a: fc.Arbitrary<T>): fc.Arbitrary<T> => a.map((r) => ({ ...r }));
const entry: fc.Arbitrary<LogEntry> = fc.oneof(
  plain(fc.record({ kind: fc.constant('interrupt' as const), seq: u64, icount: u64, vector: u32 })),
  plain(fc.record({ kind: fc.constant('nic' as const), seq: u64, icount: u64, packet: bytes })),
  plain(fc.record({ kind: fc.constant('disk' as const), seq: u64, icount: u64, reqId: u32, data: bytes })),
  plain(fc.record({ kind: fc.constant('clock' as const), seq: u64, icount: u64, value: u64 })),
  plain(fc.record({ kind: fc.constant('random' as const), seq: u64, icount: u64, value: u32 })),
  plain(fc.record({ kind: fc.constant('progress' as const), seq: u64, icount: u64 })),
  plain(fc.record({ kind: fc.constant('port' as const), seq: u64, icount: u64, port: u32, value: u32 })),
);
const frame: fc.Arbitrary<Frame> = fc.oneof(
  entry.map((e) => ({ type: 'entry' as const, entry: e })),
  plain(fc.record({ type: fc.constant('ack' as const), epoch: u32, seq: u64, icount: u64 })),
  plain(fc.record({ type: fc.constant('hello' as const), epoch: u32, seq: u64, vmId: id, nodeId: id })),
  plain(fc.record({ type: fc.constant('snapshot' as const), epoch: u32, seq: u64, icount: u64, state: bytes })),
  plain(fc.record({
    type: fc.constant('trace' as const),
    seq: u64,
    traceId: fc.stringMatching(/^[0-9a-f]{32}$/).filter((x) => !/^0+$/.test(x)),
    spanId: fc.stringMatching(/^[0-9a-f]{16}$/).filter((x) => !/^0+$/.test(x)),
    flags: fc.integer({ min: 0, max: 255 }),
  })),
);

/** Splits `buf` at the given cut points (any order, duplicates allowed). */
function chunk(buf: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (buf.byteLength + 1)))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(buf.subarray(prev, p));
    prev = p;
  }
  out.push(buf.subarray(prev));
  return out;
}

test('encode/decode round trip under any chunking', () => {
  fc.assert(
    fc.property(fc.array(frame, { maxLength: 20 }), fc.array(fc.nat(), { maxLength: 30 }), (frames, cuts) => {
      const buf = encodeFrames(frames);
      const d = new FrameDecoder();
      const got: Frame[] = [];
      for (const c of chunk(buf, cuts)) got.push(...d.push(c));
      d.end();
      assert.deepEqual(got, frames);
      assert.equal(d.pending, 0);
      assert.equal(d.bytes, buf.byteLength);
    }),
    { numRuns: 400 },
  );
});

test('entryWireSize is the encoded size', () => {
  fc.assert(
    fc.property(entry, (e) => {
      assert.equal(entryWireSize(e), encodeFrame({ type: 'entry', entry: e }).byteLength);
    }),
  );
});

test('garbage gives a coded error or frames, never another kind of throw', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), fc.array(fc.nat(), { maxLength: 10 }), (junk, cuts) => {
      const d = new FrameDecoder({ maxFrameBytes: 1024 });
      try {
        for (const c of chunk(junk, cuts)) d.push(c);
        d.end();
      } catch (err) {
        assert.ok(isCodedError(err), `not a coded error: ${String(err)}`);
        assert.match((err as { code: string }).code, /^FT_ERR_(BAD_FRAME|FRAME_TOO_LARGE|TRUNCATED)$/);
        // A failed decoder stays failed with the same error.
        assert.throws(() => d.push(new Uint8Array([0, 0, 0, 1, 6])), (e) => e === err);
      }
    }),
    { numRuns: 2000 },
  );
});

test('a valid stream with one corrupted byte never crashes the decoder', () => {
  fc.assert(
    fc.property(fc.array(frame, { minLength: 1, maxLength: 5 }), fc.nat(), fc.integer({ min: 0, max: 255 }), (frames, at, v) => {
      const buf = encodeFrames(frames).slice();
      buf[at % buf.byteLength] = v;
      try {
        decodeFrames(buf);
      } catch (err) {
        assert.ok(isCodedError(err), `not a coded error: ${String(err)}`);
      }
    }),
    { numRuns: 1000 },
  );
});

test('malformed frames are refused with the code that says why', () => {
  const code = (bytes: number[], max?: number): string => {
    try {
      decodeFrames(new Uint8Array(bytes), { maxFrameBytes: max });
      return 'ok';
    } catch (err) {
      return (err as { code: string }).code;
    }
  };
  assert.equal(code([0, 0, 0, 0]), 'FT_ERR_BAD_FRAME'); // empty body
  assert.equal(code([0, 0, 0, 1, 9]), 'FT_ERR_BAD_FRAME'); // unknown type
  assert.equal(code([0, 0, 0, 2, 1, 6]), 'FT_ERR_BAD_FRAME'); // entry too short
  assert.equal(code([0, 0, 1, 0, 1], 100), 'FT_ERR_FRAME_TOO_LARGE');
  assert.equal(code([0, 0, 0, 5, 1]), 'FT_ERR_TRUNCATED');
  const progress = encodeFrame({ type: 'entry', entry: { kind: 'progress', seq: 1, icount: 2 } });
  assert.equal(code([...progress]), 'ok');
  const bad = [...progress];
  bad[5] = 42; // unknown entry kind
  assert.equal(code(bad), 'FT_ERR_BAD_FRAME');
  const big = [...progress];
  big[6] = 0xff; // seq above 2^53
  assert.equal(code(big), 'FT_ERR_BAD_FRAME');
  // A fixed-size entry with trailing bytes.
  const trailing = [0, 0, 0, progress.byteLength - 4 + 1, ...progress.slice(4), 0];
  assert.equal(code(trailing), 'FT_ERR_BAD_FRAME');
});

test('encoding refuses out-of-range fields with FT_ERR_BAD_VALUE', () => {
  assert.throws(() => encodeFrame({ type: 'entry', entry: { kind: 'progress', seq: -1, icount: 0 } }), { code: 'FT_ERR_BAD_VALUE' });
  assert.throws(() => encodeFrame({ type: 'entry', entry: { kind: 'random', seq: 1, icount: 0, value: 2 ** 32 } }), { code: 'FT_ERR_BAD_VALUE' });
  assert.throws(() => encodeFrame({ type: 'ack', epoch: 1, seq: 2 ** 53, icount: 0 }), { code: 'FT_ERR_BAD_VALUE' });
});

test('decoded payloads do not alias the pushed chunk', () => {
  const buf = encodeFrame({ type: 'entry', entry: { kind: 'nic', seq: 1, icount: 5, packet: new Uint8Array([1, 2, 3]) } });
  const [f] = new FrameDecoder().push(buf);
  buf.fill(0);
  assert.deepEqual(f, { type: 'entry', entry: { kind: 'nic', seq: 1, icount: 5, packet: new Uint8Array([1, 2, 3]) } });
});

/** Pushes `bytes` in `piece`-byte chunks (a peer dribbling a frame); returns the frames and the error, if any. */
function dribble(d: FrameDecoder, bytes: Uint8Array, piece: number): { frames: Frame[]; err?: { code: string }; pushed: number } {
  const frames: Frame[] = [];
  let pushed = 0;
  try {
    for (let p = 0; p < bytes.byteLength; p += piece) {
      const c = bytes.subarray(p, Math.min(bytes.byteLength, p + piece));
      pushed += c.byteLength;
      frames.push(...d.push(c));
    }
  } catch (err) {
    return { frames, err: err as { code: string }, pushed };
  }
  return { frames, pushed };
}

test('a dribbled 32 MiB log entry is refused on its first 5 bytes, before any of its body is buffered', () => {
  const head = new Uint8Array([0x02, 0x00, 0x00, 0x16, 1]); // 32 MiB + 22, type entry
  const d = new FrameDecoder();
  const r = dribble(d, head, 1);
  assert.equal(r.err?.code, 'FT_ERR_FRAME_TOO_LARGE');
  assert.equal(r.pushed, 5);
  assert.equal(d.pending, 0);
  assert.ok(d.bytesCopied <= 5, `copied ${d.bytesCopied}`);
  // A length no frame type allows is refused on the 4 length bytes alone.
  const e = new FrameDecoder();
  assert.throws(() => e.push(new Uint8Array([0x10, 0, 0, 0])), { code: 'FT_ERR_FRAME_TOO_LARGE' });
});

test('a dribbled 32 MiB snapshot frame is decoded with linear work (every byte copied at most twice)', () => {
  const state = new Uint8Array(32 * 1024 * 1024);
  for (let i = 0; i < state.byteLength; i += 4099) state[i] = i & 0xff;
  const bytes = encodeFrames([{ type: 'snapshot', epoch: 3, seq: 7, icount: 9, state }, { type: 'entry', entry: { kind: 'progress', seq: 8, icount: 10 } }]);
  const d = new FrameDecoder();
  const r = dribble(d, bytes, 16 * 1024);
  assert.equal(r.err, undefined);
  assert.equal(r.frames.length, 2);
  const snap = r.frames[0]!;
  assert.ok(snap.type === 'snapshot' && snap.epoch === 3 && snap.state.byteLength === state.byteLength);
  assert.ok(snap.type === 'snapshot' && Buffer.from(snap.state).equals(Buffer.from(state)));
  assert.equal(d.pending, 0);
  // The old decoder copied the whole pending buffer per chunk: about bytes^2 / (2 * 16 KiB) = 32 GiB here.
  assert.ok(d.bytesCopied <= 2 * bytes.byteLength, `copied ${d.bytesCopied} bytes for a ${bytes.byteLength}-byte stream`);
});

test('snapshot frames have their own limit, apart from the small-frame limit', () => {
  const big = new Uint8Array(3 * 1024 * 1024);
  const snapshot = encodeFrame({ type: 'snapshot', epoch: 1, seq: 0, icount: 0, state: big });
  const entry = encodeFrame({ type: 'entry', entry: { kind: 'nic', seq: 1, icount: 1, packet: big } });
  assert.equal(decodeFrames(snapshot).length, 1, 'a 3 MiB snapshot passes the default limits');
  assert.throws(() => decodeFrames(entry), { code: 'FT_ERR_FRAME_TOO_LARGE' }, 'a 3 MiB entry does not');
  assert.throws(() => decodeFrames(snapshot, { maxSnapshotBytes: 0 }), { code: 'FT_ERR_FRAME_TOO_LARGE' }, 'a stream that takes no snapshots');
  assert.throws(() => decodeFrames(snapshot, { maxSnapshotBytes: 1024 * 1024 }), { code: 'FT_ERR_FRAME_TOO_LARGE' });
  assert.equal(decodeFrames(entry, { maxFrameBytes: 4 * 1024 * 1024 }).length, 1);
});

test('trace frames: 38 bytes on the wire; bad ids refused on both sides', () => {
  const f: Frame = { type: 'trace', seq: 7, traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', flags: 1 };
  const bytes = encodeFrame(f);
  assert.equal(bytes.byteLength, 38);
  assert.deepEqual(decodeFrames(bytes), [f]);
  const code = (fn: () => unknown) => {
    try {
      fn();
    } catch (err) {
      return (err as { code?: string }).code;
    }
    return undefined;
  };
  assert.equal(code(() => encodeFrame({ ...f, traceId: 'xyz' })), 'FT_ERR_BAD_VALUE');
  assert.equal(code(() => encodeFrame({ ...f, spanId: '0'.repeat(16) })), 'FT_ERR_BAD_VALUE');
  const zero = Uint8Array.from(bytes);
  zero.fill(0, 4 + 9, 4 + 25);
  assert.equal(code(() => decodeFrames(zero)), 'FT_ERR_BAD_FRAME');
  const short = Uint8Array.from(bytes.subarray(0, 37));
  new DataView(short.buffer).setUint32(0, 33);
  assert.equal(code(() => decodeFrames(short)), 'FT_ERR_BAD_FRAME');
});

test('an ack may carry the backup\'s checkpoint (state hash at a log seq); a plain ack stays 21 bytes', () => {
  const plain = { type: 'ack' as const, epoch: 3, seq: 70, icount: 123_456 };
  assert.equal(encodeFrame(plain).byteLength, 4 + 21);
  const withCp = { ...plain, checkpoint: { seq: 64, icount: 120_000, hash: '9f3a0c11d2e4b577' } };
  const bytes = encodeFrame(withCp);
  assert.equal(bytes.byteLength, 4 + 21 + 8 + 8 + 1 + 16);
  assert.deepEqual(decodeBody(bytes.subarray(4)), withCp);
  assert.deepEqual(decodeBody(encodeFrame(plain).subarray(4)), plain);
  // Malformed: a truncated checkpoint, a hash length past the body, an over-long hash.
  assert.throws(() => decodeBody(bytes.subarray(4, 4 + 30)), { code: 'FT_ERR_BAD_FRAME' });
  const lying = Uint8Array.from(bytes.subarray(4));
  lying[37] = 200;
  assert.throws(() => decodeBody(lying), { code: 'FT_ERR_BAD_FRAME' });
  assert.throws(() => encodeFrame({ ...plain, checkpoint: { seq: 1, icount: 1, hash: 'x'.repeat(65) } }), { code: 'FT_ERR_BAD_VALUE' });
});
