// Start-up of the tools, side by side in one run: `npm run bench:startup` (`-- startup` or
// `-- imports` for one table). Wall time of whole processes, medians of BENCH_RUNS runs
// (default 10, at least 5), every command once per round so that load from elsewhere on the
// machine hits them all alike. Needs no root, no docker (one row asks docker for a container
// that does not exist; without docker it fails as fast).
//
//   startup  node -e 0 · bin/<tool> --help (warm cache, freshness check included) · the old
//            launcher (node --import tsx's loader) · npx tsx scripts/<tool>.ts --help · a run that
//            reads config and starts a process · a cold build · the freshness check alone
//   imports  what costs what: tsx's loader, yargs / yaml / zx from node_modules and bundled,
//            each lib module bundled (as bin/run runs it) and through tsx (cached / transformed)
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const TOOLS = ['sneakpeek', 'get_all_containers', 'get_container_ns', 'bpftool_map_container_ns'];
const RUNS = Math.max(5, Number(process.env.BENCH_RUNS ?? 10));
const LOADER = path.join(ROOT, 'node_modules/tsx/dist/loader.mjs');
const NODE = process.execPath;
const CONFIG = path.join(ROOT, 'test/fixtures/test.config.yaml');

interface Cmd {
  label: string;
  cmd: string;
  args: string[];
  env?: Record<string, string>;
  /** Expected exit status (default 0). */
  status?: number;
  cwd?: string;
}

function runOnce(c: Cmd): { ms: number; stdout: string } {
  const t = process.hrtime.bigint();
  const r = spawnSync(c.cmd, c.args, {
    cwd: c.cwd ?? ROOT,
    env: { ...process.env, SNEAKPEEK_CONFIG: CONFIG, ...c.env },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 64 << 20,
  });
  const ms = Number(process.hrtime.bigint() - t) / 1e6;
  if (r.status !== (c.status ?? 0)) throw new Error(`${c.label}: exit ${r.status} (expected ${c.status ?? 0}): ${r.stderr.slice(0, 500)}`);
  return { ms, stdout: r.stdout };
}

