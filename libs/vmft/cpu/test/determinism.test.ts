import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Cpu, IRQ, PORT, type DeviceHost, type Program } from '../src/index.ts';
import { prog } from './helpers.ts';

// A guest that computes all the time, so interrupts land at arbitrary points,
// and folds random reads, interrupted pcs and packets into its memory.
const guest: Program = prog(`
.data
.align 4
count:  .word 0
acc:    .word 0
log:    .space 256
rxbuf:  .space 64
.align 4096
big:    .space 8192
.text
start:
    mov r1, on_timer
    out PORT_IVEC + IRQ_TIMER, r1
    mov r1, on_nic
    out PORT_IVEC + IRQ_NIC, r1
    mov r1, rxbuf
    out PORT_NIC_RX_ADDR, r1
    out PORT_NIC_RX_CAP, 64
    ei
loop:
    add r5, r5, 3
    mul r6, r5, r5
    xor r7, r7, r6
    and r8, r5, 8191
    stb r7, [r8 + big]
    jmp loop
on_timer:
    push r1
    push r2
    in r1, PORT_RANDOM
    ldw r2, [acc]
    xor r2, r2, r1
    add r2, r2, r7
    stw r2, [acc]
    ldw r1, [count]
    and r1, r1, 63
    shl r1, r1, 2
    ldw r2, [sp + 12]
    stw r2, [r1 + log]
    ldw r1, [count]
    add r1, r1, 1
    stw r1, [count]
    pop r2
    pop r1
    iret
on_nic:
    push r1
    push r2
    push r3
    mov r1, rxbuf
    in r2, PORT_NIC_RX_LEN
    hash r3, r1, r2
    ldw r1, [acc]
    xor r1, r1, r3
    ldw r2, [sp + 16]      ; interrupted pc: when the packet arrived matters
    mul r1, r1, 31
    add r1, r1, r2
    stw r1, [acc]
    mov r1, rxbuf
    out PORT_NIC_RX_ADDR, r1
    out PORT_NIC_RX_CAP, 64
    pop r3
    pop r2
    pop r1
    iret
`, 'det.s');

type Ev = { gap: number; kind: 'timer'; random: number } | { gap: number; kind: 'packet'; bytes: Uint8Array };

const evArb: fc.Arbitrary<Ev> = fc.oneof(
  fc.record({ gap: fc.integer({ min: 0, max: 3000 }), kind: fc.constant('timer' as const), random: fc.integer({ min: 0, max: 2 ** 32 - 1 }) }),
  fc.record({ gap: fc.integer({ min: 0, max: 3000 }), kind: fc.constant('packet' as const), bytes: fc.uint8Array({ maxLength: 64 }) /* the guest's buffer holds 64 */ }),
);

interface Replica { cpu: Cpu; randoms: number[] }

function replica(): Replica {
  const randoms: number[] = [];
  const host: DeviceHost = {
    read: (port) => (port === PORT.RANDOM ? randoms.shift() : 0),
    transmit: () => {},
    disk: () => {},
  };
  return { cpu: new Cpu(guest, host, { memorySize: 65536 }), randoms };
}

/** Delivers the events at their instruction counts, slicing run() at most `slice` instructions at a time. */
/** Returns, per event, where it was delivered and whether the guest could take it at once (in its loop, nothing pending). */
function play(r: Replica, events: Ev[], slice = Infinity, from = 0, tail = 500): { icount: number; clean: boolean }[] {
  const delivered: { icount: number; clean: boolean }[] = [];
  const clean = (): boolean => r.cpu.ie && r.cpu.irqPending === 0;
  let at = from === 0 ? 20 : r.cpu.icount; // after boot
  for (const e of events) {
    at += e.gap;
    while (r.cpu.icount < at) assert.equal(r.cpu.run(Math.min(at, r.cpu.icount + slice)), 'limit');
    if (e.kind === 'timer') {
      // Two raises of a pending line coalesce; hold the tick until the last one was taken, as a host would.
      while ((r.cpu.irqPending & (1 << IRQ.TIMER)) !== 0) assert.equal(r.cpu.run(r.cpu.icount + 1), 'limit');
      at = Math.max(at, r.cpu.icount);
      r.randoms.push(e.random);
      delivered.push({ icount: r.cpu.icount, clean: clean() });
      r.cpu.raiseInterrupt(IRQ.TIMER);
    } else {
      // The handler re-arms the buffer; a packet arriving before that waits, as a host would hold it.
      while (!r.cpu.nicRxReady) assert.equal(r.cpu.run(r.cpu.icount + 1), 'limit');
      at = Math.max(at, r.cpu.icount);
      delivered.push({ icount: r.cpu.icount, clean: clean() });
      assert.ok(r.cpu.deliverPacket(e.bytes));
    }
  }
  at += tail;
  while (r.cpu.icount < at) r.cpu.run(Math.min(at, r.cpu.icount + slice));
  return delivered;
}

