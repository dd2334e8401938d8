/** Where the package's own files are, wherever it is installed or built to. */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | undefined;

export function packageRoot(): string {
  if (root) return root;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'kubenetprobe') {
      root = dir;
      return dir;
    }
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find the kubenetprobe package root');
    dir = up;
  }
}

/** The built-in kernel object (built by scripts/build-bpf.sh). */
export function builtinObjectPath(): string {
  return join(packageRoot(), 'build', 'bpf', 'monitor.bpf.o');
}
