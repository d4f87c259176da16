/**
 * Job ids. A coordinator names each accepted job with a ULID (26 characters
 * of Crockford base32, the first 10 the submission time in ms): unique across
 * coordinators, and ids of one coordinator sort in submission order (its
 * generator is monotonic: ids made in one millisecond, or after the clock
 * stepped back, still increase). Journals written before ULIDs hold the old
 * per-coordinator ids j1, j2, …, which stay valid for the jobs they name.
 */

/** A canonical (upper-case) ULID whose time fits 48 bits. */
const ULID_RE = /^[0-7][0-9A-HJKMNP-TV-Z]{25}$/;
/** The ids of journals written before ULIDs: j<N>, N ≥ 1. */
const LEGACY_RE = /^j([1-9][0-9]{0,15})$/;

export function isUlidJobId(id: string): boolean {
  return ULID_RE.test(id);
}

/** N of a legacy id j<N>; undefined for any other string. */
export function legacyJobNumber(id: string): number | undefined {
  const m = LEGACY_RE.exec(id);
  return m ? Number(m[1]) : undefined;
}

/**
 * The id a user typed, as the coordinator stores it: ULIDs are
 * case-insensitive (their alphabet has no I, L, O, U), so a lower-case one
 * names the same job as its upper-case form; anything else is left as is.
 */
export function canonicalJobId(id: string): string {
  if (id.length !== 26) return id;
  const up = id.toUpperCase();
  return ULID_RE.test(up) ? up : id;
}
