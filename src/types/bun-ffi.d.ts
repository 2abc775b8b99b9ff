// The few bun:ffi entry points the per-call binary uses (src/host/unix-socket-bun.ts), declared
// here rather than pulling in Bun's whole type package next to Node's.
declare module 'bun:ffi' {
  export const FFIType: { readonly i32: number; readonly u32: number; readonly i64: number; readonly u64: number; readonly ptr: number };
  export type Pointer = number & { readonly __pointer: unique symbol };
  export function ptr(view: ArrayBufferView): Pointer;
  export const read: { i32(address: Pointer, offset?: number): number };
  export function dlopen<S extends Record<string, { args: readonly number[]; returns: number }>>(
    path: string,
    symbols: S,
  ): { symbols: { [K in keyof S]: (...args: (number | bigint | Pointer)[]) => number | bigint | Pointer } };
}
