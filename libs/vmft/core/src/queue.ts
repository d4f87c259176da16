/** A FIFO with O(1) amortized shift (an array plus a head index, compacted now and then). */
export class Queue<T> {
  #items: T[] = [];
  #head = 0;

  get length(): number {
    return this.#items.length - this.#head;
  }
  push(v: T): void {
    this.#items.push(v);
  }
  /** The i-th element from the front (0 = first). */
  at(i: number): T | undefined {
    return i >= 0 && i < this.length ? this.#items[this.#head + i] : undefined;
  }
  first(): T | undefined {
    return this.at(0);
  }
  last(): T | undefined {
    return this.at(this.length - 1);
  }
  shift(): T | undefined {
    if (this.length === 0) return undefined;
    const v = this.#items[this.#head]!;
    this.#items[this.#head] = undefined as T; // let it be collected
    this.#head++;
    if (this.#head >= 1024 && this.#head * 2 >= this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return v;
  }
  clear(): void {
    this.#items = [];
    this.#head = 0;
  }
  *[Symbol.iterator](): IterableIterator<T> {
    for (let i = this.#head; i < this.#items.length; i++) yield this.#items[i]!;
  }
}