test('the same events at the same instruction counts always give the same state hash, however run() is sliced', () => {
  fc.assert(fc.property(fc.array(evArb, { maxLength: 25 }), fc.integer({ min: 1, max: 700 }), (events, slice) => {
    const a = replica(), b = replica();
    play(a, events);
    play(b, events, slice);
    assert.equal(a.cpu.icount, b.cpu.icount);
    assert.equal(a.cpu.stateHash(), b.cpu.stateHash());
    assert.equal(a.cpu.faultMessage, null);
  }), { numRuns: 60 });
});

test('different inputs give different state hashes (value, timing or packet byte changed)', () => {
  fc.assert(fc.property(fc.array(evArb, { minLength: 1, maxLength: 15 }), fc.nat(), fc.integer({ min: 0, max: 2 }), (events, pick, how) => {
    const i = pick % events.length;
    const changed = events.map((e) => ({ ...e }));
    const e = changed[i]!;
    if (how === 0) e.gap += 1;
    else if (e.kind === 'timer') e.random = (e.random ^ (1 << (pick % 32))) >>> 0;
    else if (e.bytes.length > 0) { e.bytes = e.bytes.slice(); e.bytes[pick % e.bytes.length]! ^= 1 + (pick % 255); }
    else e.bytes = new Uint8Array([pick & 0xff]);
    const a = replica(), b = replica();
    const da = play(a, events);
    const db = play(b, changed);
    // A shifted event is invisible when the guest could not take it at once (in a handler, or another
    // interrupt pending) or when the host had to hold it anyway: require a clean delivery at distinct points.
    if (how === 0) fc.pre(da[i]!.clean && db[i]!.clean && da[i]!.icount !== db[i]!.icount);
    if (how === 0) {
      // Same events one instruction later: compare at the same icount.
      b.cpu.run(a.cpu.icount + 1);
      a.cpu.run(a.cpu.icount + 1);
    }
    assert.equal(a.cpu.icount, b.cpu.icount, 'compared at the same instruction count');
    assert.notEqual(a.cpu.stateHash(), b.cpu.stateHash());
  }), { numRuns: 60 });
});

test('snapshot, restore, run == uninterrupted run; the incremental hash equals a full rehash', () => {
  fc.assert(fc.property(fc.array(evArb, { maxLength: 20 }), fc.array(evArb, { maxLength: 20 }), (first, second) => {
    const a = replica();
    play(a, first, Infinity);
    // Stop where the uninterrupted run would deliver the next event (play() ran 500 past the last one).
    const snap = a.cpu.snapshot();
    const b = replica();
    b.cpu.restore(snap);
    b.randoms.push(...a.randoms); // inputs logged after the snapshot point travel with it
    assert.equal(b.cpu.stateHash(), a.cpu.stateHash(), 'restored state hashes the same');
    assert.deepEqual(b.cpu.snapshot(), snap, 'snapshot of a restored CPU is identical');
    // Continue a and b with the same events; both must agree with each other.
    play(a, second, Infinity, 1);
    play(b, second, 997, 1);
    assert.equal(b.cpu.icount, a.cpu.icount);
    assert.equal(b.cpu.stateHash(), a.cpu.stateHash());
    // Incremental hashing (only dirty pages) equals hashing a fresh copy from scratch.
    const c = replica();
    c.cpu.restore(a.cpu.snapshot());
    assert.equal(c.cpu.stateHash(), a.cpu.stateHash());
  }), { numRuns: 40 });
});

