// Bench for -t files: `bin/sneakpeek -t files --chroot` against `docker diff`, side by side in one
// run, on real containers: a few changes on images of 50,000 and 200,000 files (sneakpeek's time
// follows the changes, docker diff's the image), and 10k / 100k changes on a small image. Medians
// of N runs, ratios, sneakpeek's peak RSS (/usr/bin/time), its output checked equal to docker
// diff's; and per case where sneakpeek's time goes:
//   start-up  the tool up to the node script (bin/sneakpeek … --dry-run: node, the bundle, the
//             config, the inspect file, the script)
//   walk      the node script alone (`sh -s`, its answer to a file): inspect, list, sort
//   transfer  the answer's size, and the time to read it through a pipe (a local run; over ssh
//             add the network)
//   diff      the answer through the tool's own reader (records → ChangeComputer → lines), in a
//             fresh process (bench/diff-probe.ts): cold, as in a real run
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { docker, dockerTry, makeRootfs } from '../test/helpers/docker.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SNEAKPEEK = path.join(ROOT, 'bin/sneakpeek'); // the launcher cron and systemd run
const CONFIG = path.join(ROOT, 'test/fixtures/test.config.yaml');
const TIME = '/usr/bin/time';

/** An image of busybox plus `files` files, 100 a directory, 25 directories a group: usr/lib/bench/gG/dD/fN.txt. */
export function buildImage(files: number): string {
  const image = `sneakpeek-bench/files-${files}:1`;
  if (dockerTry('image', 'inspect', image).status === 0) return image;
  const dir = makeRootfs();
  try {
    for (let i = 0; i < files; i += 100) {
      const d = path.join(dir, benchDir(i));
      mkdirSync(d, { recursive: true });
      for (let k = i; k < Math.min(files, i + 100); k++) writeFileSync(path.join(d, `f${k}.txt`), `image file ${k}\n`);
    }
    // Streamed: a 200,000-file tar does not fit a child's output buffer.
    execFileSync('sh', ['-c', 'tar -C "$1" -c . | docker import - "$2" >/dev/null', 'sh', dir, image], { stdio: 'inherit' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return image;
}

const benchDir = (i: number) => `usr/lib/bench/g${Math.floor(i / 2500)}/d${Math.floor(i / 100) % 25}`;
const benchFile = (i: number) => `/${benchDir(i)}/f${i}.txt`;

interface Case {
  label: string;
  imageFiles: number;
  added: number;
  touched: number;
  removed: number;
}

/** A container with `added` new files (dirs of 100 under /srv/new), `touched` image files appended to, `removed` deleted. */
export function makeContainer(name: string, image: string, c: Case): void {
  dockerTry('rm', '-f', name);
  docker('run', '-d', '--network', 'none', '--name', name, image, 'sleep', '100000');
  if (c.added) {
    const tmp = mkdtempSync(path.join(os.tmpdir(), 'sp-bench-'));
    try {
      for (let i = 0; i < c.added; i++) {
        const d = path.join(tmp, `srv/new/${Math.floor(i / 1000)}/${Math.floor(i / 100) % 10}`);
        if (i % 100 === 0) mkdirSync(d, { recursive: true });
        writeFileSync(path.join(d, `${i}.dat`), String(i));
      }
      execFileSync('sh', ['-c', 'tar -C "$1" -c srv | docker exec -i "$2" tar -x -C /', 'sh', tmp, name]);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }
  // Image files spread evenly over the image (so over as many of its directories as they can be);
  // the deleted ones next to the modified ones, never the same.
  const spread = (n: number, offset: number) => Array.from({ length: n }, (_, k) => benchFile(Math.floor((k * c.imageFiles) / n) + offset));
  const run = (cmd: string, list: string[]) => {
    for (let i = 0; i < list.length; i += 500) docker('exec', name, 'sh', '-c', `for f in ${list.slice(i, i + 500).join(' ')}; do ${cmd}; done`);
  };
  run('echo x >> "$f"', spread(c.touched, 0));
  run('rm -f "$f"', spread(c.removed, 1));
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function timeIt(argv: string[], runs: number, env: NodeJS.ProcessEnv = {}): { median: number; out: Buffer } {
  const times: number[] = [];
  let out: Buffer = Buffer.alloc(0);
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    const r = spawnSync(argv[0]!, argv.slice(1), { maxBuffer: 1 << 30, env: { ...process.env, SNEAKPEEK_CONFIG: CONFIG, ...env } });
    const dt = Number(process.hrtime.bigint() - t0) / 1e9;
    if (r.status !== 0) throw new Error(`${argv.join(' ')} failed: ${r.stderr}`);
    times.push(dt);
    out = r.stdout;
  }
  return { median: median(times), out };
}

/** Peak RSS (MB) of bin/sneakpeek as a user runs it, by /usr/bin/time. */
function peakRss(argv: string[]): number {
  const r = spawnSync(TIME, ['-f', 'maxrss %M', ...argv], { maxBuffer: 1 << 30, env: { ...process.env, SNEAKPEEK_CONFIG: CONFIG } });
  const m = /maxrss (\d+)/.exec(r.stderr.toString());
  if (r.status !== 0 || !m) throw new Error(`${TIME} ${argv.join(' ')} failed: ${r.stderr}`);
  return Number(m[1]) / 1024;
}

/** Time to read a file through a pipe from another process (what a local node's answer costs to carry). */
async function pipeTime(file: string): Promise<number> {
  const t0 = process.hrtime.bigint();
  await new Promise<void>((resolve, reject) => {
    const c = spawn('cat', [file], { stdio: ['ignore', 'pipe', 'inherit'] });
    c.stdout.on('data', () => {});
    c.on('error', reject);
    c.on('close', () => resolve());
  });
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

/** The answer through the tool's reader (split, diff, format; the lines go nowhere), cold, in a fresh process. */
function diffTime(answerFile: string): { seconds: number; lines: number } {
  const r = spawnSync(process.execPath, ['--import', path.join(ROOT, 'node_modules/tsx/dist/loader.mjs'), path.join(ROOT, 'bench/diff-probe.ts'), answerFile], { encoding: 'utf8' });
  const [seconds, lines] = r.stdout.trim().split(' ').map(Number);
  if (r.status !== 0 || seconds === undefined || lines === undefined) throw new Error(`bench/diff-probe.ts failed: ${r.stderr}`);
  return { seconds, lines };
}

export interface FilesBenchRow {
  label: string;
  imageFiles: number;
  changes: number;
  sneakpeek: number;
  dockerDiff: number;
  rssMb: number;
  startup: number;
  walk: number;
  answerBytes: number;
  imageEntries: number;
  transfer: number;
  diff: number;
}

export const CASES: Case[] = [
  { label: '~100 changes, 50,000-file image', imageFiles: 50_000, added: 60, touched: 15, removed: 15 },
  { label: '~100 changes, 200,000-file image', imageFiles: 200_000, added: 60, touched: 15, removed: 15 },
  { label: '10k changes, 5,000-file image', imageFiles: 5_000, added: 9_000, touched: 500, removed: 500 },
  { label: '100k changes, 5,000-file image', imageFiles: 5_000, added: 95_000, touched: 2_500, removed: 2_500 },
];

export async function benchFiles(runs = 5, log: (s: string) => void = (s) => process.stderr.write(`${s}\n`)): Promise<FilesBenchRow[]> {
  const rows: FilesBenchRow[] = [];
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'sp-bench-files-'));
  try {
    // BENCH_CASES=0,3 runs only those (by index in CASES).
    const pick = process.env.BENCH_CASES?.split(',').map(Number);
    for (const [i, c] of CASES.entries()) {
      if (pick && !pick.includes(i)) continue;
      log(`bench: ${c.label}: image`);
      const image = buildImage(c.imageFiles);
      const name = `sp-bench-files-${i}`;
      log(`bench: ${c.label}: container (${c.added} new, ${c.touched} modified, ${c.removed} deleted files)`);
      makeContainer(name, image, c);
      try {
        const inspect = path.join(tmp, `${name}.json`);
        writeFileSync(inspect, docker('inspect', name));
        log(`bench: ${c.label}: timing (${runs} runs each)`);
        const cmd = [SNEAKPEEK, '-t', 'files', '--chroot', '-f', inspect];
        const script = timeIt([...cmd, '--dry-run'], 1).out.toString('latin1');
        const answerFile = path.join(tmp, `${name}.answer`);
        // Side by side, round by round: sneakpeek, docker diff, then sneakpeek's parts, so that
        // load from elsewhere on the machine falls on all of them alike.
        const t = { sp: [] as number[], dd: [] as number[], startup: [] as number[], walk: [] as number[], transfer: [] as number[], diff: [] as number[] };
        let ours: Buffer = Buffer.alloc(0);
        let theirs: Buffer = Buffer.alloc(0);
        let answer: Buffer = Buffer.alloc(0);
        for (let r = 0; r < runs; r++) {
          const a = timeIt(cmd, 1);
          const b = timeIt(['docker', 'diff', name], 1);
          t.sp.push(a.median);
          t.dd.push(b.median);
          ours = a.out;
          theirs = b.out;
          t.startup.push(timeIt([...cmd, '--dry-run'], 1).median);
          const t0 = process.hrtime.bigint();
          const w = spawnSync('sh', ['-c', 'timeout 600 sh -s > "$1"', 'sh', answerFile], { input: script });
          if (w.status !== 0) throw new Error(`${c.label}: the node script failed: ${w.stderr}`);
          t.walk.push(Number(process.hrtime.bigint() - t0) / 1e9);
          answer = readFileSync(answerFile);
          t.transfer.push(await pipeTime(answerFile));
          const d = diffTime(answerFile);
          if (d.lines !== ours.toString('latin1').split('\n').filter(Boolean).length) throw new Error(`${c.label}: the in-process diff and the tool disagree`);
          t.diff.push(d.seconds);
        }
        const sorted = (b: Buffer) => b.toString('latin1').split('\n').filter(Boolean).sort();
        if (sorted(ours).join('\n') !== sorted(theirs).join('\n')) throw new Error(`${c.label}: sneakpeek and docker diff disagree`);
        const imageEntries = answer.toString('latin1').split('\0').filter((rec) => rec.startsWith('F\t') && !rec.split('\t')[8]!.startsWith('000')).length;
        rows.push({
          label: c.label, imageFiles: c.imageFiles, changes: sorted(ours).length,
          sneakpeek: median(t.sp), dockerDiff: median(t.dd), rssMb: peakRss(cmd),
          startup: median(t.startup), walk: median(t.walk), answerBytes: answer.length, imageEntries, transfer: median(t.transfer), diff: median(t.diff),
        });
        rmSync(answerFile, { force: true });
      } finally {
        dockerTry('rm', '-f', name);
      }
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return rows;
}

export function filesTables(rows: FilesBenchRow[]): string {
  const s = (x: number) => `${x.toFixed(3)} s`;
  const mb = (b: number) => (b >= 1 << 20 ? `${(b / (1 << 20)).toFixed(1)} MB` : `${(b / 1024).toFixed(1)} KB`);
  return [
    '| case | changes | `bin/sneakpeek -t files --chroot` | `docker diff` | sneakpeek / docker diff | sneakpeek peak RSS |',
    '|---|---:|---:|---:|---:|---:|',
    ...rows.map((r) => `| ${r.label} | ${r.changes} | ${s(r.sneakpeek)} | ${s(r.dockerDiff)} | ${(r.sneakpeek / r.dockerDiff).toFixed(2)}× | ${r.rssMb.toFixed(0)} MB |`),
    '',
    'Where sneakpeek\'s time goes (the same cases; see bench/files.ts for what each column times):',
    '',
    '| case | start-up | node-side walk | image entries listed | answer | transfer (pipe) | diff | sum | whole run |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map((r) => `| ${r.label} | ${s(r.startup)} | ${s(r.walk)} | ${r.imageEntries} of ${r.imageFiles.toLocaleString('en-US')}+ | ${mb(r.answerBytes)} | ${s(r.transfer)} | ${s(r.diff)} | ${s(r.startup + r.walk + r.transfer + r.diff)} | ${s(r.sneakpeek)} |`),
  ].join('\n');
}
