// The node's layer walk (scripts/sneakpeek.sh sp_layers), run for real under dash on layer dirs
// made here (real whiteouts, opaque and whiteout xattrs, devices, symlinks): it lists the UpperDir
// whole but only what the diff needs of the lower layers, and the changes it gives are exactly those
// of the whole listing (every entry of every layer, through the same ChangeComputer). It never
// follows a symlink out of a layer, and its processes do not grow with the number of directories.
import { spawnSync } from 'node:child_process';
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, utimesSync, writeFileSync, type Stats } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EntryType } from '../../lib/diff.ts';
import { FilesConsumer } from '../../lib/diff-stream.ts';
import { sh } from '../../lib/quote.ts';
import { RecordSplitter } from '../../lib/wire.ts';
import { runSteps, SHELLS } from '../helpers/node-sh.ts';
import { commandWorks, isRoot, missing } from '../helpers/prereq.ts';

const skip = missing({
  root: isRoot,
  'dash': () => commandWorks('dash', ['-c', 'true']),
  'getfattr/setfattr (apt-get install attr)': () => commandWorks('getfattr', ['--version']) && commandWorks('setfattr', ['--version']),
});
const XRE = '^(trusted|user)\\.overlay\\.(opaque|whiteout)$|^security\\.capability$';

/** What a layer holds at a path. */
type Kind = 'file' | 'cap' | 'dir' | 'opaque' | 'whiteout' | 'xwhiteout' | 'chardev' | 'fifo' | { link: string };
// CAP_NET_RAW, permitted and effective (vfs_cap_data revision 2).
const CAP = '0x0100000200200000000000000000000000000000';
type Layer = Record<string, Kind>;

function build(root: string, layer: Layer): void {
  mkdirSync(root, { recursive: true });
  // Parents first: a path's parent is made a dir when the spec does not say otherwise.
  for (const [p, kind] of Object.entries(layer).sort(([a], [b]) => a.split('/').length - b.split('/').length)) {
    const f = path.join(root, p);
    mkdirSync(path.dirname(f), { recursive: true });
    if (kind === 'file' || kind === 'cap') {
      writeFileSync(f, `${p}\n`);
      if (kind === 'cap') run('setfattr', '-n', 'security.capability', '-v', CAP, f);
    }
    else if (kind === 'dir' || kind === 'opaque') {
      mkdirSync(f, { recursive: true });
      if (kind === 'opaque') run('setfattr', '-n', 'trusted.overlay.opaque', '-v', 'y', f);
    } else if (kind === 'whiteout') run('mknod', f, 'c', '0', '0');
    else if (kind === 'xwhiteout') {
      writeFileSync(f, '');
      run('setfattr', '-n', 'trusted.overlay.whiteout', '-v', 'y', f);
    } else if (kind === 'chardev') run('mknod', f, 'c', '1', '3');
    else if (kind === 'fifo') run('mkfifo', f);
    else symlinkSync(kind.link, f);
  }
  // One mtime for everything: what differs between layers is what the spec says.
  const walk = (d: string) => {
    for (const n of readdirSync(d)) {
      const f = path.join(d, n);
      const st = lstatSync(f);
      if (st.isDirectory()) walk(f);
      if (!st.isSymbolicLink()) utimesSync(f, 1_700_000_000, 1_700_000_000);
    }
  };
  walk(root);
}

function run(cmd: string, ...args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
}

const TYPE = (st: Stats): EntryType =>
  st.isDirectory() ? 'd' : st.isSymbolicLink() ? 'l' : st.isCharacterDevice() ? 'c' : st.isBlockDevice() ? 'b' : st.isFIFO() ? 'p' : st.isSocket() ? 's' : 'f';

/** The engines whose diffs the tool computes differently (lib/runtime-rule.ts): docker, podman, containerd. */
const ENGINES = ['docker', 'podman', 'containerd'] as const;
type Engine = (typeof ENGINES)[number];

/** Records through the tool's own reader, as one target of `engine`: its lines. */
function read(stdout: Buffer, engine: Engine): string[] {
  const lines: string[] = [];
  const consumer = new FilesConsumer([{ key: 0, name: 'layers', engine }], { chroot: true, json: false, nul: false, all: false }, {
    line: (t) => void lines.push(t.replace(/\n$/, '')),
    warn: (_t, m) => { throw new Error(m); },
  });
  new RecordSplitter().push(stdout, (rec) => consumer.record(rec));
  const [result] = consumer.finish();
  if (result!.error) throw new Error(result!.error);
  return lines;
}

