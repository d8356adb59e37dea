/**
 * The open streams of a session, by stream id: an open-addressing hash table
 * over two plain arrays, instead of a `Map`.
 *
 * Why not a `Map`: a session lives for days and opens and closes a stream for
 * every request. V8 stores a `Map` in a table that it replaces when deleted
 * entries fill it, and the replaced table keeps its entries and a pointer to
 * its successor (for iterators that may still walk it). Once one of those
 * tables sits in the old generation, which every full collection during
 * traffic brings about, it is dead but only a full collection frees it, and
 * until then it holds every later table, and with them every stream that was
 * open when each was replaced, with its request and response objects. Young
 * collections then promote nearly every request instead of freeing it; the
 * relay's CPU per request rose by half and its p99 doubled for good after one
 * full collection under load (docs/performance.md, item 12). Here a closed
 * stream's slot is cleared in place, and a grown table is a fresh array that
 * nothing links to its predecessor.
 */
export class StreamTable<V> {
  private ids: number[];
  private values_: (V | undefined)[];
  private mask: number;
  private shift: number;
  private count = 0;

  constructor(capacity = 16) {
    let n = 8;
    while (n < capacity * 2) n *= 2;
    [this.ids, this.values_, this.mask, this.shift] = StreamTable.empty<V>(n);
  }

  get size(): number {
    return this.count;
  }

  /** `id` must be a positive integer (0 marks an empty slot). */
  get(id: number): V | undefined {
    const ids = this.ids;
    for (let i = this.slot(id); ; i = (i + 1) & this.mask) {
      const k = ids[i]!;
      if (k === id) return this.values_[i];
      if (k === 0) return undefined;
    }
  }

  has(id: number): boolean {
    return this.get(id) !== undefined;
  }

  set(id: number, value: V): void {
    if (!(id > 0 && Number.isInteger(id))) throw new RangeError(`stream id ${id} is not a positive integer`);
    if ((this.count + 1) * 2 > this.ids.length) this.resize(this.ids.length * 2);
    const ids = this.ids;
    let i = this.slot(id);
    for (; ids[i] !== 0; i = (i + 1) & this.mask) {
      if (ids[i] === id) {
        this.values_[i] = value;
        return;
      }
    }
    ids[i] = id;
    this.values_[i] = value;
    this.count += 1;
  }

  /** Removes `id`; true when it was there. Backward-shift deletion: no tombstones. */
  delete(id: number): boolean {
    const ids = this.ids;
    const mask = this.mask;
    let i = this.slot(id);
    for (; ids[i] !== id; i = (i + 1) & mask) if (ids[i] === 0) return false;
    // Pull later members of the probe run back so every lookup still ends at an empty slot.
    for (let j = (i + 1) & mask; ids[j] !== 0; j = (j + 1) & mask) {
      const home = this.slot(ids[j]!);
      // Move j into the hole at i unless j's home lies cyclically in (i, j].
      if (((j - home) & mask) >= ((j - i) & mask)) {
        ids[i] = ids[j]!;
        this.values_[i] = this.values_[j];
        i = j;
      }
    }
    ids[i] = 0;
    this.values_[i] = undefined;
    this.count -= 1;
    if (this.ids.length > 64 && this.count * 8 < this.ids.length) this.resize(this.ids.length / 2);
    return true;
  }

  /** The values, by ascending id. */
  values(): V[] {
    const pairs: [number, V][] = [];
    for (let i = 0; i < this.ids.length; i++) if (this.ids[i] !== 0) pairs.push([this.ids[i]!, this.values_[i]!]);
    return pairs.sort((a, b) => a[0] - b[0]).map((p) => p[1]);
  }

  clear(): void {
    [this.ids, this.values_, this.mask, this.shift] = StreamTable.empty<V>(16);
    this.count = 0;
  }

  /** Slots for `n` entries (a power of two), all empty, with the mask and hash shift that go with them. */
  private static empty<V>(n: number): [number[], (V | undefined)[], number, number] {
    return [new Array<number>(n).fill(0), new Array<V | undefined>(n).fill(undefined), n - 1, 32 - Math.log2(n)];
  }

  /** Fibonacci hashing (the top bits of id × 2^32/φ): spreads sequential and patterned ids alike. */
  private slot(id: number): number {
    return Math.imul(id, 0x9e3779b1) >>> this.shift;
  }

  private resize(n: number): void {
    const ids = this.ids;
    const values = this.values_;
    [this.ids, this.values_, this.mask, this.shift] = StreamTable.empty<V>(n);
    this.count = 0;
    for (let i = 0; i < ids.length; i++) if (ids[i] !== 0) this.set(ids[i]!, values[i]!);
  }
}
