/**
 * The per-flow state of the accounter, the mirror and a batch read's sums is
 * kept in typed arrays that grow as the table does; this is how they grow.
 */

/** A typed array (not a Buffer: its constructor is deprecated as a function of a length). */
interface Growable {
  readonly length: number;
  set(array: ArrayLike<number>): void;
}

/** A copy of `a` with room for `length` elements; those past `a`'s end are zero. */
export function resized<A extends Growable>(a: A, length: number): A {
  const b = new (a.constructor as new (length: number) => A)(length);
  b.set(a as unknown as ArrayLike<number>);
  return b;
}
