// Two runs at once on one node (issue #8 item 3): overlapping cron jobs, two operators. Every
// setup and teardown command, 20 rounds of 5 parallel runs against one container (one map file):
// all succeed, and the node ends in exactly the state one run leaves. The runs are the tools'
// own main() in this process, five at once; each starts its own node script (`timeout … sh -s`)
// on this host, so five node scripts really race for the same map, template, env file and unit.
// Real parts: docker, bpftool on this kernel's bpffs, bpftrace, a private systemd.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hexBytesToInode, hostOrder } from '../../lib/endian.ts';
import type { IO } from '../../lib/io/entry.ts';
import { main as bpftoolMap } from '../../scripts/bpftool_map_container_ns.ts';
import { main as sneakpeek } from '../../scripts/sneakpeek.ts';
import { cleanupContainers, docker, ensureBusyboxImage, runContainer } from '../helpers/docker.ts';
import { dockerUp, EBPF, isRoot, missing } from '../helpers/prereq.ts';
import { startPrivateSystemd, systemdAvailable, type PrivateSystemd } from '../helpers/systemd.ts';

const skip = missing({
  root: isRoot,
  docker: dockerUp,
  ...EBPF,
  'systemd, systemd-analyze, nsenter, unshare': systemdAvailable,
  'fswatch (apt-get install fswatch)': () => existsSync('/usr/bin/fswatch'),
  'flock (util-linux)': () => existsSync('/usr/bin/flock'),
});

const ROUNDS = 20;
const PARALLEL = 5;
const C = `sp-races-${process.pid}`;
const tmp = mkdtempSync(path.join(os.tmpdir(), 'sp-races-'));
let sd: PrivateSystemd;
let cfgFile: string;
let id: string;
let inode: string;

interface Out {
  code: number;
  stdout: string;
  stderr: string;
}

