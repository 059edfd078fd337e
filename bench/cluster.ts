// Cluster bench: 8 loopback "nodes" (our own sshd on 127.0.0.2-9) × 10 real docker containers
// each, found through the real kubectl (recorded API). Measures a cluster-wide
// `sneakpeek -t files --chroot -A`: wall time and the ssh sessions it opened (sshd's log),
// against the original's way of working: sequential ssh sessions per container (inspect,
// then list the merged dir), here 2 per container.
//
//   npx tsx bench/cluster.ts            # prints a markdown table (BENCH_RUNS=3 by default)
//   import { runClusterBench } from './cluster.ts'   // bench/run.ts calls it
//
// Needs root, docker, openssh-server, kubectl (bash .ci/provision). Cleans up what it made.
import { execFile, spawn } from 'node:child_process';
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { promisify } from 'node:util';
import { pool } from '../lib/io/runner.ts';
import { dockerTry, ensureBusyboxImage } from '../test/helpers/docker.ts';
import { pod, startKube } from '../test/helpers/kube.ts';
import { startSshd, type Sshd } from '../test/helpers/sshd.ts';

const execFileAsync = promisify(execFile);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const NODES = 8;
const PER_NODE = 10;
const PREFIX = 'sp-bench-cluster-';
const CHANGES = 'echo changed > /etc/motd; rm /data/keep.txt; mkdir -p /newdir/a; touch /newdir/a/f /tmp/t; exec sleep 100000';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const total = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);

/** bin/sneakpeek (the launcher cron and systemd run) with `args`: exit code, stdout, stderr. */
function sneakpeek(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(path.join(ROOT, 'bin/sneakpeek'), args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    c.stdout.on('data', (b: Buffer) => out.push(b));
    c.stderr.on('data', (b: Buffer) => err.push(b));
    c.on('close', (code) => resolve({ code: code ?? 1, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }));
  });
}

/** Run argv, resolve with its exit code (stdout discarded). */
function quiet(argv: string[]): Promise<number> {
  return new Promise((resolve) => {
    const c = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'ignore'] });
    c.on('close', (code) => resolve(code ?? 1));
  });
}

/** The original's pattern for one container: one ssh session to inspect it, one more to list its files. */
async function originalStyle(sshd: Sshd, node: string, id: string): Promise<void> {
  const ssh = ['ssh', '-o', 'BatchMode=yes', ...sshd.sshOptions.flatMap((o) => ['-o', o]), '-i', sshd.identityFile, '-p', String(sshd.port), '-l', 'root', node];
  const merged = (await execFileAsync(ssh[0]!, [...ssh.slice(1), `docker inspect -f '{{.GraphDriver.Data.MergedDir}}' ${id}`])).stdout.trim();
  await quiet([...ssh, `find ${merged} -mindepth 1 >/dev/null`]);
}

export interface ClusterBenchRow {
  what: string;
  seconds: number;
  sessions: number;
  perNode: string;
  lines: number;
}

export async function benchCluster(runs = Number(process.env.BENCH_RUNS ?? 3)): Promise<ClusterBenchRow[]> {
  const image = ensureBusyboxImage();
  const nodes = Array.from({ length: NODES }, (_, i) => `127.0.0.${i + 2}`);
  const names = nodes.flatMap((_, n) => Array.from({ length: PER_NODE }, (_, c) => `${PREFIX}${n}-${c}`));
  const ids = new Map<string, string>();
  const sshd = await startSshd({ addresses: nodes });
  let kube: Awaited<ReturnType<typeof startKube>> | undefined;
  try {
    await pool(names, 4, async (name) => {
      dockerTry('rm', '-f', name);
      const { stdout } = await execFileAsync('docker', ['run', '-d', '--network', 'none', '--name', name, image, 'sh', '-c', CHANGES]);
      ids.set(name, stdout.trim());
    });
    // 5 pods of 2 containers per node.
    const pods = nodes.flatMap((ip, n) =>
      Array.from({ length: PER_NODE / 2 }, (_, p) =>
        pod({
          name: `bench-${n}-${p}`,
          namespace: 'bench',
          hostIP: ip,
          containers: [0, 1].map((k) => ({ name: `c${k}`, id: ids.get(`${PREFIX}${n}-${p * 2 + k}`)! })),
        }),
      ),
    );
    kube = await startKube({ pods, namespace: 'bench' });
    const rows: ClusterBenchRow[] = [];
    for (const concurrency of [NODES, 1]) {
      const cfg = sshd.writeConfig({ concurrency }, `bench-${concurrency}.yaml`);
      const times: number[] = [];
      let sessions = new Map<string, number>();
      let lines = 0;
      for (let r = 0; r < runs; r++) {
        const mark = sshd.mark();
        const t0 = performance.now();
        const res = await sneakpeek(['-t', 'files', '--chroot', '-A'], { ...kube.env, SNEAKPEEK_CONFIG: cfg });
        times.push((performance.now() - t0) / 1000);
        if (res.code !== 0) throw new Error(`bench run failed: ${res.stderr.trim().split('\n').pop()}`);
        sessions = sshd.sessions(mark);
        lines = res.stdout.split('\n').filter(Boolean).length;
      }
      rows.push({
        what: `bin/sneakpeek -t files --chroot -A (concurrency ${concurrency})`,
        seconds: median(times),
        sessions: total(sessions),
        perNode: [...new Set(sessions.values())].join('/'),
        lines,
      });
    }
    // One run of the baseline: it takes minutes and varies little.
    const times: number[] = [];
    let sessions = new Map<string, number>();
    for (let r = 0; r < 1; r++) {
      const mark = sshd.mark();
      const t0 = performance.now();
      for (const [i, name] of names.entries()) await originalStyle(sshd, nodes[Math.floor(i / PER_NODE)]!, ids.get(name)!);
      times.push((performance.now() - t0) / 1000);
      sessions = sshd.sessions(mark);
    }
    rows.push({ what: "original's way: 2 sequential ssh sessions per container", seconds: median(times), sessions: total(sessions), perNode: [...new Set(sessions.values())].join('/'), lines: 0 });
    return rows;
  } finally {
    await kube?.close();
    await sshd.stop();
    await pool(names, 8, (name) => quiet(['docker', 'rm', '-f', name]));
  }
}

export function clusterTable(rows: ClusterBenchRow[]): string {
  const head = `${NODES} loopback nodes × ${PER_NODE} containers (real sshd, real docker, real kubectl against a recorded API); median wall time of ${process.env.BENCH_RUNS ?? 3} runs (the original's way: 1 run), sessions counted in sshd's log\n\n| command | wall time | ssh sessions | per node |\n|---|---:|---:|---:|`;
  return [head, ...rows.map((r) => `| ${r.what} | ${r.seconds.toFixed(2)} s | ${r.sessions} | ${r.perNode} |`)].join('\n');
}

/** For bench/run.ts: the markdown table. */
export async function runClusterBench(): Promise<string> {
  return clusterTable(await benchCluster());
}

const isMain = (() => {
  try {
    return realpathSync(process.argv[1] ?? '') === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
})();
if (isMain) process.stdout.write(`${await runClusterBench()}\n`);