/** Every command once per round, RUNS rounds; times in ms per label. */
function measure(cmds: Cmd[], runs = RUNS): Map<string, number[]> {
  const times = new Map(cmds.map((c) => [c.label, [] as number[]]));
  for (let i = 0; i < runs; i++) for (const c of cmds) times.get(c.label)!.push(runOnce(c).ms);
  return times;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const ms = (x: number) => `${x.toFixed(1)} ms`;

function table(head: string[], rows: string[][]): string {
  const right = (i: number) => i > 0;
  return [
    `| ${head.join(' | ')} |`,
    `|${head.map((_, i) => (right(i) ? '---:' : '---')).join('|')}|`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');
}

/** A fresh SNEAKPEEK_CACHE_DIR with every tool built and published (builds wait out the 2 s rule). */
function warmCache(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sp-bench-startup-'));
  for (const tool of TOOLS) {
    for (let i = 0; ; i++) {
      runOnce({ label: tool, cmd: path.join(ROOT, 'bin', tool), args: ['--help'], env: { SNEAKPEEK_CACHE_DIR: dir } });
      if (readdirSync(dir).includes(`${tool}.json`)) break;
      if (i === 5) throw new Error(`bin/${tool}: no cache published (a source keeps changing?)`);
      spawnSync('sleep', ['1']);
    }
  }
  return dir;
}

/** What bin/run does before it runs a tool from the cache: read the manifest, stat every input. */
function freshnessCheck(dir: string, tool: string): { inputs: number; ms: number } {
  const times: number[] = [];
  let inputs = 0;
  for (let i = 0; i < 50; i++) {
    const t = process.hrtime.bigint();
    const m = JSON.parse(readFileSync(path.join(dir, `${tool}.json`), 'utf8')) as { inputs: [string, ...number[]][] };
    for (const [file] of m.inputs) statSync(file, { throwIfNoEntry: false });
    times.push(Number(process.hrtime.bigint() - t) / 1e6);
    inputs = m.inputs.length;
  }
  return { inputs, ms: median(times) };
}

export function startupTables(): string {
  const cache = warmCache();
  try {
    const binEnv = { SNEAKPEEK_CACHE_DIR: cache };
    const base: Cmd = { label: 'node -e 0', cmd: NODE, args: ['-e', '0'] };
    const bin = (tool: string): Cmd => ({ label: `bin/${tool} --help`, cmd: path.join(ROOT, 'bin', tool), args: ['--help'], env: binEnv, cwd: '/' });
    const old = (tool: string): Cmd => ({ label: `node --import tsx/loader scripts/${tool}.ts --help (old bin/run)`, cmd: NODE, args: ['--import', LOADER, path.join(ROOT, 'scripts', `${tool}.ts`), '--help'] });
    const npx = (tool: string): Cmd => ({ label: `npx tsx scripts/${tool}.ts --help`, cmd: 'npx', args: ['tsx', `scripts/${tool}.ts`, '--help'] });
    for (const tool of TOOLS) {
      const a = runOnce(bin(tool)).stdout;
      const b = runOnce(npx(tool)).stdout;
      if (a !== b || !a.startsWith(`${tool} — `)) throw new Error(`bin/${tool} --help and npx tsx scripts/${tool}.ts --help differ`);
    }
    const help = [base, ...TOOLS.map(bin), ...TOOLS.map(old), ...TOOLS.map(npx)];
    const helpTimes = measure(help);
    const b0 = median(helpTimes.get(base.label)!);
    const rows = help.map((c) => {
      const t = helpTimes.get(c.label)!;
      return [`\`${c.label}\``, ms(median(t)), `${(median(t) / b0).toFixed(2)}×`, ms(Math.min(...t))];
    });

    // Work beyond --help: config read (yaml) and, for get_container_ns, a process through zx.
    const pods = path.join(cache, 'pods.json');
    writeFileSync(pods, JSON.stringify({ kind: 'PodList', apiVersion: 'v1', items: [] }));
    const work = (tool: string, args: string[], status: number): Cmd[] => [
      { label: `bin/${tool} ${args.join(' ')}`, cmd: path.join(ROOT, 'bin', tool), args, env: binEnv, status },
      { label: `node --import tsx/loader scripts/${tool}.ts ${args.join(' ')}`, cmd: NODE, args: ['--import', LOADER, path.join(ROOT, 'scripts', `${tool}.ts`), ...args], status },
    ];
    const works = [base, ...work('get_all_containers', ['--pods-file', pods], 0), ...work('get_container_ns', ['-n', 'sp-startup-bench-nosuch'], 1)];
    const workTimes = measure(works);
    const workRows = works.slice(1).map((c) => {
      const t = workTimes.get(c.label)!;
      return [`\`${c.label.replace(pods, 'PODS.json')}\``, ms(median(t)), `${(median(t) / median(workTimes.get(base.label)!)).toFixed(2)}×`];
    });

    // A cold cache: the first run after an edit pays the build.
    const coldRows = TOOLS.map((tool) => {
      const t: number[] = [];
      for (let i = 0; i < 3; i++) {
        const dir = mkdtempSync(path.join(os.tmpdir(), 'sp-bench-cold-'));
        try {
          t.push(runOnce({ ...bin(tool), env: { SNEAKPEEK_CACHE_DIR: dir } }).ms);
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      }
      const check = freshnessCheck(cache, tool);
      return [`\`bin/${tool}\``, ms(median(t)), String(check.inputs), `${(check.ms * 1000).toFixed(0)} µs`];
    });

    return [
      `### --help (median of ${RUNS} runs; ratio to \`node -e 0\`; bin/ from a warm cache, cwd /)`,
      '',
      table(['command', 'median', 'vs node -e 0', 'min'], rows),
      '',
      `### a little work (median of ${RUNS} runs)`,
      '',
      table(['command', 'median', 'vs node -e 0'], workRows),
      '',
      '### the cache',
      '',
      table(['tool', 'cold run (build + run, median of 3)', 'inputs checked', 'freshness check (in-process, median of 50)'], coldRows),
      '',
    ].join('\n');
  } finally {
    rmSync(cache, { recursive: true, force: true });
  }
}

/** `source` (an ES module, imports resolved from the repo) bundled as bin/run bundles: split, ESM. */
async function bundle(dir: string, name: string, source: string): Promise<string> {
  const esbuild = createRequire(path.join(ROOT, 'node_modules/tsx/package.json'))('esbuild') as typeof import('esbuild');
  const entry = path.join(dir, `${name}.ts`);
  writeFileSync(entry, source);
  await esbuild.build({
    entryPoints: [entry],
    absWorkingDir: ROOT,
    nodePaths: [path.join(ROOT, 'node_modules')], // the entry sits in a temp dir
    outdir: path.join(dir, name),
    entryNames: '[name]',
    outExtension: { '.js': '.mjs' },
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: `node${process.versions.node}`,
    logLevel: 'silent',
    banner: { js: "import { createRequire as __c } from 'node:module'; const require = __c(import.meta.url);" },
  });
  return path.join(dir, name, `${name}.mjs`);
}

/** Each command prints the ms its import took (timed inside the process: no start-up noise). */
function measureInside(cmds: Cmd[], runs = RUNS): Map<string, number> {
  const times = new Map(cmds.map((c) => [c.label, [] as number[]]));
  for (let i = 0; i < runs; i++) for (const c of cmds) times.get(c.label)!.push(Number(runOnce(c).stdout));
  return new Map([...times].map(([k, v]) => [k, median(v)]));
}

async function importTables(): Promise<string> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sp-bench-imports-'));
  try {
    const timed = (spec: string) =>
      ['--input-type=module', '-e', `const t = performance.now(); globalThis.m = await import(${JSON.stringify(spec)}); process.stdout.write(String(performance.now() - t));`];
    const base: Cmd = { label: 'node -e 0', cmd: NODE, args: ['-e', '0'] };
    const tsxBase: Cmd = { label: 'node --import tsx/loader -e 0', cmd: NODE, args: ['--import', LOADER, '-e', '0'] };
    const proc = measure([base, tsxBase]);
    const loaderCost = median(proc.get(tsxBase.label)!) - median(proc.get(base.label)!);

    const PKGS = ['yargs', 'yaml', 'zx', 'zx/core'];
    const pkgCmds: Cmd[] = [];
    // The floor: the first import() of any module at all (loader, read, compile).
    const emptyOut = await bundle(dir, 'empty', 'export {};\n');
    const empty = path.join(dir, 'empty.ts');
    const floor: Cmd[] = [
      { label: 'empty bundled', cmd: NODE, args: timed(pathToFileURL(emptyOut).href) },
      { label: 'empty tsx', cmd: NODE, args: ['--import', LOADER, ...timed(pathToFileURL(empty).href)] },
      { label: 'empty tsx, no cache', cmd: NODE, args: ['--import', LOADER, ...timed(pathToFileURL(empty).href)], env: { TSX_DISABLE_CACHE: '1' } },
    ];
    for (const p of PKGS) {
      pkgCmds.push({ label: `${p} node_modules`, cmd: NODE, args: timed(p), cwd: ROOT });
      const out = await bundle(dir, p.replace('/', '-'), `import * as m from '${p}'; (globalThis as any).m = m;`);
      pkgCmds.push({ label: `${p} bundled`, cmd: NODE, args: timed(pathToFileURL(out).href) });
    }
    const libs = (readdirSync(path.join(ROOT, 'lib'), { recursive: true }) as string[]).filter((f) => f.endsWith('.ts')).sort();
    const libCmds: Cmd[] = [];
    for (const f of libs) {
      const url = pathToFileURL(path.join(ROOT, 'lib', f)).href;
      const out = await bundle(dir, `lib-${f.replace(/\.ts$/, '').replaceAll('/', '-')}`, `import * as m from ${JSON.stringify(url.slice('file://'.length))}; (globalThis as any).m = m;`);
      libCmds.push({ label: `${f} bundled`, cmd: NODE, args: timed(pathToFileURL(out).href) });
      libCmds.push({ label: `${f} tsx`, cmd: NODE, args: ['--import', LOADER, ...timed(url)] });
      libCmds.push({ label: `${f} tsx, no cache`, cmd: NODE, args: ['--import', LOADER, ...timed(url)], env: { TSX_DISABLE_CACHE: '1' } });
    }
    const t = measureInside([...floor, ...pkgCmds, ...libCmds]);
    const at = (label: string) => ms(t.get(label)!);
    return [
      `### what costs what (median of ${RUNS} runs)`,
      '',
      `tsx's loader, registered and nothing imported: +${loaderCost.toFixed(1)} ms over \`node -e 0\` (${ms(median(proc.get(base.label)!))}).`,
      'The rest is the time of the `await import()` itself, measured inside the process.',
      '',
      table(['package', 'from node_modules (ESM)', 'bundled (as bin/run runs it)'], PKGS.map((p) => [p, at(`${p} node_modules`), at(`${p} bundled`)])),
      '',
      table(
        ['lib module, with what it imports', 'bundled (as bin/run)', 'tsx, transform cached', 'tsx, transformed (TSX_DISABLE_CACHE=1)'],
        [
          ['(an empty module: the floor of any import)', at('empty bundled'), at('empty tsx'), at('empty tsx, no cache')],
          ...libs.map((f) => [`lib/${f}`, at(`${f} bundled`), at(`${f} tsx`), at(`${f} tsx, no cache`)]),
        ],
      ),
      '',
    ].join('\n');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const isMain = (() => {
  try {
    return realpathSync(process.argv[1] ?? '') === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
})();
if (isMain) {
  const only = process.argv[2];
  process.stdout.write(`## start-up (node ${process.version}, ${os.cpus().length} CPUs, ${new Date().toISOString().slice(0, 10)})\n\n`);
  if (only === undefined || only === 'startup') process.stdout.write(`${startupTables()}\n`);
  if (only === undefined || only === 'imports') process.stdout.write(`${await importTables()}\n`);
}