/** One run of a tool's main() with its own streams and this test's config and systemd. */
async function once(main: (argv: string[], io: IO) => Promise<number>, argv: string[]): Promise<Out> {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const sink = (into: Buffer[]) => new Writable({ write: (c, _e, cb) => (into.push(Buffer.from(c)), cb()) });
  const env = { ...(sd.env as Record<string, string>), SNEAKPEEK_CONFIG: cfgFile };
  const code = await main(argv, { stdout: sink(out), stderr: sink(err), stdin: Readable.from([]), env });
  return { code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') };
}

/** PARALLEL runs at once; every one must succeed. Returns their stdout lines. */
async function parallel(main: (argv: string[], io: IO) => Promise<number>, argv: string[], round: number): Promise<string[]> {
  const outs = await Promise.all(Array.from({ length: PARALLEL }, () => once(main, argv)));
  for (const o of outs) {
    expect(o.stderr, `round ${round}: ${argv.join(' ')}`).toBe('');
    expect(o.code, `round ${round}: ${argv.join(' ')}`).toBe(0);
  }
  return outs.map((o) => o.stdout.trim());
}

const mapFile = () => `/sys/fs/bpf/mnt_ns_${id}`;
const keys = (file: string) =>
  (JSON.parse(execFileSync('bpftool', ['-j', 'map', 'dump', 'pinned', file], { encoding: 'utf8' })) as { key: string[] }[]).map((e) =>
    hexBytesToInode(e.key, hostOrder()).toString(),
  );
const state = (unit: string) => sd.systemctl('is-active', unit).stdout.trim();
const envFiles = (tool: string) => (existsSync(path.join(sd.dir, 'env', tool)) ? readdirSync(path.join(sd.dir, 'env', tool)) : []);
/** How often each action word (last-but-n field) appears in a round. */
const count = (lines: string[], word: string) => lines.filter((l) => l.split(' ').includes(word)).length;

beforeAll(async () => {
  if (skip) return;
  ensureBusyboxImage();
  id = runContainer(C, 'sneakpeek-test/busybox:1').slice(0, 12);
  inode = execFileSync('stat', ['-Lc', '%i', `/proc/${docker('inspect', '-f', '{{.State.Pid}}', C)}/ns/mnt`], { encoding: 'utf8' }).trim();
  sd = await startPrivateSystemd('races');
  cfgFile = path.join(tmp, 'sneakpeek.config.yaml');
  writeFileSync(
    cfgFile,
    `ssh: {user: root}
sudo: false
unitDir: ${sd.unitDir}
envDir: ${path.join(sd.dir, 'env')}
log: {target: file, dir: ${path.join(sd.dir, 'log')}}
lock: {file: ${path.join(tmp, 'node.lock')}, wait: 60}
`,
  );
}, 120_000);

afterAll(async () => {
  cleanupContainers();
  await sd?.stop();
  for (const f of [mapFile(), '/sys/fs/bpf/sp_races_set']) rmSync(f, { force: true });
  rmSync(tmp, { recursive: true, force: true });
});

describe.skipIf(skip)(`${ROUNDS} rounds of ${PARALLEL} runs at once on one node`, () => {
  it('bpftool_map_container_ns --no-start on one map: one run creates it, the others find it; the map holds the inode once', async () => {
    const file = '/sys/fs/bpf/sp_races_set';
    for (let r = 0; r < ROUNDS; r++) {
      rmSync(file, { force: true });
      const round = await parallel(bpftoolMap, ['--no-start', inode, file], r);
      expect(round.filter((l) => l === `${file} ${inode} created`)).toHaveLength(1);
      expect(round.filter((l) => l === `${file} ${inode} present`)).toHaveLength(PARALLEL - 1);
      expect(keys(file)).toEqual([inode]);
    }
  }, 300_000);

  it('-t fswatch: one run starts the unit, the others find it running; --stop: one stops it, the others find nothing', async () => {
    const unit = `fswatch@${id}.service`;
    for (let r = 0; r < ROUNDS; r++) {
      const up = await parallel(sneakpeek, ['-t', 'fswatch', '-n', C], r);
      expect(up.filter((l) => l.startsWith(`${C} ${unit} started `))).toHaveLength(1);
      expect(up.filter((l) => l.startsWith(`${C} ${unit} running `))).toHaveLength(PARALLEL - 1);
      expect(state(unit)).toBe('active');
      expect(envFiles('fswatch')).toEqual([`${id}.env`]);
      const down = await parallel(sneakpeek, ['-t', 'fswatch', '--stop', '-n', C], r);
      expect(down.filter((l) => l === `${C} ${unit} stopped`)).toHaveLength(1);
      expect(down.filter((l) => l === `${C} ${unit} absent`)).toHaveLength(PARALLEL - 1);
      expect(state(unit)).not.toBe('active');
      expect(envFiles('fswatch')).toEqual([]);
    }
    expect(readdirSync(sd.unitDir).filter((f) => f.includes('.sp-new'))).toEqual([]);
  }, 900_000);

  it('-t procmon --backend bpftrace: the map holds exactly the inode, one instance runs; --stop removes map and env file', async () => {
    const unit = `execsnoop@${id}.service`;
    for (let r = 0; r < ROUNDS; r++) {
      const up = await parallel(sneakpeek, ['-t', 'procmon', '--backend', 'bpftrace', '-n', C], r);
      expect(up.filter((l) => l.startsWith(`${C} ${unit} started `) && l.endsWith(` ${inode} ${mapFile()} created`))).toHaveLength(1);
      expect(up.filter((l) => l.startsWith(`${C} ${unit} running `) && l.endsWith(` ${inode} ${mapFile()} present`))).toHaveLength(PARALLEL - 1);
      expect(state(unit)).toBe('active');
      expect(keys(mapFile())).toEqual([inode]);
      expect(envFiles('execsnoop')).toEqual([`${id}.env`]);
      const down = await parallel(sneakpeek, ['-t', 'procmon', '--stop', '-n', C], r);
      expect(down.filter((l) => l === `${C} ${unit} stopped ${mapFile()} removed`)).toHaveLength(1);
      expect(down.filter((l) => l === `${C} ${unit} absent ${mapFile()} absent`)).toHaveLength(PARALLEL - 1);
      expect(state(unit)).not.toBe('active');
      expect(existsSync(mapFile())).toBe(false);
      expect(envFiles('execsnoop')).toEqual([]);
    }
    expect(readdirSync(path.join(sd.dir, 'env', 'tracers')).filter((f) => f.includes('.sp-new'))).toEqual([]);
  }, 900_000);

  it('a run that cannot get the lock in time fails with one clear "busy" line and changes nothing', async () => {
    // Hold the node's lock from outside for longer than a run waits.
    const holder = execFileSync('sh', ['-c', `flock ${path.join(tmp, 'node.lock')} sleep 5 >/dev/null 2>&1 & echo $!`], { encoding: 'utf8' }).trim();
    try {
      await new Promise((r) => setTimeout(r, 300));
      const cfg2 = path.join(tmp, 'short-wait.yaml');
      writeFileSync(cfg2, (await import('node:fs')).readFileSync(cfgFile, 'utf8').replace('wait: 60', 'wait: 1'));
      const saved = cfgFile;
      cfgFile = cfg2;
      const t0 = Date.now();
      const r = await once(sneakpeek, ['-t', 'fswatch', '-n', C]);
      cfgFile = saved;
      expect(r.code).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr).toBe(`sneakpeek: ${C}: localhost: busy: another sneakpeek run holds ${path.join(tmp, 'node.lock')} (waited 1 s)\n`);
      expect(Date.now() - t0).toBeLessThan(4000);
      expect(envFiles('fswatch')).toEqual([]);
    } finally {
      try {
        process.kill(Number(holder));
      } catch {
        /* gone */
      }
    }
  }, 60_000);
});
