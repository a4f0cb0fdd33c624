/**
 * Rateless invertible Bloom lookup tables (Yang, Gilad, Alizadeh, "Practical Rateless Set
 * Reconciliation", SIGCOMM 2024) over the open objects of a channel, as resync's `riblt` method
 * uses them (PROTOCOL.md §7.3.1). Pure: no I/O, no timers.
 *
 * An item is an open object `(reference_id, head)`, hashed to a 64-bit key: MurmurHash3 of the
 * reference id (`hi`, so that two heads of one object can be paired) and the first 4 bytes of
 * the object's digest term SHA-256(canonical JSON `[reference_id, head]`) (`lo`).
 * Coded symbol `i` is the XOR of the keys and of the key checksums of the items mapped to it,
 * and their count; every item maps to symbol 0, and to symbol `i` with probability about
 * 1 / (1 + i/2), by a sequence of indices drawn from its key. A node keeps the first
 * {@link SKETCH_SYMBOLS} symbols of its set up to date on every add and remove; subtracting the
 * peer's symbols from its own leaves the symbols of the symmetric difference, which peel one
 * item at a time (a symbol with a count of ±1 and a checksum that matches its key). The
 * difference is whole once symbol 0 is empty.
 */
/** Coded symbols kept per set: the most a run may ask for. */
export const SKETCH_SYMBOLS = 1024;
/** Bytes of one coded symbol on the wire: key (8), checksum (8), count mod 2^16 (2). */
export const SYMBOL_BYTES = 18;

/** An item's 64-bit key, as two unsigned 32-bit halves. */
export interface ItemKey {
  /** MurmurHash3 (x86, 32-bit, seed 0) of the UTF-8 reference id. */
  hi: number;
  /** First 4 bytes of SHA-256(canonical JSON `[reference_id, head]`), big-endian. */
  lo: number;
}

/**
 * `hi` of an item key: MurmurHash3 (x86, 32-bit, seed 0) of the UTF-8 bytes of the reference id.
 * Not a cryptographic hash: it runs on every commit that moves a head (a SHA-256 there cost
 * more than the rest of the upkeep), and ids made to collide only make their own channel's
 * keys ambiguous, which the `lo` half and the stored head settle.
 */
export function refHash(referenceId: string): number {
  let ascii = true;
  for (let i = 0; i < referenceId.length && ascii; i++) ascii = referenceId.charCodeAt(i) < 0x80;
  const bytes: ArrayLike<number> = ascii ? { length: referenceId.length } : Buffer.from(referenceId, 'utf8');
  const at = ascii ? (i: number) => referenceId.charCodeAt(i) : (i: number) => bytes[i]!;
  const n = bytes.length;
  let h = 0;
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    let k = at(i) | (at(i + 1) << 8) | (at(i + 2) << 16) | (at(i + 3) << 24);
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  const rest = n - i;
  if (rest > 0) {
    let k = at(i);
    if (rest > 1) k ^= at(i + 1) << 8;
    if (rest > 2) k ^= at(i + 2) << 16;
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
  }
  return fmix32(h ^ n);
}

/** MurmurHash3's 32-bit finaliser. */
function fmix32(x: number): number {
  let h = x >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The 64-bit checksum of a key (two halves): what tells a pure symbol from a mixed one. */
export function checksumHi(hi: number, lo: number): number {
  return fmix32(hi ^ fmix32(lo ^ 0x243f6a88));
}
export function checksumLo(hi: number, lo: number): number {
  return fmix32(lo ^ fmix32(hi ^ 0x85a308d3));
}

/**
 * Calls `visit` with each index below `limit` that the item keyed `(hi, lo)` maps to: 0 first,
 * then `i += max(1, ceil((i + 1.5) * (1 / sqrt(u) - 1)))` with `u = (r + 1) / 2^32` and `r` the
 * next output of mulberry32 seeded with `fmix32(hi ^ imul(lo, 0x9e3779b1))`.
 */
export function forEachIndex(hi: number, lo: number, limit: number, visit: (i: number) => void): void {
  let s = fmix32(hi ^ Math.imul(lo, 0x9e3779b1)) | 0;
  let i = 0;
  while (i < limit) {
    visit(i);
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), s | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const u = (((t ^ (t >>> 14)) >>> 0) + 1) / 4294967296;
    i += Math.max(1, Math.ceil((i + 1.5) * (1 / Math.sqrt(u) - 1)));
  }
}