/**
 * The reference: every entry of every layer (a walk here, lstat, no link followed) as the same
 * records, sorted in tree order, through the same reader.
 */
function wholeListing(dirs: string[], links: string): Buffer {
  const recs: { path: string; layer: number; rec: string }[] = [];
  const devs: string[] = [];
  const wire = (layer: number, rel: string) => `${String(layer).padStart(3, '0')}/${rel}`;
  dirs.forEach((dir, layer) => {
    // Names are bytes: latin1 strings here as in the tool, Buffers to the file system.
    const at = (rel: string) => Buffer.from(rel ? `${dir}/${rel}` : dir, 'latin1');
    const walk = (rel: string) => {
      const st = lstatSync(at(rel), { bigint: true });
      const t = TYPE(lstatSync(at(rel)));
      const mtime = `${st.mtimeNs / 1_000_000_000n}.${String(st.mtimeNs % 1_000_000_000n).padStart(9, '0')}`;
      const swapped = wire(layer, rel).replace(/[\x01/]/g, (c) => (c === '/' ? '\x01' : '/'));
      recs.push({ path: rel, layer, rec: `F\t0\t${t}\t${(st.mode & 0o7777n).toString(8)}\t${st.uid}\t${st.gid}\t${st.size}\t${mtime}\t${swapped}` });
      if (t === 'c' || t === 'b') {
        const rdev = Number(st.rdev);
        devs.push(`R\t0\t${((rdev >> 8) & 0xfff).toString(16)}\t${((rdev & 0xff) | ((rdev >> 12) & 0xfff00)).toString(16)}\t${wire(layer, rel)}`);
      }
      if (t === 'd') for (const n of readdirSync(at(rel), { encoding: 'latin1' })) walk(rel ? `${rel}/${n}` : n);
    };
    walk('');
  });
  const dump = spawnSync('getfattr', ['-R', '-P', '-d', '-e', 'hex', '-m', XRE, ...dirs.map((_, i) => `${String(i).padStart(3, '0')}/`)], { cwd: links, encoding: 'latin1' });
  const key = (p: string) => Buffer.from(p.replace(/\//g, '\x01'), 'latin1');
  recs.sort((a, b) => Buffer.compare(key(a.path), key(b.path)) || a.layer - b.layer);
  return Buffer.from([`X\t0\t${dump.stdout}`, ...devs, ...recs.map((r) => r.rec), 'DONE\t0', ''].join('\0'), 'latin1');
}

/** The node's walk, run under dash (or `shell`). */
function nodeListing(dirs: string[], env?: NodeJS.ProcessEnv, shell?: string): { stdout: Buffer; listed: Map<number, number>; stderr: string; code: number } {
  const r = runSteps([sh`sp_layers 0 ${dirs[0]!} ${dirs.slice(1).join(':')} && rec DONE 0`], { libs: ['get_container_ns', 'sneakpeek'], env, shell });
  const listed = new Map<number, number>();
  new RecordSplitter().push(r.stdout, (rec) => {
    if (!rec.startsWith('F\t')) return;
    const layer = Number(rec.split('\t')[8]!.slice(0, 3));
    listed.set(layer, (listed.get(layer) ?? 0) + 1);
  });
  return { stdout: r.stdout, listed, stderr: r.stderr, code: r.code };
}

/** The node's walk read as docker's diff. */
function nodeDiff(dirs: string[], env?: NodeJS.ProcessEnv, shell?: string): { lines: string[]; stdout: Buffer; listed: Map<number, number>; stderr: string; code: number } {
  const r = nodeListing(dirs, env, shell);
  return { ...r, lines: read(r.stdout, 'docker') };
}

describe.skipIf(skip)('sp_layers: the lower layers only where the UpperDir is', () => {
  let tmp: string;
  let n = 0;
  beforeAll(() => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'sp-perf-layers-'));
    chmodSync(tmp, 0o755);
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  /** Make the layers (0 = upper), plus a dir of NNN links for the reference's getfattr. */
  function layers(specs: Layer[]): { dirs: string[]; links: string } {
    const base = path.join(tmp, `case${n++}`);
    const dirs = specs.map((s, i) => {
      const d = path.join(base, `l${i}`);
      build(d, s);
      return d;
    });
    const links = path.join(base, 'links');
    mkdirSync(links);
    dirs.forEach((d, i) => symlinkSync(d, path.join(links, String(i).padStart(3, '0'))));
    return { dirs, links };
  }

  /** The node's walk and the whole listing give the same lines, for every engine's diff; docker's lines. */
  function same(specs: Layer[]): string[] {
    const { dirs, links } = layers(specs);
    const ours = nodeListing(dirs);
    expect(ours.stderr).toBe('');
    expect(ours.code).toBe(0);
    const whole = wholeListing(dirs, links);
    for (const engine of ENGINES) expect(read(ours.stdout, engine), engine).toEqual(read(whole, engine));
    return read(ours.stdout, 'docker');
  }

  const image: Layer = {
    etc: 'dir', 'etc/motd': 'file', 'etc/app/conf': 'file', 'etc/app/deep/er/x': 'file',
    usr: 'dir', 'usr/lib/a': 'file', 'usr/lib/b': 'file', 'usr/share/doc/readme': 'file',
    data: 'dir', 'data/old/a': 'file', 'data/old/deep/c': 'file', lnk: { link: 'usr/lib' },
  };

  it.each<[string, Layer[]]>([
    ['a new file deep in an image directory', [{ 'etc/app/deep/er/new': 'file' }, image]],
    ['an opaque directory at depth 4, re-creating one child', [{ 'etc/app/deep/er': 'opaque', 'etc/app/deep/er/y': 'file' }, image]],
    ['an opaque directory hiding a subtree the upper re-creates', [{ 'data/old': 'opaque', 'data/old/deep': 'dir' }, image]],
    ['whiteouts, char and xattr', [{ 'etc/motd': 'whiteout', 'usr/lib/a': 'xwhiteout', 'data/old': 'whiteout' }, image]],
    ['a whiteout in a lower layer, re-created above', [{ 'etc/motd': 'file', 'usr/lib/a': 'file' }, { 'etc/motd': 'whiteout', 'usr/lib/a': 'xwhiteout' }, image]],
    ['a lower layer that whites out a directory the upper writes in', [{ 'data/old/new': 'file' }, { 'data/old': 'whiteout' }, image]],
    ['an opaque directory in a lower layer', [{ 'etc/app/conf': 'file', 'etc/app/other': 'file' }, { 'etc/app': 'opaque', 'etc/app/mid': 'file' }, image]],
    ['a directory that is a file in a lower layer', [{ 'usr/share/doc/more': 'file' }, { 'usr/share': 'file' }, image]],
    ['a directory that is a file in the top lower layer only', [{ 'etc/app/new': 'file' }, { 'etc/app': 'file' }, { 'etc/x': 'file' }, image]],
    ['a symlink in a lower layer where the upper has a directory', [{ 'lnk/a': 'file', 'lnk/new': 'dir' }, image]],
    ['a directory replaced by a symlink, and back', [{ 'etc/app': { link: '/usr' }, 'usr/lib': 'dir', 'usr/lib/c': 'file' }, { 'usr/lib': { link: '../etc' } }, image]],
    ['devices and fifos', [{ 'etc/null': 'chardev', 'etc/app/fifo': 'fifo', 'usr/lib/b': 'chardev' }, image]],
    ['a capability set, and one dropped, on files otherwise the same', [{ 'usr/lib/a': 'cap', 'usr/lib/b': 'file', 'etc/motd': 'cap' }, { 'usr/lib/b': 'cap' }, image]],
    ['an xattr whiteout and a capability where the image has no directory', [{ 'new/w': 'xwhiteout', 'new/c': 'cap', 'etc/app/deep/er/new/w': 'xwhiteout' }, image]],
    ['an empty upper dir', [{}, image]],
    ['hostile names at every depth, in every layer', (() => {
      const names = ['new\nline', '-dash', '--', 'tab\there', 'sp ace', 'ctl\x01a', '%s%n', 'back\\slash', "it's", '$(touch sp-perf-canary)', 'é☃'];
      const lower: Layer = {};
      const upper: Layer = {};
      for (const [i, n] of names.entries()) {
        lower[`${n}/${n}/old`] = 'file';
        lower[`${n}/keep`] = 'file';
        upper[`${n}/${n}/new${i}`] = 'file';
        upper[`${n}/${names[(i + 1) % names.length]}`] = i % 2 ? 'whiteout' : 'dir';
      }
      return [upper, { [`${names[0]}/${names[0]}`]: 'opaque' }, lower];
    })()],
    ['twelve lower layers, whiteouts and opaque dirs between them', (() => {
      const specs: Layer[] = [{ 'a/b/c/new': 'file', 'a/b/gone': 'whiteout', 'a/x/y': 'file' }];
      for (let l = 1; l <= 12; l++) specs.push({ [`a/b/c/f${l}`]: 'file', [`a/b/gone/g${l}`]: 'file', ...(l === 4 ? { 'a/b/c/f9': 'whiteout' } : {}), ...(l === 7 ? { 'a/b': 'opaque' } : {}) });
      return specs;
    })()],
    ['no lower layer at all', [{ 'a/b': 'file', c: 'dir' }]],
  ])('%s', (_label, specs) => {
    expect(same(specs).length).toBeGreaterThan(_label === 'an empty upper dir' ? -1 : 0);
    expect(readdirSync(process.cwd()).some((f) => f.startsWith('sp-perf-canary'))).toBe(false);
  });

  // Not busybox sh: it runs its own find, sed and sort (no -printf, no -z), as it did before this walk.
  it.each(SHELLS.filter((x) => !x.startsWith('busybox')))('runs the same under %s', (shell) => {
    const { dirs, links } = layers([{ 'data/old': 'opaque', 'data/old/deep': 'dir', 'etc/motd': 'whiteout', 'usr/lib/a': 'cap', 'lnk/x': 'file' }, { 'usr/lib': 'opaque', 'usr/lib/b': 'file' }, image]);
    const ours = nodeDiff(dirs, undefined, shell);
    expect(ours.stderr).toBe('');
    expect(ours.lines).toEqual(read(wholeListing(dirs, links), 'docker'));
  });

  it('agrees with the whole listing on random layer stacks', () => {
    // A small name space so that layers collide: every kind over every kind, at every depth.
    let seed = 12345;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const gen = (depth: number, prefix: string, into: Layer, weights: [Kind | 'none', number][]): void => {
      for (const name of ['a', 'b', 'c']) {
        let r = rnd();
        const [kind] = weights.find(([, w]) => (r -= w) < 0) ?? ['none'];
        if (kind === 'none') continue;
        const p = prefix ? `${prefix}/${name}` : name;
        into[p] = kind;
        if ((kind === 'dir' || kind === 'opaque') && depth < 4) gen(depth + 1, p, into, weights);
      }
    };
    const lowerW: [Kind | 'none', number][] = [['none', 0.2], ['file', 0.2], ['cap', 0.05], ['dir', 0.3], ['opaque', 0.05], ['whiteout', 0.07], ['xwhiteout', 0.03], [{ link: 'a' }, 0.05], [{ link: '/' }, 0.05]];
    const upperW: [Kind | 'none', number][] = [['none', 0.35], ['file', 0.12], ['cap', 0.03], ['dir', 0.3], ['opaque', 0.07], ['whiteout', 0.08], ['xwhiteout', 0.02], [{ link: 'b' }, 0.03]];
    let changes = 0;
    for (let i = 0; i < 25; i++) {
      const specs: Layer[] = [];
      const count = 1 + Math.floor(rnd() * 3);
      for (let l = 0; l <= count; l++) {
        const layer: Layer = {};
        gen(1, '', layer, l === 0 ? upperW : lowerW);
        specs.push(layer);
      }
      changes += same(specs).length;
    }
    expect(changes).toBeGreaterThan(100); // the stacks do change things
  });

  it('lists the UpperDir whole, but of a big image only the directories the UpperDir has', () => {
    const big: Layer = {};
    for (let d = 0; d < 20; d++) for (let f = 0; f < 100; f++) big[`usr/share/big/d${d}/f${f}`] = 'file';
    big['etc/motd'] = 'file';
    const { dirs } = layers([{ 'usr/share/big/d7/new': 'file', 'usr/share/big/d7/f1': 'whiteout', 'tmp/x/y': 'file' }, { 'usr/share/big/d8/extra': 'file' }, big]);
    const ours = nodeDiff(dirs);
    expect(ours.lines).toEqual(['A /tmp', 'A /tmp/x', 'A /tmp/x/y', 'C /usr', 'C /usr/share', 'C /usr/share/big', 'C /usr/share/big/d7', 'D /usr/share/big/d7/f1', 'A /usr/share/big/d7/new']);
    // Upper: its 10 entries with the root. The image: its root, the root's 2 children, usr's
    // share, share's big, big's 20 dirs, d7's 100 files; layer 1 likewise down to d8 (not d8's files).
    expect(ours.listed.get(0)).toBe(10);
    expect(ours.listed.get(2)).toBe(1 + 2 + 1 + 1 + 20 + 100);
    expect(ours.listed.get(1)).toBe(1 + 1 + 1 + 1 + 1);
  });

  it('never follows a symlink out of a layer: an absolute link to a host directory is not entered', () => {
    const host = path.join(tmp, 'host-secret');
    mkdirSync(path.join(host, 'etc'), { recursive: true });
    writeFileSync(path.join(host, 'etc', 'sp-perf-secret'), 'secret\n');
    // The image has /opt and /opt/etc as links to the host dir (an image's links resolve on the
    // host when followed there); the container made them real directories.
    const { dirs } = layers([{ opt: 'opaque', 'opt/etc/own': 'file', srv: 'dir', 'srv/etc/own': 'file' }, { opt: { link: host }, srv: { link: '../../../host-secret' } }]);
    const ours = nodeDiff(dirs);
    expect(ours.stdout.includes(Buffer.from('sp-perf-secret'))).toBe(false);
    expect(ours.lines).toEqual(['C /opt', 'A /opt/etc', 'A /opt/etc/own', 'C /srv', 'A /srv/etc', 'A /srv/etc/own']);
  });

  it('splits a level too long for one command line into batches, and still agrees', () => {
    // 3,000 directories with long names at one level, in 2 layers: ~500 KB of start points.
    const upper: Layer = {};
    const lower: Layer = {};
    const long = 'x'.repeat(150);
    for (let i = 0; i < 3000; i++) {
      upper[`top/${long}${i}/new`] = 'file';
      if (i % 3) lower[`top/${long}${i}/old`] = 'file';
    }
    const lines = same([upper, lower, lower]);
    expect(lines.filter((l) => l.startsWith("A ")).length).toBe(2000 + 1000 * 2); // new files; new dirs and their files
  });

  it('runs one find per directory level, not one per directory', () => {
    // 600 image directories the upper writes in, 3 levels deep, in 3 lower layers.
    const upper: Layer = {};
    const lower: Layer = {};
    for (let a = 0; a < 6; a++) for (let b = 0; b < 10; b++) for (let c = 0; c < 10; c++) {
      upper[`t${a}/u${b}/v${c}/new`] = 'file';
      lower[`t${a}/u${b}/v${c}/old`] = 'file';
    }
    const shims = path.join(tmp, 'shims');
    const log = path.join(tmp, 'find.log');
    mkdirSync(shims, { recursive: true });
    const real = spawnSync('sh', ['-c', 'command -v find'], { encoding: 'utf8' }).stdout.trim();
    writeFileSync(path.join(shims, 'find'), `#!/bin/sh\necho "$$" >> '${log}'\nexec '${real}' "$@"\n`, { mode: 0o755 });
    const { dirs } = layers([upper, lower, { other: 'file' }, lower]);
    const ours = nodeDiff(dirs, { ...process.env, PATH: `${shims}:${process.env.PATH}` });
    expect(ours.lines.filter((l) => l.startsWith('A ')).length).toBe(600);
    const finds = spawnSync('wc', ['-l', log], { encoding: 'utf8' }).stdout.trim().split(' ')[0];
    // The upper dir, then the levels: the roots, t*, t*/u*, t*/u*/v*.
    expect(Number(finds)).toBe(1 + 4);
  });
});
