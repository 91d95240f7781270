/**
 * table-memory — one block of memory for a large table's typed arrays. The caller may pass an
 * allocator for large blocks: uvsd and the benches pass the native addon's `allocHuge`
 * (native-bindings/src/mem.cc: a 2 MiB-aligned mapping advised MADV_HUGEPAGE before first
 * touch and faulted in before it is returned, see `hugeAllocator()` in port/native.ts), because
 * the conn table reads ~120 MiB at random at 1M conns and with 4 KiB pages almost every lookup
 * also misses the TLB; faulting it in at start keeps page faults (and THP compaction) off the
 * data path, so uvsd's table is resident from the start (≈ 124 B × --max-conns). Small
 * tables, or no allocator (tests, `uvs explain`, addon not built), get a plain ArrayBuffer:
 * same contents, same behaviour, only slower at scale. This module does not load the addon.
 *
 * `carveTable()` hands out views at 64-byte aligned offsets (no cache line spans two arrays).
 */

/** Below this a table stays in an ordinary ArrayBuffer (a huge page would be mostly empty). */
export const HUGE_MIN_BYTES = 8 << 20;

const ALIGN = 64;

/** Returns `bytes` zeroed bytes. */
export type BlockAllocator = (bytes: number) => ArrayBuffer;

type View = Uint8Array | Uint16Array | Uint32Array | Int32Array | Float64Array;
type ViewCtor = { new (buffer: ArrayBuffer, byteOffset: number, length: number): View; BYTES_PER_ELEMENT: number };
type Views<S extends readonly (readonly [ViewCtor, number])[]> = { -readonly [K in keyof S]: InstanceType<S[K][0]> };

/**
 * Allocates one block for all the arrays of `spec` ([constructor, length] pairs) — from
 * `allocate` when given and the block is at least HUGE_MIN_BYTES — and returns the views in the
 * same order, each at a 64-byte aligned offset, plus whether `allocate` served it and its size.
 */
export function carveTable<const S extends readonly (readonly [ViewCtor, number])[]>(spec: S,
  allocate?: BlockAllocator | null): { views: Views<S>; huge: boolean; bytes: number } {
  const offsets: number[] = [];
  let bytes = 0;
  for (const [ctor, length] of spec) {
    offsets.push(bytes);
    bytes += Math.ceil((length * ctor.BYTES_PER_ELEMENT) / ALIGN) * ALIGN;
  }
  bytes = Math.max(ALIGN, bytes);
  const huge = allocate != null && bytes >= HUGE_MIN_BYTES;
  const buffer = huge ? allocate(bytes) : new ArrayBuffer(bytes);
  const views = spec.map(([ctor, length], i) => new ctor(buffer, offsets[i]!, length));
  return { views: views as Views<S>, huge, bytes };
}
