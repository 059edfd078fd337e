// npm run bench: every benchmark, side by side with the reference tools, as markdown tables.
// Needs root and a running docker engine (bash .ci/provision); sshd for the cluster bench.
//   npm run bench                 everything (what the README's Performance tables come from)
//   npm run bench -- files        -t files against docker diff, and where the time goes
//   npm run bench -- startup      bin/<tool> --help against node -e 0 (npm run bench:startup: more)
//   npm run bench -- cluster      a cluster-wide run against the original's way
//   npm run bench -- transport    the ssh and kubectl transports side by side
import os from 'node:os';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchFiles, filesTables } from './files.ts';

const only = process.argv[2];
const runs = Number(process.env.BENCH_RUNS ?? 5);
const want = (part: string) => only === undefined || only === part;

const docker = spawnSync('docker', ['version', '-f', '{{.Server.Version}}'], { encoding: 'utf8' }).stdout.trim();
const fs = spawnSync('findmnt', ['-no', 'FSTYPE', '-T', '/var/lib/docker'], { encoding: 'utf8' }).stdout.trim();
process.stdout.write(`# npm run bench, ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC\n\n`
  + `${os.cpus().length} × ${os.cpus()[0]?.model.trim()}, ${Math.round(os.totalmem() / 2 ** 30)} GiB; ${os.type()} ${os.release()}; `
  + `node ${process.version}; docker ${docker} (overlay2 on ${fs}). Medians of ${runs} runs. `
  + `Load average at the start: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')} (the machine is shared).\n\n`);

if (want('files')) process.stdout.write(`## -t files\n\n${filesTables(await benchFiles(runs))}\n\n`);

if (want('startup')) {
  const { startupTables } = await import('./startup.ts');
  process.stdout.write(`## start-up\n\n${startupTables()}\n`);
}

if (want('cluster')) {
  const { runClusterBench } = await import('./cluster.ts');
  process.stdout.write(`## cluster-wide\n\n${await runClusterBench()}\n`);
}

const transport = path.join(path.dirname(fileURLToPath(import.meta.url)), 'transport.ts');
if (want('transport') && existsSync(transport)) {
  const mod = (await import(transport)) as { benchTransport?: () => Promise<string> };
  if (mod.benchTransport) process.stdout.write(`## transports: ssh and kubectl\n\n${await mod.benchTransport()}\n`);
}

process.stdout.write(`Load average at the end: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}.\n`);
