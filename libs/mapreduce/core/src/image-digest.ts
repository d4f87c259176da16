/**
 * A canonical walk of a scheduler image (Scheduler.image()), for a state
 * hash that two processes can compare: Maps and Sets in insertion order,
 * object keys in their order, numbers by value (not by the engine's
 * representation, which a serialized copy need not keep), a shared object
 * walked at each place it appears, a cycle marked where it closes. Pure: the
 * caller feeds the tokens into the hash it likes.
 */
export function walkImage(value: unknown, update: (token: string) => void): void {
  const open = new Set<object>();
  const walk = (v: unknown): void => {
    if (v === null) return update('n');
    switch (typeof v) {
      case 'undefined':
        return update('u');
      case 'boolean':
        return update(v ? 't' : 'f');
      case 'number':
        return update(`#${Object.is(v, -0) ? '-0' : String(v)}`);
      case 'string':
        return update(`s${v.length}:${v}`);
      case 'object':
        break;
      default:
        throw new TypeError(`walkImage: a ${typeof v} in the image`);
    }
    const o = v as object;
    if (open.has(o)) return update('^');
    open.add(o);
    if (o instanceof Map) {
      update(`M${o.size}`);
      for (const [k, x] of o) {
        walk(k);
        walk(x);
      }
    } else if (o instanceof Set) {
      update(`S${o.size}`);
      for (const x of o) walk(x);
    } else if (Array.isArray(o)) {
      update(`A${o.length}`);
      for (const x of o) walk(x);
    } else {
      const keys = Object.keys(o);
      update(`O${keys.length}`);
      for (const k of keys) {
        update(`k${k.length}:${k}`);
        walk((o as Record<string, unknown>)[k]);
      }
    }
    open.delete(o);
  };
  walk(value);
}
