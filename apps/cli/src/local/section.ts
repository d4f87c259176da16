import type { CliContext } from '../context.ts';

/** What every part of `mr local` gets: where its state goes and how to start children. */
export interface LocalEnv {
  ctx: CliContext;
  /** The --data dir (absolute). */
  data: string;
  /** Environment for child processes (MR_TOKEN and friends). */
  childEnv: NodeJS.ProcessEnv;
  /** Prints one status line for the user. */
  say(line: string): void;
}

/**
 * One part of the local cluster (the MapReduce cluster; later the FT VM
 * pair, the dashboard). `mr local` starts each in turn, prints their URLs,
 * runs their demos when asked, and stops them in reverse order.
 */
export interface StartedSection {
  name: string;
  urls: { label: string; url: string }[];
  /** Hints printed under the URLs (example commands). */
  hints?: string[];
  /** The --demo workload; resolves to false if it failed. */
  demo?: () => Promise<boolean>;
  stop(): Promise<void>;
}
