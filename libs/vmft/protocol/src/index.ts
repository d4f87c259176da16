/**
 * @mr/vmft-protocol: what crosses the wire in the FT VM.
 *
 * - frames.ts: log entries, acks, hello and snapshot frames (types + docs of
 *   their meaning: acks are on RECEIPT, highest contiguous seq).
 * - codec.ts: binary length-prefixed codec; FrameDecoder.push(chunk) for any
 *   chunking; coded errors on malformed input.
 * - schemas.ts: TypeBox schemas of the vm-node and storage HTTP JSON APIs.
 * - tas.ts: the storage node's test-and-set rule (decideTas), shared by the
 *   store and the simulator.
 */
export * from './frames.ts';
export * from './codec.ts';
export * from './errors.ts';
export * from './schemas.ts';
export * from './tas.ts';
