#!/usr/bin/env -S sh -c 'exec "$(dirname "$(readlink -f "$0")")/../bin/demo" "$@"'
// demo — run `sneakpeek -t files` on a sample overlay layer tree this script builds itself.
//
// USAGE
//   npm run demo            (or: ./scripts/demo.ts [--keep], or npx tsx scripts/demo.ts)
//
// It lays out an image layer and a container's upper layer in a temp dir the way overlay2
// does (new files, a modified file, a whiteout for a deleted file, an opaque directory that
// was deleted and re-created), writes the docker-inspect JSON that points at them, and runs
// sneakpeek on it: no docker daemon, no cluster. Whiteouts and opaque directories need root
// (mknod, trusted.* xattrs) or the attr tools (user.* xattrs); without them those lines are
// left out and the demo says so.
//
// EXIT CODES
//   0 done · 1 sneakpeek failed
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isEntry, processIO, runEntry, type IO } from '../lib/io/entry.ts';
import { runCommand } from '../lib/io/runner.ts';
import { main as sneakpeek } from './sneakpeek.ts';

/** mknod / setfattr through the runner (zx): true when it worked. */
async function tryRun(cmd: string, args: string[]): Promise<boolean> {
  return (await runCommand([cmd, ...args], { deadline: 10 })).code === 0;
}

function write(root: string, rel: string, content: string, mtime = new Date('2024-01-01T00:00:00Z')): void {
  const p = path.join(root, rel);
  mkdirSync(path.dirname(p), { recursive: true });
  writeFileSync(p, content);
  utimesSync(p, mtime, mtime);
}

/** The sample tree: returns the inspect JSON path and what could not be made. */
export async function buildSample(dir: string): Promise<{ inspect: string; skipped: string[] }> {
  const lower = path.join(dir, 'image/diff');
  const upper = path.join(dir, 'container/diff');
  const skipped: string[] = [];
  for (const [rel, text] of Object.entries({
    'etc/motd': 'welcome\n', 'etc/hostname': 'demo\n', 'etc/app/app.conf': 'debug=false\n',
    'var/cache/app/a.bin': 'a', 'var/cache/app/b.bin': 'b', 'usr/bin/tool': '#!/bin/sh\n',
  })) write(lower, rel, text);
  // The container: a new log tree, an edited config, a deleted motd, a wiped and refilled cache.
  write(upper, 'var/log/app/today.log', 'started\n', new Date());
  write(upper, 'etc/app/app.conf', 'debug=true\n', new Date());
  write(upper, 'tmp/session', 'x', new Date());
  mkdirSync(path.join(upper, 'etc'), { recursive: true });
  const root = process.getuid?.() === 0;
  const whiteout = path.join(upper, 'etc/motd');
  if (!(root && (await tryRun('mknod', [whiteout, 'c', '0', '0']))) && !(writeFileSync(whiteout, ''), await tryRun('setfattr', ['-n', 'user.overlay.whiteout', '-v', 'y', whiteout]))) {
    rmSync(whiteout, { force: true });
    skipped.push('the deleted /etc/motd (a whiteout needs root for mknod, or setfattr from the attr package)');
  }
  const cache = path.join(upper, 'var/cache/app');
  write(upper, 'var/cache/app/fresh.bin', 'f', new Date());
  if (!(await tryRun('setfattr', ['-n', root ? 'trusted.overlay.opaque' : 'user.overlay.opaque', '-v', 'y', cache])))
    skipped.push('the wiped /var/cache/app (an opaque directory needs setfattr from the attr package)');
  const inspect = path.join(dir, 'inspect.json');
  writeFileSync(inspect, JSON.stringify([{
    Id: 'd3m0'.padEnd(64, '0'), Name: '/demo', State: { Pid: 0 },
    GraphDriver: { Name: 'overlay2', Data: { UpperDir: upper, LowerDir: lower, MergedDir: path.join(dir, 'container/merged') } },
  }], null, 2));
  return { inspect, skipped };
}

export async function main(argv: string[], io: IO = processIO()): Promise<number> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sneakpeek-demo-'));
  try {
    const { inspect, skipped } = await buildSample(dir);
    for (const args of [['-t', 'files', '--chroot', '-f', inspect], ['-t', 'files', '-f', inspect]]) {
      io.stdout.write(`$ sneakpeek ${args.join(' ')}\n`);
      // The sample tree is the user's own: no sudo for it, whatever the site config says.
      const code = await sneakpeek(args, { ...io, env: { ...io.env, SNEAKPEEK_CONFIG: '', SNEAKPEEK_SUDO: 'false' } });
      if (code !== 0) return code;
      io.stdout.write('\n');
    }
    for (const s of skipped) io.stderr.write(`demo: left out ${s}\n`);
    io.stdout.write(`A = added, C = changed, D = deleted; compare: docker diff <container>\n`);
    return 0;
  } finally {
    if (argv.includes('--keep')) io.stderr.write(`demo: sample kept in ${dir}\n`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

if (isEntry(import.meta.url)) await runEntry(main);
