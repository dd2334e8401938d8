/**
 * The agent's one allocator setting. Each pipeline cycle reads the flow
 * table into buffers of its own (14 MB at 100 k flows, 140 MB at 1 M) and
 * drops the last cycle's. glibc serves such blocks with mmap, but after the
 * first one is freed it raises its mmap threshold (up to 32 MB) and serves
 * the next from the heap, which it rarely gives back: RSS then holds a
 * cycle's worth of freed buffers. Fixing the threshold keeps large blocks
 * on mmap, so freeing one returns it to the kernel at once (measured with
 * bench/agent-pipeline.ts: 100 k flows, RSS between cycles 145-156 MB
 * before, 95-141 MB after).
 *
 * Process-wide, so the agent sets it, not the library.
 */
import { libc } from '../ffi/native.js';

const M_MMAP_THRESHOLD = -3;
const ONE_MIB = 1 << 20;

let done = false;

/** Serve blocks of 1 MiB and more with mmap, always. Safe to call again; false where libc refused. */
export function keepLargeBuffersOnMmap(): boolean {
  if (done) return true;
  // glibc returns 1 on success, 0 on error.
  done = (libc.mallopt(M_MMAP_THRESHOLD, ONE_MIB) as number) === 1;
  return done;
}
