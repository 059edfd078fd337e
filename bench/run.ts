// npm run bench: every benchmark, side by side with the reference tools, as markdown tables.
// Needs root and a running docker engine (bash .ci/provision); sshd for the cluster bench.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchFiles, filesTable } from './files.ts';

// `npm run bench -- files`, `-- cluster` or `-- transport` runs one of them.
const only = process.argv[2];
const runs = Number(process.env.BENCH_RUNS ?? 5);
if (only === undefined || only === 'files')
  process.stdout.write(`## -t files (median of ${runs} runs; ${new Date().toISOString().slice(0, 10)})\n\n${filesTable(benchFiles(runs))}\n\n`);

const cluster = path.join(path.dirname(fileURLToPath(import.meta.url)), 'cluster.ts');
if ((only === undefined || only === 'cluster') && existsSync(cluster)) {
  const mod = (await import(cluster)) as { runClusterBench?: () => Promise<string> };
  if (mod.runClusterBench) process.stdout.write(`## cluster-wide\n\n${await mod.runClusterBench()}\n`);
}

const transport = path.join(path.dirname(fileURLToPath(import.meta.url)), 'transport.ts');
if ((only === undefined || only === 'transport') && existsSync(transport)) {
  const mod = (await import(transport)) as { benchTransport?: () => Promise<string> };
  if (mod.benchTransport) process.stdout.write(`## transports: ssh and kubectl\n\n${await mod.benchTransport()}\n`);
}
