/**
 * Go's strings.FieldsFunc(contents, func(r) bool { return !unicode.IsLetter(r) }):
 * words are maximal runs of Unicode letters (Lu, Ll, Lt, Lm, Lo = \p{L}).
 * Invalid UTF-8 decodes to U+FFFD, which is not a letter, so it separates.
 */

/** Decodes bytes as UTF-8, invalid sequences becoming U+FFFD (like Go's range loop: separators). */
export function decodeUtf8(contents: Buffer): string {
  return contents.toString('utf8');
}

const WORD = /\p{L}+/gu;

/** Calls `fn` for each word (maximal run of Unicode letters) of `text`, in order. */
export function forEachWord(text: string, fn: (word: string) => void): void {
  const re = new RegExp(WORD);
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) fn(m[0]);
}

/** All words of `text`, in order. */
export function words(text: string): string[] {
  return text.match(WORD) ?? [];
}

/** Counts the words of `text` (one pass, one Map). */
export function countWords(text: string, into: Map<string, number> = new Map()): Map<string, number> {
  const re = new RegExp(WORD);
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) {
    const w = m[0];
    into.set(w, (into.get(w) ?? 0) + 1);
  }
  return into;
}
