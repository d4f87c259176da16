/**
 * @mr/vmft-cpu — a deterministic virtual CPU, its devices, and an assembler.
 *
 * Nothing outside the CPU changes its state except events delivered at an
 * instruction boundary (between run() calls) and the values the host returns
 * from its read callback. Two CPUs that start from the same program (or the
 * same snapshot) and receive the same events at the same instruction counts
 * reach identical states: `stateHash()` proves it.
 *
 * ## Engines
 *
 * By default hot code runs as compiled blocks (jit.ts: QEMU-style
 * translation blocks, traces with side exits, tight loops looped inside one
 * function), the rest through the interpreter; `{ engine: 'interpreter' }`
 * runs the reference interpreter alone. A block runs only when it fits in
 * what is left of the slice and stops before an instruction that would
 * fault, so both engines give the same state at every instruction count
 * (test/blocks.test.ts checks random programs and event logs against the
 * interpreter). `npm run bench -- vm-cpu` measures both side by side.
 *
 * ## Driving it
 *
 * ```ts
 * import { assemble, Cpu, IRQ, PORT } from '@mr/vmft-cpu';
 * const cpu = new Cpu(assemble(src, 'kv.s'), host);   // or getGuest('kv') from @mr/vmft-guests
 * for (;;) {
 *   const why = cpu.run(cpu.icount + 1_000_000);        // run(untilIcount): absolute instruction count
 *   // why: 'limit' | 'wfi' | 'halt' | 'fault' | 'stop' | 'io-wait'
 *   //   limit   — icount === untilIcount (exactly; the backup relies on this)
 *   //   wfi     — the guest waits for an interrupt: deliver an event, then run again
 *   //   halt    — the guest stopped for good;  fault — cpu.faultMessage says why (sticky)
 *   //   stop    — a callback called cpu.requestStop() (e.g. to release an output early)
 *   //   io-wait — host.read returned undefined; the IN was not executed, call run() again later
 *   // Between runs, at boundary cpu.icount, deliver events (these are the FT log's input events):
 *   cpu.raiseInterrupt(IRQ.TIMER);           // timer tick (the guest programs cpu.timerPeriodMs)
 *   cpu.deliverPacket(bytes);                // NIC receive: DMA into the guest's armed buffer + IRQ.NIC;
 *                                            //   false (nothing changed) if no buffer armed (cpu.nicRxReady)
 *   cpu.completeDiskRead(blockBytes);        // disk read completion: DMA + DISK_STATUS=DONE + IRQ.DISK
 *   cpu.dmaWrite(addr, bytes);               // raw DMA, if you need it
 * }
 * ```
 *
 * A backup replays by running to the primary's recorded icount of each event
 * (`run(e.icount)` returns 'limit' exactly there, or 'wfi' earlier if the guest
 * is idle — then icount stays put and the primary must have recorded the same
 * icount) and delivering the same event. Calling an event method from inside a
 * device callback throws: events only happen at boundaries.
 *
 * ## Device callbacks (DeviceHost), called synchronously inside run()
 *
 * - `read(port, icount)`: the non-deterministic inputs — PORT.CLOCK (return ms
 *   since epoch; the guest gets the low 32 bits, CLOCK_HI latches the rest),
 *   PORT.RANDOM (a u32), host ports 0x80..0xff. The primary answers from real
 *   devices and logs `{icount, port, value}`; the backup returns the logged
 *   value. Returning undefined makes run() return 'io-wait' before the IN.
 * - `transmit(packet, icount)`: NIC transmit (a copy) — an output, held until
 *   the backup acked the log up to `icount` (output rule); suppressed on a backup.
 * - `disk(req, icount)`: `{op:'read', block, count, addr}` — the host fetches
 *   count*512 bytes and later calls completeDiskRead(data) (logged as an input
 *   event); `{op:'write', block, count, addr, data}` — an output; only a live
 *   primary writes to storage. The guest sees writes complete at once.
 * - `write?(port, value, icount)`: PORT.CONSOLE bytes, PORT.TIMER_PERIOD changes,
 *   host ports. Informational; does not affect guest state.
 *
 * `icount` in callbacks is the boundary before the instruction making the call
 * (so a read logged at icount N is consumed by the backup when its icount is N).
 *
 * ## Interrupts
 *
 * Lines 0..7 (IRQ.TIMER=0, IRQ.NIC=1, IRQ.DISK=2), lowest line first. Pending
 * lines are taken only when `ie` is set and the line is unmasked, checked at
 * run() entry (only when at least one instruction will run: run(until <= icount)
 * changes nothing) and after EI, IRET, WFI and OUT. Entry pushes pc then flags,
 * clears `ie` (no nesting unless the handler executes EI) and jumps to the
 * vector the guest set with `out PORT_IVEC+line, reg`. IRET restores both.
 * WFI with nothing pending returns 'wfi' (icount counts the WFI).
 *
 * ## State
 *
 * - `snapshot()` → bytes (registers, pc, icount, interrupt and device state,
 *   non-zero memory pages); `restore(bytes)` on a CPU built with the same
 *   program and memory size. Restore then run equals an uninterrupted run.
 * - `stateHash()` → 16 hex digits over everything; per-page hashes are cached
 *   and only pages written since the last call are rehashed. `pageHashes()`
 *   locates a divergence. `takeDirtyPages()` lists pages written since last call.
 * - `icount`, `pc`, `regs`, `halted`, `waiting`, `faulted`, `timerPeriodMs`,
 *   `nicRxReady`, `diskStatus` are readable; `readMemory()`/`readWord()` copy.
 *
 * The instruction set and assembler syntax are described in asm.ts; ports and
 * opcodes in isa.ts.
 */
export { Cpu, nullHost, ErrBadEvent, ErrBadProgram, ErrBadSnapshot } from './cpu.ts';
export type { DeviceHost, DiskRequest, ExitReason, CpuOptions } from './cpu.ts';
export { assemble, ErrAsm } from './asm.ts';
export type { AsmError } from './asm.ts';
export type { Program } from './program.ts';
export { fnv1a } from './program.ts';
export {
  DEFAULT_MEMORY_SIZE, DISK_BLOCK_SIZE, DISK_CMD, DISK_STATUS, IRQ, NUM_IRQ_LINES, NUM_REGS, OP, PAGE_SIZE, PORT, SP,
} from './isa.ts';
