// Transport bench: what a node costs over ssh and through a pod (transport kubectl), on the same
// loopback "nodes" and the same real docker containers. ssh: our own sshd on 127.0.0.2+; kubectl:
// the real kubectl against the API double (test/helpers/kube.ts), whose pods' exec runs on this
// host — once with pods Running at once (the double's floor: kubectl calls only) and once with
// every pod taking 1 s to start (a realistic cached-image start on a real node). Wall times of
// the bin/ launchers (one node process each, start-up included), medians of BENCH_RUNS (5).
//
//   npx tsx bench/transport.ts          # prints markdown tables
//   npm run bench -- transport
//
// Needs root, docker, openssh-server, kubectl (bash .ci/provision). Cleans up what it made.
import { execFile, spawn } from 'node:child_process';
import { realpathSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { pool } from '../lib/io/runner.ts';
import { ROOT } from '../test/helpers/cli.ts';
import { dockerTry, ensureBusyboxImage } from '../test/helpers/docker.ts';
import { pod, startKube, type KubeServer } from '../test/helpers/kube.ts';
import { startSshd } from '../test/helpers/sshd.ts';

const execFileAsync = promisify(execFile);
const NODES = 8;
const PER_NODE = 10;
const PREFIX = 'sp-bench-kubectl-transport-';
const CHANGES = 'echo changed > /etc/motd; rm /data/keep.txt; mkdir -p /newdir/a; touch /newdir/a/f /tmp/t; exec sleep 100000';
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Run bin/<tool>; resolve with wall seconds (throws when it fails). */
function timed(tool: string, args: string[], env: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const c = spawn(path.join(ROOT, 'bin', tool), args, { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    c.stderr.on('data', (d: Buffer) => (err += d.toString()));
    c.on('close', (code) => (code === 0 ? resolve((performance.now() - t0) / 1000) : reject(new Error(`${tool} ${args.join(' ')}: exit ${code}: ${err.trim()}`))));
  });
}

async function medianOf(runs: number, f: () => Promise<number>): Promise<number> {
  const xs: number[] = [];
  for (let i = 0; i < runs; i++) xs.push(await f());
  return median(xs);
}

export interface StepRow {
  step: string;
  ms: number;
}

/** Where one kubectl-transport node's time goes, from the double's own clock (median over runs). */
async function steps(kube: KubeServer, runs: number, env: Record<string, string>, id: string): Promise<StepRow[]> {
  const rows: Record<string, number[]> = { 'create → pod Running seen → exec stream open': [], 'exec: the node script (stream open → delete asked)': [], 'API requests naming the pod (get + watch, exec, delete)': [], 'whole command (bin/get_container_ns, node start-up included)': [] };
  for (let i = 0; i < runs; i++) {
    const mark = kube.events.length;
    const t0 = Date.now();
    await timed('get_container_ns', ['-a', 'node-0', '-n', id], env);
    const ev = kube.events.slice(mark);
    const at = (verb: string) => ev.find((e) => e.verb === verb)!.at;
    const name = ev.find((e) => e.verb === 'create')!.name;
    rows['create → pod Running seen → exec stream open']!.push(at('exec') - at('create'));
    rows['exec: the node script (stream open → delete asked)']!.push(at('delete') - at('exec'));
    rows['API requests naming the pod (get + watch, exec, delete)']!.push(kube.requests.filter((u) => u.includes(name)).length);
    rows['whole command (bin/get_container_ns, node start-up included)']!.push(Date.now() - t0);
  }
  return Object.entries(rows).map(([step, xs]) => ({ step, ms: median(xs) }));
}

export async function benchTransport(runs = Number(process.env.BENCH_RUNS ?? 5)): Promise<string> {
  const image = ensureBusyboxImage();
  const ips = Array.from({ length: NODES }, (_, i) => `127.0.0.${i + 2}`);
  const names = ips.flatMap((_, n) => Array.from({ length: PER_NODE }, (_, c) => `${PREFIX}${n}-${c}`));
  const ids = new Map<string, string>();
  const sshd = await startSshd({ addresses: ips });
  const doubles: KubeServer[] = [];
  try {
    await pool(names, 4, async (name) => {
      dockerTry('rm', '-f', name);
      const { stdout } = await execFileAsync('docker', ['run', '-d', '--network', 'none', '--name', name, image, 'sh', '-c', CHANGES]);
      ids.set(name, stdout.trim());
    });
    const pods = ips.flatMap((ip, n) =>
      Array.from({ length: PER_NODE / 2 }, (_, p) =>
        pod({ name: `bench-${n}-${p}`, namespace: 'bench', nodeName: `node-${n}`, hostIP: ip, containers: [0, 1].map((k) => ({ name: `c${k}`, id: ids.get(`${PREFIX}${n}-${p * 2 + k}`)! })) }),
      ),
    );
    const cfg = sshd.writeConfig({ concurrency: NODES, kubectl: { namespace: 'bench' } }, 'bench-transport.yaml');
    const one = ids.get(`${PREFIX}0-0`)!.slice(0, 12);
    const table: string[] = ['| command | ssh | kubectl, pod Running at once | kubectl, pod start 1 s |', '|---|---:|---:|---:|'];
    const cols: Record<string, number[]> = { one: [], cluster: [] };
    let breakdown: StepRow[] = [];
    // ssh first, then the two doubles
    cols.one!.push(await medianOf(runs, () => timed('get_container_ns', ['-a', ips[0]!, '-n', one], { SNEAKPEEK_CONFIG: cfg })));
    const kubeForSsh = await startKube({ pods, namespace: 'bench' });
    doubles.push(kubeForSsh);
    cols.cluster!.push(await medianOf(runs, () => timed('sneakpeek', ['-t', 'files', '--chroot', '-A'], { ...kubeForSsh.env, SNEAKPEEK_CONFIG: cfg })));
    for (const startMs of [0, 1000]) {
      const kube = await startKube({ pods, namespace: 'bench', startMs });
      doubles.push(kube);
      const env = { ...kube.env, SNEAKPEEK_CONFIG: cfg, SNEAKPEEK_TRANSPORT: 'kubectl' };
      cols.one!.push(await medianOf(runs, () => timed('get_container_ns', ['-a', 'node-0', '-n', one], env)));
      cols.cluster!.push(await medianOf(runs, () => timed('sneakpeek', ['-t', 'files', '--chroot', '-A'], env)));
      if (startMs === 0) breakdown = await steps(kube, runs, env, one);
    }
    const s = (x: number) => `${x.toFixed(2)} s`;
    table.push(`| \`get_container_ns -a NODE -n ID\` (one node, one container) | ${cols.one!.map(s).join(' | ')} |`);
    table.push(`| \`sneakpeek -t files --chroot -A\` (${NODES} nodes × ${PER_NODE} containers, concurrency ${NODES}) | ${cols.cluster!.map(s).join(' | ')} |`);
    const steps_ = ['| one node through a pod, pod Running at once (double clock) | median |', '|---|---:|', ...breakdown.map((r) => `| ${r.step} | ${r.step.startsWith('API requests') ? r.ms : `${r.ms} ms`} |`)];
    return `${table.join('\n')}\n\n${steps_.join('\n')}\n\n(median of ${runs} runs, ${new Date().toISOString().slice(0, 10)})`;
  } finally {
    for (const k of doubles) await k.close();
    await sshd.stop();
    await pool(names, 8, async (name) => void dockerTry('rm', '-f', name));
  }
}

const isMain = (() => {
  try {
    return realpathSync(process.argv[1] ?? '') === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
})();
if (isMain) process.stdout.write(`${await benchTransport()}\n`);
