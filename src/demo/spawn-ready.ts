/** Starting helper processes that announce themselves with "ready" on stdout. */
import { spawn, type ChildProcess } from 'node:child_process';

/**
 * Spawns `cmd args` (an argument vector, no shell) and resolves once it
 * prints "ready"; rejects if it exits first. `track` sees the child at once,
 * so whoever owns it can kill it even while it starts.
 */
export async function spawnUntilReady(cmd: string, args: readonly string[], what: string, track: (child: ChildProcess) => void, stderr: 'ignore' | 'inherit' = 'ignore'): Promise<ChildProcess> {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', stderr] });
  track(child);
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`${what} exited ${code} before it was ready`)));
  });
  return child;
}