test('restore then run equals the uninterrupted run from the start', () => {
  const events: Ev[] = Array.from({ length: 40 }, (_, i) => (i % 3 === 0
    ? { gap: 100 + i * 37, kind: 'packet' as const, bytes: Uint8Array.from([i, i * 7, 255 - i]) }
    : { gap: 50 + i * 11, kind: 'timer' as const, random: (i * 2654435761) >>> 0 }));
  const whole = replica();
  play(whole, events);
  // Replay the first 20, snapshot at the boundary of event 20, restore elsewhere, replay the rest.
  const a = replica();
  play(a, events.slice(0, 20), Infinity, 0, 0);
  const snap = a.cpu.snapshot();
  const b = replica();
  b.cpu.restore(snap);
  b.randoms.push(...a.randoms); // inputs logged after the snapshot point travel with it
  play(b, events.slice(20), 1000, 1);
  assert.equal(b.cpu.faultMessage, null);
  assert.equal(b.cpu.icount, whole.cpu.icount);
  assert.equal(b.cpu.stateHash(), whole.cpu.stateHash());
  assert.deepEqual(b.cpu.snapshot(), whole.cpu.snapshot());
  assert.ok(whole.cpu.readWord(guest.symbols['count']!) > 20);
});

test('restore refuses snapshots it cannot use, and changes nothing', () => {
  const a = replica();
  play(a, [{ gap: 10, kind: 'timer', random: 5 }]);
  const snap = a.cpu.snapshot();
  const b = replica();
  b.cpu.run(100);
  const before = b.cpu.stateHash();
  assert.throws(() => b.cpu.restore(snap.subarray(0, 10)), { code: 'FT_ERR_BAD_SNAPSHOT' });
  assert.throws(() => b.cpu.restore(snap.subarray(0, snap.length - 1)), { code: 'FT_ERR_BAD_SNAPSHOT' });
  const bad = snap.slice(); bad[0] ^= 1;
  assert.throws(() => b.cpu.restore(bad), { code: 'FT_ERR_BAD_SNAPSHOT' });
  assert.throws(() => new Cpu(guest, undefined, { memorySize: 131072 }).restore(snap), /memory size/);
  assert.throws(() => new Cpu(prog('halt'), undefined, { memorySize: 65536 }).restore(snap), /taken from program/);
  assert.equal(b.cpu.stateHash(), before);
  // Snapshots skip zero pages.
  assert.ok(snap.length < 65536 / 2, `snapshot is ${snap.length} bytes`);
});

test('dirty page tracking: takeDirtyPages lists the pages written since the last call', () => {
  const r = replica();
  r.cpu.run(20);
  r.cpu.takeDirtyPages();
  r.cpu.run(40);
  const pages = r.cpu.takeDirtyPages();
  assert.ok(pages.length >= 1 && pages.every((p) => p >= 1 && p <= 3), `pages ${pages}`);
  assert.deepEqual(r.cpu.takeDirtyPages(), []);
  r.cpu.dmaWrite(4096 * 10 + 5, new Uint8Array(4096));
  assert.deepEqual(r.cpu.takeDirtyPages(), [10, 11]);
});

test('a corrupted snapshot is refused with FT_ERR_BAD_SNAPSHOT and changes nothing, or restores a machine that runs without crashing', () => {
  const a = replica();
  play(a, [{ gap: 10, kind: 'timer', random: 5 }, { gap: 40, kind: 'packet', bytes: Uint8Array.from([1, 2, 3]) }]);
  const snap = a.cpu.snapshot();
  fc.assert(fc.property(fc.array(fc.record({ at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }), { minLength: 1, maxLength: 6 }), (flips) => {
    const bad = snap.slice();
    for (const f of flips) bad[f.at % Math.min(bad.length, 400)] = f.value; // the header and state words
    const b = replica();
    b.cpu.run(100);
    const before = b.cpu.stateHash();
    try {
      b.cpu.restore(bad);
    } catch (e) {
      assert.equal((e as { code?: string }).code, 'FT_ERR_BAD_SNAPSHOT', String(e));
      assert.equal(b.cpu.stateHash(), before);
      return;
    }
    b.randoms.push(1, 2, 3, 4, 5);
    b.cpu.run(b.cpu.icount + 2000);
    if (b.cpu.nicRxReady) b.cpu.deliverPacket(new Uint8Array(70));
    b.cpu.raiseInterrupt(IRQ.TIMER);
    b.cpu.run(b.cpu.icount + 2000);
    b.cpu.stateHash();
  }), { numRuns: 300 });
});