/** The first `size` coded symbols of a set (or of a difference of two). */
export class CodedSymbols {
  readonly keyHi: Uint32Array;
  readonly keyLo: Uint32Array;
  readonly sumHi: Uint32Array;
  readonly sumLo: Uint32Array;
  readonly count: Int32Array;

  constructor(readonly size: number) {
    this.keyHi = new Uint32Array(size);
    this.keyLo = new Uint32Array(size);
    this.sumHi = new Uint32Array(size);
    this.sumLo = new Uint32Array(size);
    this.count = new Int32Array(size);
  }

  /** Adds (`sign` 1) or removes (`sign` -1) an item. */
  toggle(hi: number, lo: number, sign: 1 | -1): void {
    const ch = checksumHi(hi, lo);
    const cl = checksumLo(hi, lo);
    forEachIndex(hi, lo, this.size, (i) => {
      this.keyHi[i]! ^= hi;
      this.keyLo[i]! ^= lo;
      this.sumHi[i]! ^= ch;
      this.sumLo[i]! ^= cl;
      this.count[i]! += sign;
    });
  }

  clear(): void {
    for (const a of [this.keyHi, this.keyLo, this.sumHi, this.sumLo, this.count]) a.fill(0);
  }

  /** A copy of the first `size` symbols. */
  snapshot(size = this.size): CodedSymbols {
    const copy = new CodedSymbols(Math.min(size, this.size));
    copy.keyHi.set(this.keyHi.subarray(0, copy.size));
    copy.keyLo.set(this.keyLo.subarray(0, copy.size));
    copy.sumHi.set(this.sumHi.subarray(0, copy.size));
    copy.sumLo.set(this.sumLo.subarray(0, copy.size));
    copy.count.set(this.count.subarray(0, copy.size));
    return copy;
  }

  /** Whether symbol `i` holds exactly one item (count ±1, checksum of its key). */
  pure(i: number): boolean {
    const c = this.count[i]!;
    if (c !== 1 && c !== -1) return false;
    const hi = this.keyHi[i]!;
    const lo = this.keyLo[i]!;
    return this.sumHi[i] === checksumHi(hi, lo) && this.sumLo[i] === checksumLo(hi, lo);
  }

  empty(i: number): boolean {
    return (
      this.count[i] === 0 &&
      this.keyHi[i] === 0 &&
      this.keyLo[i] === 0 &&
      this.sumHi[i] === 0 &&
      this.sumLo[i] === 0
    );
  }
}

/** Symbols `[from, to)` of `symbols` as base64url, {@link SYMBOL_BYTES} each (the count mod 2^16). */
export function encodeSymbols(symbols: CodedSymbols, from: number, to: number): string {
  const end = Math.min(to, symbols.size);
  const out = Buffer.alloc(Math.max(0, end - from) * SYMBOL_BYTES);
  for (let i = from, at = 0; i < end; i++, at += SYMBOL_BYTES) {
    out.writeUInt32BE(symbols.keyHi[i]!, at);
    out.writeUInt32BE(symbols.keyLo[i]!, at + 4);
    out.writeUInt32BE(symbols.sumHi[i]!, at + 8);
    out.writeUInt32BE(symbols.sumLo[i]!, at + 12);
    out.writeUInt16BE(symbols.count[i]! & 0xffff, at + 16);
  }
  return out.toString('base64url');
}

/**
 * Appends the symbols of `text` (from {@link encodeSymbols}) to `into` at `from`.
 * @returns how many symbols it held, or -1 when it is not whole symbols or does not fit
 */
export function decodeSymbolsInto(text: string, into: CodedSymbols, from: number): number {
  const bytes = Buffer.from(text, 'base64url');
  if (bytes.length % SYMBOL_BYTES !== 0) return -1;
  const n = bytes.length / SYMBOL_BYTES;
  if (from + n > into.size) return -1;
  for (let k = 0; k < n; k++) {
    const at = k * SYMBOL_BYTES;
    const i = from + k;
    into.keyHi[i] = bytes.readUInt32BE(at);
    into.keyLo[i] = bytes.readUInt32BE(at + 4);
    into.sumHi[i] = bytes.readUInt32BE(at + 8);
    into.sumLo[i] = bytes.readUInt32BE(at + 12);
    into.count[i] = bytes.readUInt16BE(at + 16);
  }
  return n;
}

