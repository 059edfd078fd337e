// Bench for -t files: sneakpeek -t files --chroot vs docker diff vs find UPPERDIR, side by side
// in one run, on real containers with 10k and 100k changed files. Medians of N runs, ratios,
// and sneakpeek's peak RSS.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { docker, dockerTry, importImage, makeRootfs } from '../test/helpers/docker.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const TSX = path.join(ROOT, 'node_modules/.bin/tsx');
const SNEAKPEEK = path.join(ROOT, 'bin/sneakpeek'); // the launcher cron and systemd run
const IMAGE = 'sneakpeek-bench/files:1';
const IMAGE_FILES = 5000; // /usr/share/bench/D/F.txt, 50 dirs × 100

export function buildImage(): void {
  if (dockerTry('image', 'inspect', IMAGE).status === 0) return;
  const extra: Record<string, string> = {};
  for (let i = 0; i < IMAGE_FILES; i++) extra[`usr/share/bench/${Math.floor(i / 100)}/${i % 100}.txt`] = `image file ${i}\n`;
  const dir = makeRootfs(extra);
  try {
    importImage(dir, IMAGE);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A container with `added` new files (in dirs of 100), `touched` modified and `removed` deleted image files. */
export function makeContainer(name: string, added: number, touched: number, removed: number): void {
  dockerTry('rm', '-f', name);
  docker('run', '-d', '--network', 'none', '--name', name, IMAGE, 'sleep', '100000');
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'sp-bench-'));
  try {
    for (let i = 0; i < added; i++) {
      const d = path.join(tmp, `srv/new/${Math.floor(i / 1000)}/${Math.floor(i / 100) % 10}`);
      if (i % 100 === 0) mkdirSync(d, { recursive: true });
      writeFileSync(path.join(d, `${i}.dat`), String(i));
    }
    const tar = spawnSync('tar', ['-C', tmp, '-c', 'srv'], { maxBuffer: 1 << 30 });
    execFileSync('docker', ['exec', '-i', name, 'tar', '-x', '-C', '/'], { input: tar.stdout, maxBuffer: 1 << 30 });
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  // Image files: modify the first `touched`, delete the last `removed`.
  const files = (from: number, n: number) => Array.from({ length: n }, (_, k) => `/usr/share/bench/${Math.floor((from + k) / 100)}/${(from + k) % 100}.txt`);
  const script = (cmd: string, list: string[]) => `for f in ${list.join(' ')}; do ${cmd}; done`;
  for (let i = 0; i < touched; i += 500) docker('exec', name, 'sh', '-c', script('echo x >> "$f"', files(i, Math.min(500, touched - i))));
  for (let i = 0; i < removed; i += 500) docker('exec', name, 'sh', '-c', `rm -f ${files(IMAGE_FILES - removed + i, Math.min(500, removed - i)).join(' ')}`);
}

function timeIt(argv: string[], runs: number): { median: number; out: Buffer } {
  const times: number[] = [];
  let out = Buffer.alloc(0);
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    const r = spawnSync(argv[0]!, argv.slice(1), { maxBuffer: 1 << 30, env: { ...process.env, SNEAKPEEK_CONFIG: path.join(ROOT, 'test/fixtures/test.config.yaml') } });
    const dt = Number(process.hrtime.bigint() - t0) / 1e9;
    if (r.status !== 0) throw new Error(`${argv.join(' ')} failed: ${r.stderr}`);
    times.push(dt);
    out = r.stdout;
  }
  times.sort((a, b) => a - b);
  return { median: times[Math.floor(times.length / 2)]!, out };
}

/** Peak RSS (MB) of sneakpeek running in-process under tsx, as the CLI does. */
function peakRss(inspect: string): number {
  const probe = `import { main } from ${JSON.stringify(path.join(ROOT, 'scripts/sneakpeek.ts'))};
import { Writable } from 'node:stream';
const sink = new Writable({ write(_c, _e, cb) { cb(); } });
const code = await main(['-t', 'files', '--chroot', '-f', ${JSON.stringify(inspect)}], { stdout: sink, stderr: process.stderr, stdin: process.stdin, env: process.env });
process.stdout.write(String(process.resourceUsage().maxRSS / 1024) + ' ' + code);`;
  const file = path.join(ROOT, 'bench', `.rss-probe-${process.pid}.ts`);
  writeFileSync(file, probe);
  try {
    const out = execFileSync(TSX, [file], { encoding: 'utf8' }).trim().split(' ');
    if (out[1] !== '0') throw new Error('sneakpeek failed in the RSS probe');
    return Number(out[0]);
  } finally {
    rmSync(file, { force: true });
  }
}

export interface FilesBenchRow {
  label: string;
  changes: number;
  sneakpeek: number;
  dockerDiff: number;
  find: number;
  findStat: number;
  rssMb: number;
}

export function benchFiles(runs = 5, log: (s: string) => void = (s) => process.stderr.write(`${s}\n`)): FilesBenchRow[] {
  buildImage();
  const rows: FilesBenchRow[] = [];
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'sp-bench-inspect-'));
  for (const [label, added, touched, removed] of [['10k', 9000, 500, 500], ['100k', 95000, 2500, 2500]] as const) {
    const name = `sp-bench-files-${label}`;
    log(`bench: preparing ${label} container (${added} new, ${touched} modified, ${removed} deleted files)`);
    makeContainer(name, added, touched, removed);
    try {
      const inspect = path.join(tmp, `${name}.json`);
      writeFileSync(inspect, docker('inspect', name));
      const upper = docker('inspect', '-f', '{{.GraphDriver.Data.UpperDir}}', name);
      log(`bench: timing ${label} (${runs} runs each)`);
      const sp = timeIt([SNEAKPEEK, '-t', 'files', '--chroot', '-f', inspect], runs);
      const dd = timeIt(['docker', 'diff', name], runs);
      const fd = timeIt(['find', upper], runs);
      // find that also lstat()s every entry: the floor of any walk that compares metadata.
      const fs = timeIt(['find', upper, '-printf', '%m %s %T@\\n'], runs);
      const ours = sp.out.toString('latin1').split('\n').filter(Boolean).sort();
      const theirs = dd.out.toString('latin1').split('\n').filter(Boolean).sort();
      if (ours.join('\n') !== theirs.join('\n')) throw new Error(`${label}: sneakpeek and docker diff disagree`);
      rows.push({ label, changes: ours.length, sneakpeek: sp.median, dockerDiff: dd.median, find: fd.median, findStat: fs.median, rssMb: peakRss(inspect) });
    } finally {
      dockerTry('rm', '-f', name);
    }
  }
  rmSync(tmp, { recursive: true, force: true });
  return rows;
}

export function filesTable(rows: FilesBenchRow[]): string {
  const f = (s: number) => `${s.toFixed(3)} s`;
  const lines = [
    '| upper dir | changes | sneakpeek -t files --chroot | docker diff | find UPPERDIR | find UPPERDIR -printf (lstat) | vs docker diff | vs find | vs find -printf | sneakpeek peak RSS |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of rows)
    lines.push(`| ${r.label} | ${r.changes} | ${f(r.sneakpeek)} | ${f(r.dockerDiff)} | ${f(r.find)} | ${f(r.findStat)} | ${(r.sneakpeek / r.dockerDiff).toFixed(2)}× | ${(r.sneakpeek / r.find).toFixed(2)}× | ${(r.sneakpeek / r.findStat).toFixed(2)}× | ${r.rssMb.toFixed(0)} MB |`);
  return lines.join('\n');
}
