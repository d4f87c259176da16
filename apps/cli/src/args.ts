import { parseArgs, type ParseArgsConfig } from 'node:util';

export class UsageError extends Error {
  override name = 'UsageError';
}

type Options = NonNullable<ParseArgsConfig['options']>;

/**
 * util.parseArgs with `--help` built in and errors that name the command.
 * Returns undefined when help was asked for (the caller prints usage).
 */
export function parse<O extends Options>(command: string, argv: string[], options: O, allowPositionals = false) {
  try {
    const r = parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals, strict: true });
    if ((r.values as Record<string, unknown>)['help']) return undefined;
    return r as { values: { [K in keyof O]?: O[K]['type'] extends 'boolean' ? boolean : O[K]['multiple'] extends true ? string[] : string }; positionals: string[] };
  } catch (err) {
    throw new UsageError(`mr ${command}: ${(err as Error).message.replace(/\. To specify.*$/s, '')}`);
  }
}

/** Parses a duration like 10s, 500ms, 2m or a bare number of seconds into ms. */
export function durationMs(text: string, what: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim());
  if (!m) throw new UsageError(`${what}: expected a duration like 10s or 500ms, got "${text}"`);
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  return Math.round(unit === 'ms' ? n : unit === 'm' ? n * 60_000 : n * 1000);
}

/** Parses a positive integer option within [min, max]. */
export function intOption(text: string | undefined, what: string, dflt: number, min: number, max: number): number {
  if (text === undefined) return dflt;
  if (!/^-?\d+$/.test(text)) throw new UsageError(`${what}: expected an integer, got "${text}"`);
  const n = Number(text);
  if (n < min || n > max) throw new UsageError(`${what}: must be between ${min} and ${max}, got ${n}`);
  return n;
}

/** Parses a size like 64MiB, 512KiB, 1GiB, 100MB or a bare number of bytes. */
export function bytesOption(text: string | undefined, what: string, dflt: number, min: number, max: number): number {
  if (text === undefined) return dflt;
  const m = /^(\d+)\s*(B|KiB|MiB|GiB|KB|MB|GB|k|K|M|G)?$/.exec(text.trim());
  if (!m) throw new UsageError(`${what}: expected a size like 64MiB, 512KiB or a number of bytes, got "${text}"`);
  const unit: Record<string, number> = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3, KB: 1000, MB: 1000 ** 2, GB: 1000 ** 3, k: 1024, K: 1024, M: 1024 ** 2, G: 1024 ** 3 };
  const n = Number(m[1]) * unit[m[2] ?? 'B']!;
  if (n < min || n > max) throw new UsageError(`${what}: must be between ${min} and ${max} bytes, got ${n}`);
  return n;
}

/** The coordinator URL: --coordinator, else MR_COORDINATOR from the environment. */
export function coordinatorUrl(flag: string | undefined, env: Record<string, string | undefined>, command: string): string {
  const url = flag ?? (env['MR_COORDINATOR'] || undefined);
  if (!url) throw new UsageError(`${command}: --coordinator URL is required (or set MR_COORDINATOR)`);
  return url;
}