/** Keys as base64url, 8 bytes each. */
export function encodeKeys(keys: readonly ItemKey[]): string {
  const out = Buffer.alloc(keys.length * 8);
  keys.forEach((k, n) => {
    out.writeUInt32BE(k.hi, n * 8);
    out.writeUInt32BE(k.lo, n * 8 + 4);
  });
  return out.toString('base64url');
}

/** Keys from {@link encodeKeys}; undefined when the text is not whole keys. */
export function decodeKeys(text: string): ItemKey[] | undefined {
  const bytes = Buffer.from(text, 'base64url');
  if (bytes.length % 8 !== 0) return undefined;
  const keys: ItemKey[] = [];
  for (let at = 0; at < bytes.length; at += 8)
    keys.push({ hi: bytes.readUInt32BE(at), lo: bytes.readUInt32BE(at + 4) });
  return keys;
}

/** The symmetric difference, by side: `mine` held here only, `theirs` held by the peer only. */
export interface Decoded {
  mine: ItemKey[];
  theirs: ItemKey[];
}

/** A count difference as the wire carries it (mod 2^16), back in [-2^15, 2^15). */
const wrap16 = (c: number): number => ((((c % 65536) + 65536 + 32768) % 65536) - 32768) | 0;

/**
 * Peels the difference of the first `m` symbols: `mine − theirs`. Returns the two sides when
 * symbol 0 ends empty, else `undefined` with `rest` left holding what did not peel.
 */
export function peel(
  mine: CodedSymbols,
  theirs: CodedSymbols,
  m: number,
): { decoded?: Decoded; rest: CodedSymbols; recovered: number } {
  const d = new CodedSymbols(m);
  for (let i = 0; i < m; i++) {
    d.keyHi[i] = mine.keyHi[i]! ^ theirs.keyHi[i]!;
    d.keyLo[i] = mine.keyLo[i]! ^ theirs.keyLo[i]!;
    d.sumHi[i] = mine.sumHi[i]! ^ theirs.sumHi[i]!;
    d.sumLo[i] = mine.sumLo[i]! ^ theirs.sumLo[i]!;
    d.count[i] = wrap16(mine.count[i]! - theirs.count[i]!);
  }
  const out: Decoded = { mine: [], theirs: [] };
  const queue: number[] = [];
  for (let i = 0; i < m; i++) if (d.pure(i)) queue.push(i);
  // Each peel removes one item: more than `2m` means the symbols are not a difference.
  let budget = 2 * m;
  while (queue.length > 0 && budget-- > 0) {
    const i = queue.pop()!;
    if (!d.pure(i)) continue;
    const hi = d.keyHi[i]!;
    const lo = d.keyLo[i]!;
    const sign = d.count[i] as 1 | -1;
    (sign === 1 ? out.mine : out.theirs).push({ hi, lo });
    d.toggle(hi, lo, sign === 1 ? -1 : 1);
    forEachIndex(hi, lo, m, (j) => {
      if (d.pure(j)) queue.push(j);
    });
  }
  const recovered = out.mine.length + out.theirs.length;
  return m > 0 && d.empty(0) ? { decoded: out, rest: d, recovered } : { rest: d, recovered };
}

/**
 * How many items are left in `rest` (what did not peel), by maximum likelihood over which of
 * its symbols are empty: symbol `i` holds each item with probability 1 / (1 + i/2).
 */
export function estimateRemaining(rest: CodedSymbols): number {
  let best = 0;
  let bestLog = Number.NEGATIVE_INFINITY;
  for (let r = 1; r <= 1 << 22; r = Math.ceil(r * 1.1)) {
    let logL = 0;
    for (let i = 1; i < rest.size; i++) {
      const pEmpty = (1 - 1 / (1 + i / 2)) ** r;
      logL += rest.empty(i) ? Math.log(pEmpty) : Math.log(Math.max(1 - pEmpty, 1e-300));
    }
    if (logL > bestLog) {
      bestLog = logL;
      best = r;
    }
  }
  return best;
}
