/** Flow keys for the tests that build evicted flows by hand. */
import { FLOW_KEY_BYTES, FLOW_KEY_WORDS } from '../../src/monitor/flow-key-index.js';

/** The 11 words of a key given as bytes (a copy). */
export function keyWordsOf(k: Uint8Array): Uint32Array {
  const w = new Uint32Array(FLOW_KEY_WORDS);
  new Uint8Array(w.buffer).set(k.subarray(0, FLOW_KEY_BYTES));
  return w;
}
