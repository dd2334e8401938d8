#!/usr/bin/env node
/**
 * The kubenetprobe command. One error hierarchy becomes exit codes and
 * messages here, in one place: a KubeNetProbeError prints its message and
 * hint, anything else is a bug and prints its stack.
 */
import { Command } from 'commander';
import { KubeNetProbeError } from '../errors.js';
import { formatChecks, runChecks } from './doctor.js';

const program = new Command()
  .name('kubenetprobe')
  .description('eBPF network monitor for Kubernetes nodes')
  .showHelpAfterError();

program
  .command('doctor')
  .description('check privileges, kernel, BTF, bpffs, TCX, ring buffers, libbpf, memlock and XDP per interface; exit 1 when the agent cannot run')
  .option('-o, --output <format>', 'table or json', 'table')
  .action(async (opts: { output: string }) => {
    if (opts.output !== 'table' && opts.output !== 'json') throw new KubeNetProbeError('INVALID_ARGUMENT', `--output must be table or json, got ${opts.output}`);
    const checks = await runChecks();
    process.stdout.write(opts.output === 'json' ? `${JSON.stringify(checks)}\n` : `${formatChecks(checks)}\n`);
    process.exitCode = checks.some((c) => c.status === 'fail') ? 1 : 0;
  });

program.parseAsync().catch((err: unknown) => {
  if (err instanceof KubeNetProbeError) {
    process.stderr.write(`kubenetprobe: ${err.message}\n`);
    process.exitCode = 2;
  } else {
    console.error(err);
    process.exitCode = 70;
  }
});
