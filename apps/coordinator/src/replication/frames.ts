/**
 * The coordinator's log channel frames (active -> standby, in the response
 * body of GET /v1/standby/log): length-prefixed, binary.
 *
 *   frame = u32 length (big endian, of what follows) | u8 kind | payload
 *   kind 1: JSON (a ControlFrame: hello, entry, check)
 *   kind 2: the image (v8 structured serialization of a DriverImage)
 *
 * One stream carries: hello, image, then entries (every scheduler input in
 * step order, with the active's wall clock) and checks (the state hash after
 * an entry). Acknowledgements go the other way as POST /v1/standby/ack.
 */
import { deserialize, serialize } from 'node:v8';
import type { SchedulerImage, SchedulerInput } from '@mr/mapreduce-core';
import type { JobTimes } from '../plugins/app/journal.ts';

/** Largest frame a standby accepts (an image of a big state included). */
export const MAX_FRAME_BYTES = 512 * 1024 * 1024;

export type ControlFrame =
  /** session: names this stream (acks carry it); seq: the image's (the state after every step up to seq). */
  | { t: 'hello'; session: string; epoch: number; nodeId: string; seq: number }
  /** One scheduler input, stepped by the active as step number seq at wall-clock time at (ISO). */
  | { t: 'entry'; seq: number; at: string; input: SchedulerInput }
  /** The active's state hash right after step seq (walkImage into sha256). */
  | { t: 'check'; seq: number; hash: string };

/** What a standby starts from: the scheduler's exact state and the shell's job times. */
export interface DriverImage {
  seq: number;
  core: SchedulerImage;
  times: [string, JobTimes][];
}

export type Frame = { kind: 'control'; frame: ControlFrame } | { kind: 'image'; image: DriverImage };

function frame(kind: number, payload: Uint8Array): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(payload.byteLength + 1, 0);
  head.writeUInt8(kind, 4);
  return Buffer.concat([head, payload]);
}

export function encodeControl(f: ControlFrame): Buffer {
  return frame(1, Buffer.from(JSON.stringify(f)));
}

export function encodeImage(image: DriverImage): Buffer {
  return frame(2, serialize(image));
}

/** Splits a byte stream into frames; throws on a frame over the limit or of an unknown kind. */
export class FrameDecoder {
  #buf: Buffer = Buffer.alloc(0);
  readonly #max: number;

  constructor(maxFrameBytes = MAX_FRAME_BYTES) {
    this.#max = maxFrameBytes;
  }

  push(chunk: Uint8Array): Frame[] {
    this.#buf = this.#buf.length ? Buffer.concat([this.#buf, chunk]) : Buffer.from(chunk);
    const out: Frame[] = [];
    while (this.#buf.length >= 4) {
      const len = this.#buf.readUInt32BE(0);
      if (len < 1 || len > this.#max) throw new Error(`log frame of ${len} bytes (limit ${this.#max})`);
      if (this.#buf.length < 4 + len) break;
      const kind = this.#buf.readUInt8(4);
      const body = this.#buf.subarray(5, 4 + len);
      this.#buf = this.#buf.subarray(4 + len);
      if (kind === 1) out.push({ kind: 'control', frame: JSON.parse(body.toString('utf8')) as ControlFrame });
      else if (kind === 2) out.push({ kind: 'image', image: deserialize(body) as DriverImage });
      else throw new Error(`log frame of unknown kind ${kind}`);
    }
    return out;
  }
}
