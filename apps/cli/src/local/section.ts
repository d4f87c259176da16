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
  /**
   * Called on every section as soon as shutdown begins, before any stop():
   * from now on exits are expected (a Ctrl-C in a terminal reaches every
   * child at once), so nothing is restarted or reported as a crash.
   */
  halt?(): void;
  stop(): Promise<void>;
}
