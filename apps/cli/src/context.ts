import type { Writable } from 'node:stream';

/** Exit codes that scripts can trust. */
export const EXIT = {
  OK: 0,
  /** The job (or drill) ran and failed, or was cancelled. */
  FAILED: 1,
  /** Bad usage or a request the server refused as invalid (4xx). */
  USAGE: 2,
  /** The service could not be reached or refused the token. */
  UNREACHABLE: 3,
} as const;

export interface CliContext {
  env: Record<string, string | undefined>;
  stdout: Writable & { isTTY?: boolean; columns?: number };
  stderr: Writable & { isTTY?: boolean };
}

/**
 * One subcommand: a file in src/commands/ named after it. Keep its static
 * imports light (types, node:*): a service command must start telemetry
 * before it imports fastify or undici, so it imports those dynamically.
 * `run` resolves to the exit code; a long-running service resolves when it
 * has shut down.
 */
export interface CommandModule {
  summary: string;
  usage: string;
  run(argv: string[], ctx: CliContext): Promise<number>;
}
