// bin/run's compile cache: a tool runs from a bundle of its sources, and that bundle may never
// be stale, never half-written when runs race, and never needed (no writable cache: tsx).
// Every test works on a copy of the repository (node_modules linked) with its own cache dir,
// so edits never touch the checkout and the checkout's cache is left alone.
import { spawn, spawnSync } from 'node:child_process';
import {
  chmodSync, chownSync, cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/cli.ts';
import { commandWorks, isRoot, missing } from '../helpers/prereq.ts';

const TOOLS = ['sneakpeek', 'get_all_containers', 'get_container_ns', 'bpftool_map_container_ns'];
const BARE = { PATH: `${path.dirname(process.execPath)}:/usr/sbin:/usr/bin:/sbin:/bin` };
// Builds are published only when every input is 2 s older than the build (bin/run's RACY_MS).
const SETTLE_MS = 2100;
const NOBODY = 65534;

// A tool of the test's own: what bin/run must keep of node's module semantics, compared with tsx.
const PROBE = `// sp_probe — prints what a tool sees of itself (launcher-startup.test.ts)
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
const dyn = await import('yaml'); // a CommonJS package, imported dynamically: named exports too
process.stdout.write(JSON.stringify({
  version: 'VERSION-A',
  url: import.meta.url,
  filename: import.meta.filename,
  dirname: import.meta.dirname,
  argv1: process.argv[1],
  args: process.argv.slice(2),
  staticParse: parse('a: 1'),
  dynamicParse: typeof dyn.parse,
  dynamicDefault: typeof dyn.default,
  data: readFileSync(new URL('../probe-data.txt', import.meta.url), 'utf8'),
}) + '\\n');
`;

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const tmps: string[] = [];

function tmpDir(prefix: string): string {
  const d = mkdtempSync(path.join(os.tmpdir(), `sp-startup-${prefix}-`));
  tmps.push(d);
  return d;
}

/** A copy of the repository to edit, with node_modules linked and the probe tool added. */
function repoCopy(): string {
  const dir = tmpDir('repo');
  chmodSync(dir, 0o755); // readable by the unprivileged user of the fallback tests
  for (const e of readdirSync(ROOT)) {
    if (['node_modules', '.git', 'test', 'bench', 'coverage', 'dist'].includes(e)) continue;
    cpSync(path.join(ROOT, e), path.join(dir, e), { recursive: true, verbatimSymlinks: true });
  }
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  writeFileSync(path.join(dir, 'scripts/sp_probe.ts'), PROBE);
  writeFileSync(path.join(dir, 'probe-data.txt'), 'data-1\n');
  symlinkSync('run', path.join(dir, 'bin/sp_probe'));
  return dir;
}

function run(cmd: string, args: string[], env: Record<string, string> = {}, cwd = '/'): Run {
  const r = spawnSync(cmd, args, { cwd, env: { ...BARE, ...env }, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function runAsync(cmd: string, args: string[], env: Record<string, string>): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: '/', env: { ...BARE, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/** What `npx tsx scripts/<tool>.ts` prints, in the copy. */
function viaTsx(repo: string, tool: string, args: string[]): Run {
  const r = spawnSync('npx', ['tsx', `scripts/${tool}.ts`, ...args], { cwd: repo, env: process.env, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The published manifest of a tool in a cache dir (null if none), and its stat for "was it rebuilt". */
function manifest(cache: string, tool: string): { dir: string; inputs: string[][]; mtimeMs: number; ino: number } | null {
  const file = path.join(cache, `${tool}.json`);
  if (!existsSync(file)) return null;
  const st = statSync(file);
  return { ...(JSON.parse(readFileSync(file, 'utf8')) as { dir: string; inputs: string[][] }), mtimeMs: st.mtimeMs, ino: st.ino };
}

let repo: string;
let probeBaseline: Record<string, unknown>;

beforeAll(async () => {
  repo = repoCopy();
  await sleep(SETTLE_MS);
});

afterAll(() => {
  for (const d of tmps.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('bin/run compile cache', () => {
  it('each tool, run from another cwd through a link of the user\'s own, prints what npx tsx scripts/<tool>.ts prints; the second run is a cache hit', () => {
    const cache = tmpDir('cache');
    const links = tmpDir('links');
    for (const tool of TOOLS) {
      symlinkSync(path.join(repo, 'bin', tool), path.join(links, `my-${tool}`));
      const want = viaTsx(repo, tool, ['--help']);
      expect(want.status).toBe(0);
      expect(want.stdout.split('\n')[0]).toMatch(new RegExp(`^${tool} — `));
      const first = run(path.join(links, `my-${tool}`), ['--help'], { SNEAKPEEK_CACHE_DIR: cache }, links);
      expect(first).toEqual({ status: 0, stdout: want.stdout, stderr: '' });
      const built = manifest(cache, tool);
      expect(built, `bin/${tool} published no build`).not.toBeNull();
      expect(built!.inputs.map((i) => i[0])).toContain(path.join(repo, 'scripts', `${tool}.ts`));
      const second = run(path.join(links, `my-${tool}`), ['--help'], { SNEAKPEEK_CACHE_DIR: cache }, links);
      expect(second).toEqual(first);
      const again = manifest(cache, tool)!;
      expect([again.dir, again.ino, again.mtimeMs]).toEqual([built!.dir, built!.ino, built!.mtimeMs]);
    }
  });

  it('a tool sees what it sees under tsx: its own import.meta, argv, a CommonJS package imported statically and dynamically, files beside it', () => {
    const cache = tmpDir('cache');
    const args = ['a', 'b c', '--x=$(touch nope)'];
    const want = spawnSync(path.join(repo, 'node_modules/.bin/tsx'), [path.join(repo, 'scripts/sp_probe.ts'), ...args], { cwd: '/', env: BARE, encoding: 'utf8' });
    expect(want.stderr).toBe('');
    probeBaseline = JSON.parse(want.stdout) as Record<string, unknown>;
    expect(probeBaseline).toMatchObject({
      url: pathToFileURL(path.join(repo, 'scripts/sp_probe.ts')).href,
      argv1: path.join(repo, 'scripts/sp_probe.ts'),
      args,
      staticParse: { a: 1 },
      dynamicParse: 'function',
      data: 'data-1\n',
    });
    for (let i = 0; i < 2; i++) {
      const got = run(path.join(repo, 'bin/sp_probe'), args, { SNEAKPEEK_CACHE_DIR: cache });
      expect(got.stderr).toBe('');
      expect(JSON.parse(got.stdout)).toEqual(probeBaseline);
    }
    expect(manifest(cache, 'sp_probe')).not.toBeNull();
  });

  it('launches at once on a cold cache all succeed and leave one build, no half-written one', async () => {
    const cache = tmpDir('cache');
    const want = run(path.join(repo, 'bin/sneakpeek'), ['--help'], { SNEAKPEEK_CACHE_DIR: tmpDir('cache') });
    expect(want.status).toBe(0);
    const runs = await Promise.all(Array.from({ length: 4 }, () => runAsync(path.join(repo, 'bin/sneakpeek'), ['--help'], { SNEAKPEEK_CACHE_DIR: cache })));
    for (const r of runs) expect(r).toEqual({ status: 0, stdout: want.stdout, stderr: '' });
    const m = manifest(cache, 'sneakpeek');
    expect(m).not.toBeNull();
    expect(readdirSync(cache).sort()).toEqual([m!.dir, 'sneakpeek.json']);
    expect(run(path.join(repo, 'bin/sneakpeek'), ['--help'], { SNEAKPEEK_CACHE_DIR: cache })).toEqual(want);
  });

  it('a cache dir that others may write is not used: the tool still runs (through tsx) and nothing is written there', () => {
    const cache = tmpDir('cache');
    chmodSync(cache, 0o777);
    const r = run(path.join(repo, 'bin/get_container_ns'), ['--help'], { SNEAKPEEK_CACHE_DIR: cache });
    expect(r.status).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^get_container_ns — /);
    expect(readdirSync(cache)).toEqual([]);
  });

  const rootOnly = missing({ 'root (mounts, another user)': isRoot, 'unshare and setpriv (util-linux)': () => commandWorks('setpriv', ['--version']) && commandWorks('unshare', ['--version']) });

  it.skipIf(rootOnly)('a read-only cache dir: the tool runs through tsx, the same output', () => {
    const cache = tmpDir('cache');
    const want = run(path.join(repo, 'bin/get_all_containers'), ['--help'], { SNEAKPEEK_CACHE_DIR: tmpDir('cache') });
    // A read-only bind mount of the cache dir, in a mount namespace of its own (nothing to undo).
    const r = run('unshare', ['-m', 'sh', '-c', 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && touch "$1/w" 2>/dev/null && exit 9; exec "$2" --help', 'sh', cache, path.join(repo, 'bin/get_all_containers')], { SNEAKPEEK_CACHE_DIR: cache });
    expect(r).toEqual({ status: 0, stdout: want.stdout, stderr: '' });
    expect(readdirSync(cache)).toEqual([]);
  });

  it.skipIf(rootOnly)('a user who cannot write the repository builds in their own cache; with no writable cache at all, tsx', () => {
    const home = tmpDir('home');
    chownSync(home, NOBODY, NOBODY);
    const as = (env: Record<string, string>) =>
      run('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', path.join(repo, 'bin/get_container_ns'), '--help'], env);
    const want = run(path.join(repo, 'bin/get_container_ns'), ['--help'], { SNEAKPEEK_CACHE_DIR: tmpDir('cache') });
    expect(as({ HOME: home })).toEqual(want);
    const caches = path.join(home, '.cache/sneakpeek');
    const [mine] = readdirSync(caches);
    expect(statSync(path.join(caches, mine!)).uid).toBe(NOBODY);
    expect(manifest(path.join(caches, mine!), 'get_container_ns')).not.toBeNull();
    expect(as({ HOME: home })).toEqual(want);
    expect(as({ HOME: '/nonexistent' })).toEqual(want);
  });

  it('an edit to a script, a lib module, or a file read at run time shows on the next run', () => {
    const cache = tmpDir('cache');
    const env = { SNEAKPEEK_CACHE_DIR: cache, SNEAKPEEK_CONFIG: path.join(repo, 'sneakpeek.config.yaml') };
    const tool = path.join(repo, 'bin/get_container_ns');
    expect(run(tool, ['--help'], env).status).toBe(0);
    expect(manifest(cache, 'get_container_ns')).not.toBeNull();

    const script = path.join(repo, 'scripts/get_container_ns.ts');
    const scriptText = readFileSync(script, 'utf8');
    writeFileSync(script, `${scriptText}\nprocess.stdout.write('EDITED-SCRIPT\\n');\n`);
    expect(run(tool, ['--help'], env).stdout).toMatch(/\nEDITED-SCRIPT\n$/);

    // A lib module the tool imports statically (whatever lib/ looks like by then).
    const libName = /from '\.\.\/lib\/([\w\/-]+)\.ts'/.exec(scriptText)?.[1];
    expect(libName).toBeDefined();
    const lib = path.join(repo, 'lib', `${libName}.ts`);
    writeFileSync(lib, `${readFileSync(lib, 'utf8')}\nprocess.stderr.write('EDITED-LIB\\n');\n`);
    expect(run(tool, ['--help'], env).stderr).toContain('EDITED-LIB');

    writeFileSync(path.join(repo, 'probe-data.txt'), 'data-2\n');
    expect(JSON.parse(run(path.join(repo, 'bin/sp_probe'), [], env).stdout)).toMatchObject({ data: 'data-2\n' });

    // tracers/*.bt are read at run time from the repository: the program in a dry run is the edited one.
    const bt = path.join(repo, 'tracers/execsnoop.bt');
    const dry = ['-t', 'procmon', '--backend', 'bpftrace', '--dry-run', '-n', 'sp-startup-dry'];
    expect(run(path.join(repo, 'bin/sneakpeek'), dry, env).stdout).not.toContain('EDITED-BT');
    writeFileSync(bt, `${readFileSync(bt, 'utf8')}// EDITED-BT\n`);
    const r = run(path.join(repo, 'bin/sneakpeek'), dry, env);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('// EDITED-BT');
  });

  it('an edit that keeps the size and restores the mtime still shows (ctime); the build after it is kept once 2 s old', async () => {
    const cache = tmpDir('cache');
    const env = { SNEAKPEEK_CACHE_DIR: cache };
    const probe = path.join(repo, 'bin/sp_probe');
    const src = path.join(repo, 'scripts/sp_probe.ts');
    expect(JSON.parse(run(probe, [], env).stdout)).toMatchObject({ version: 'VERSION-A' });
    const before = manifest(cache, 'sp_probe');
    expect(before).not.toBeNull();

    const st = statSync(src);
    const ref = path.join(tmpDir('ref'), 'mtime');
    writeFileSync(ref, '');
    expect(run('touch', ['-r', src, ref]).status).toBe(0); // nanoseconds, which utimes cannot give back
    writeFileSync(src, readFileSync(src, 'utf8').replace('VERSION-A', 'VERSION-B'));
    expect(run('touch', ['-r', ref, src]).status).toBe(0);
    expect(statSync(src).size).toBe(st.size);
    expect(statSync(src).mtimeMs).toBe(st.mtimeMs);
    expect(JSON.parse(run(probe, [], env).stdout)).toMatchObject({ version: 'VERSION-B' });
    // Built from a file changed less than 2 s ago: run, but not kept.
    expect(manifest(cache, 'sp_probe')).toEqual(before);
    expect(readdirSync(cache).filter((n) => n.startsWith('.build-'))).toEqual([]);

    await sleep(SETTLE_MS);
    expect(JSON.parse(run(probe, [], env).stdout)).toMatchObject({ version: 'VERSION-B' });
    const after = manifest(cache, 'sp_probe');
    expect(after!.dir).not.toBe(before!.dir);
    expect(JSON.parse(run(probe, [], env).stdout)).toMatchObject({ version: 'VERSION-B' });
    expect(manifest(cache, 'sp_probe')).toEqual(after);
  });

  it('a script that does not compile: the tool fails as npx tsx fails, nothing is cached', () => {
    const cache = tmpDir('cache');
    const src = path.join(repo, 'scripts/sp_probe.ts');
    const text = readFileSync(src, 'utf8');
    try {
      writeFileSync(src, `${text}\nconst = ;\n`);
      const want = viaTsx(repo, 'sp_probe', []);
      expect(want.status).not.toBe(0);
      const got = run(path.join(repo, 'bin/sp_probe'), [], { SNEAKPEEK_CACHE_DIR: cache });
      expect(got.status).toBe(want.status);
      expect(got.stdout).toBe('');
      const error = /^.*ERROR: .*$/m.exec(want.stderr)?.[0];
      expect(error).toContain(src);
      expect(got.stderr).toContain(error);
      expect(readdirSync(cache)).toEqual([]);
    } finally {
      writeFileSync(src, text);
    }
  });
});

