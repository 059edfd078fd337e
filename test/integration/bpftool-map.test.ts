// bpftool_map_container_ns with real parts: the real bpftool on this kernel's bpffs, real
// containers' mount namespaces, and (for TYPE@NAME.service) a private systemd
// (test/helpers/systemd.ts). Every map this file pins is named sp_bpfmap_<pid>_*, or
// mnt_ns_sp_bpfmap_<pid>_unit, or mnt_ns_<A's id>. Every run gets a config whose unitDir,
// envDir and log.dir are the private systemd's, and its systemctl shim first on PATH: a run
// that went wrong still never reaches the host's units.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mapNameOf } from '../../lib/bpfmap.ts';
import { hexBytesToInode, hostOrder } from '../../lib/endian.ts';
import { ROOT, runTool, TSX, type Run } from '../helpers/cli.ts';
import { cleanupContainers, docker, ensureBusyboxImage, runContainer } from '../helpers/docker.ts';
import { dockerUp, EBPF, isRoot, missing } from '../helpers/prereq.ts';
import { startPrivateSystemd, systemdAvailable, type PrivateSystemd } from '../helpers/systemd.ts';

const BPFFS = '/sys/fs/bpf';
const skip = missing({
  root: isRoot,
  docker: dockerUp,
  ...EBPF,
  'systemd, systemd-analyze, nsenter, unshare': systemdAvailable,
});

const A = `sp-bpfmap-a-${process.pid}`;
const B = `sp-bpfmap-b-${process.pid}`;
const PREFIX = `sp_bpfmap_${process.pid}_`;
const mapFile = (n: string) => path.join(BPFFS, `${PREFIX}${n}`);
const tmp = mkdtempSync(path.join(os.tmpdir(), 'sp-bpfmap-'));
// Readable by the unprivileged user of the no-privilege cases (tmp is 0700).
const pub = mkdtempSync(path.join(os.tmpdir(), 'sp-bpfmap-pub-'));
const unitMap = path.join(BPFFS, `mnt_ns_${PREFIX}unit`);
const canary = path.join(tmp, 'canary');
let inoA: string;
let inoB: string;
let idA: string;
let sd: PrivateSystemd;
let sdCfg: string;
let sdYaml: string;

/** Every run: the private systemd's dirs in the config, its systemctl first on PATH. */
const run = (args: string[], env: Record<string, string> = {}): Run =>
  runTool('bpftool_map_container_ns', args, { env: { ...(sd.env as Record<string, string>), SNEAKPEEK_CONFIG: sdCfg, ...env } });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const inodeOf = (c: string) => execFileSync('stat', ['-Lc', '%i', `/proc/${docker('inspect', '-f', '{{.State.Pid}}', c)}/ns/mnt`], { encoding: 'utf8' }).trim();
const bpftoolJson = (...args: string[]) => JSON.parse(execFileSync('bpftool', ['-j', ...args], { encoding: 'utf8' }));
/** The map's keys, decoded here (host order) from bpftool's own JSON. */
const keysOf = (file: string): string[] =>
  (bpftoolJson('map', 'dump', 'pinned', file) as { key: string[] }[]).map((e) => hexBytesToInode(e.key, hostOrder()).toString()).sort();
const ourMaps = () => readdirSync(BPFFS).filter((f) => f.startsWith(PREFIX));

beforeAll(async () => {
  if (skip) return;
  ensureBusyboxImage();
  idA = runContainer(A, 'sneakpeek-test/busybox:1').slice(0, 12);
  runContainer(B, 'sneakpeek-test/busybox:1');
  inoA = inodeOf(A);
  inoB = inodeOf(B);
  sd = await startPrivateSystemd('bpfmap');
  sdCfg = path.join(tmp, 'systemd.yaml');
  sdYaml = `ssh: {user: root, connectTimeout: 3}\nunitDir: ${sd.unitDir}\nenvDir: ${path.join(sd.dir, 'env')}\nlog: {target: file, dir: ${path.join(sd.dir, 'log')}}\n`;
  writeFileSync(sdCfg, `sudo: false\n${sdYaml}`);
  // A site's own template, to show TYPE@NAME.service is started as given.
  writeFileSync(path.join(sd.unitDir, 'sp-bpfmap-t@.service'), '[Service]\nExecStart=/bin/sleep 100000\n');
});

afterAll(async () => {
  for (const f of ourMaps()) rmSync(path.join(BPFFS, f), { force: true });
  rmSync(unitMap, { force: true });
  if (idA) rmSync(path.join(BPFFS, `mnt_ns_${idA}`), { force: true });
  cleanupContainers();
  await sd?.stop();
  rmSync(tmp, { recursive: true, force: true });
  rmSync(pub, { recursive: true, force: true });
});

describe.skipIf(skip)('bpftool_map_container_ns on the real kernel', () => {
  it('creates the map: hash, key 8, value 4, 128 entries, the documented name; it holds exactly the inode', () => {
    const file = mapFile('set');
    const r = run(['--no-start', inoA, file]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(`${file} ${inoA} created\n`);
    expect(r.code).toBe(0);
    const show = bpftoolJson('map', 'show', 'pinned', file);
    expect(show).toMatchObject({ type: 'hash', name: mapNameOf(file), bytes_key: 8, bytes_value: 4, max_entries: 128 });
    expect(keysOf(file)).toEqual([inoA]);
    expect((bpftoolJson('map', 'dump', 'pinned', file) as { value: string[] }[])[0]!.value).toEqual(['0x00', '0x00', '0x00', '0x00']);
  });

  it('a second run changes nothing: same map object, same contents, "present"', () => {
    const file = mapFile('set');
    const before = { show: bpftoolJson('map', 'show', 'pinned', file), dump: bpftoolJson('map', 'dump', 'pinned', file) };
    const r = run(['--no-start', inoA, file]);
    expect(r.stdout).toBe(`${file} ${inoA} present\n`);
    expect(r.code).toBe(0);
    expect(bpftoolJson('map', 'show', 'pinned', file).id).toBe(before.show.id);
    expect(bpftoolJson('map', 'dump', 'pinned', file)).toEqual(before.dump);
  });

  it("the original's environment form adds a second namespace to the same map", () => {
    const file = mapFile('set');
    const r = run(['--no-start'], { INODE: inoB, FILE: file });
    expect(r.stdout).toBe(`${file} ${inoB} added\n`);
    expect(r.code).toBe(0);
    expect(keysOf(file)).toEqual([inoA, inoB].sort());
  });

  it('the map name keeps the last 15 characters of a long basename', () => {
    const file = mapFile('a_long_name_0123456789ab');
    expect(run(['--no-start', inoA, file]).code).toBe(0);
    expect(bpftoolJson('map', 'show', 'pinned', file).name).toBe('name_0123456789ab'.slice(-15));
  });
});

describe.skipIf(skip)('refusals: one line on stderr, the documented exit code, nothing pinned', () => {
  // --no-start wherever the refusal does not depend on TYPE: a regression then touches no unit.
  it.each([
    ['an empty inode', ['--no-start', '', mapFile('x')], /^bpftool_map_container_ns: INODE: inode "" is not a positive decimal integer/],
    ['inode 0', ['--no-start', '0', mapFile('x')], /INODE: inode 0 is not positive/],
    ['a negative inode', ['--no-start', '-7', mapFile('x')], /INODE/],
    ['an inode of 2^64', ['--no-start', '18446744073709551616', mapFile('x')], /does not fit in 8 bytes/],
    ['a relative FILE', ['--no-start', '12', 'mnt_ns_x'], /must be an absolute path/],
    ['no TYPE', ['12', mapFile('x')], /missing TYPE/],
    ['a hostile inode', ['--no-start', `$(touch ${canary})`, mapFile('x')], /INODE/],
    ['a hostile FILE', ['--no-start', '12', `${BPFFS}/$(touch ${canary})`], /map file name/],
    ['a hostile TYPE', ['12', mapFile('x'), `t;touch ${canary}`], /TYPE .*expected a unit template name/],
    ['a TYPE with a leading dash', ['12', mapFile('x'), '--', '-t'], /unexpected|TYPE/],
    ["sneakpeek's template without a container id", ['12', mapFile('x'), 'execsnoop'], /FILE must be <dir>\/mnt_ns_<12-hex container id>/],
  ])('%s → exit 2', (_what, args, msg) => {
    const r = run(args);
    expect(r.stderr).toMatch(msg);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stdout).toBe('');
    expect(r.code).toBe(2);
    expect(existsSync(canary)).toBe(false);
    expect(ourMaps().filter((f) => !/set$|0123456789ab$/.test(f))).toEqual([]);
  });

  it('bpftool missing → exit 1', () => {
    const cfg = path.join(tmp, 'nobpftool.yaml');
    writeFileSync(cfg, `${sdYaml}paths: {bpftool: /nonexistent/bpftool}\n`);
    const r = run(['--no-start', inoA, mapFile('nobpftool')], { SNEAKPEEK_CONFIG: cfg });
    expect(r.stderr).toBe("bpftool_map_container_ns: localhost: bpftool not found on this node ('/nonexistent/bpftool': install bpftool or set paths.bpftool)\n");
    expect(r.code).toBe(1);
    expect(existsSync(mapFile('nobpftool'))).toBe(false);
  });

  it('FILE not on a BPF file system → exit 1', () => {
    const r = run(['--no-start', inoA, path.join(tmp, 'mnt_ns_x')]);
    expect(r.stderr).toBe(`bpftool_map_container_ns: localhost: ${tmp} is not a mounted BPF file system (mount -t bpf bpf /sys/fs/bpf)\n`);
    expect(r.code).toBe(1);
  });

  it('a full map → exit 1, the map untouched', () => {
    const file = mapFile('full');
    execFileSync('bpftool', ['map', 'create', file, 'type', 'hash', 'key', '8', 'value', '4', 'entries', '1', 'name', 'sp_full', 'flags', '0']);
    execFileSync('bpftool', ['map', 'update', 'pinned', file, 'key', 'hex', '01', '00', '00', '00', '00', '00', '00', '00', 'value', 'hex', '00', '00', '00', '00']);
    const r = run(['--no-start', inoA, file]);
    expect(r.stderr).toBe(`bpftool_map_container_ns: localhost: map ${file} is full\n`);
    expect(r.code).toBe(1);
    expect(keysOf(file)).toEqual(['1']);
  });

  it('FILE pinned as something else → exit 1, left alone', () => {
    const file = mapFile('array');
    execFileSync('bpftool', ['map', 'create', file, 'type', 'array', 'key', '4', 'value', '4', 'entries', '1', 'name', 'sp_array', 'flags', '0']);
    const r = run(['--no-start', inoA, file]);
    expect(r.stderr).toMatch(new RegExp(`^bpftool_map_container_ns: localhost: ${file} exists but is not a mount-namespace map \\(hash, key 8, value 4\\): \\d+: array `));
    expect(r.code).toBe(1);
    expect(bpftoolJson('map', 'show', 'pinned', file).type).toBe('array');
  });

  it.each([
    ['with sudo (the default): sudo refuses without a password', {}, /^bpftool_map_container_ns: localhost: sudo: a password is required\n$/],
    ['without sudo: the kernel refuses', { SNEAKPEEK_SUDO: 'false' }, /^bpftool_map_container_ns: localhost: cannot create map .*Operation not permitted \(needs root: CAP_BPF\/CAP_SYS_ADMIN\)\n$/],
  ])('no privilege %s → exit 1', (_what, env, msg) => {
    const file = mapFile('unprivileged');
    const cfg = path.join(pub, 'unprivileged.yaml');
    chmodSync(pub, 0o755);
    writeFileSync(cfg, sdYaml, { mode: 0o644 });
    const r = spawnSync(
      'setpriv',
      ['--reuid=65534', '--regid=65534', '--clear-groups', 'env', 'HOME=/tmp', `SNEAKPEEK_CONFIG=${cfg}`,
        ...Object.entries(env).map(([k, v]) => `${k}=${v}`), TSX, path.join(ROOT, 'scripts/bpftool_map_container_ns.ts'), '--no-start', inoA, file],
      { encoding: 'utf8', cwd: ROOT },
    );
    expect(r.stderr).toMatch(msg);
    expect(r.status).toBe(1);
    expect(existsSync(file)).toBe(false);
  });
});

describe.skipIf(skip)('then it starts TYPE@NAME.service (a private systemd)', () => {
  const runSd = run;

  it("a site's own template: NAME is FILE's basename without mnt_ns_; again → running", () => {
    const file = unitMap;
    const unit = `sp-bpfmap-t@${PREFIX}unit.service`;
    let r = runSd([inoA, file, 'sp-bpfmap-t']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(`${file} ${inoA} created ${unit} started\n`);
    expect(r.code).toBe(0);
    expect(sd.systemctl('is-active', unit).stdout.trim()).toBe('active');
    r = runSd([inoA, file, 'sp-bpfmap-t']);
    expect(r.stdout).toBe(`${file} ${inoA} present ${unit} running\n`);
    expect(r.code).toBe(0);
    rmSync(file);
  });

  it('a template that does not exist → exit 1 naming the unit; the map stays (it is correct)', () => {
    const file = mapFile('nounit');
    const r = runSd([inoA, file, 'sp-bpfmap-none']);
    expect(r.stderr).toMatch(new RegExp(`^bpftool_map_container_ns: localhost: ${file} created, but sp-bpfmap-none@${PREFIX}nounit.service: .*not found`));
    expect(r.code).toBe(1);
    expect(keysOf(file)).toEqual([inoA]);
  });

  it("TYPE execsnoop: sneakpeek's template, env file and bpftrace program; sneakpeek -t procmon --stop --purge undoes it all", async () => {
    const file = path.join(BPFFS, `mnt_ns_${idA}`);
    const r = runSd(['--backend', 'bpftrace', inoA, file, 'execsnoop']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(`${file} ${inoA} created execsnoop@${idA}.service started\n`);
    expect(r.code).toBe(0);
    expect(readFileSync(path.join(sd.dir, 'env', 'execsnoop', `${idA}.env`), 'utf8')).toContain(
      `\nSNEAKPEEK_CONTAINER=${idA}\nSNEAKPEEK_BACKEND=bpftrace\nSNEAKPEEK_MNTNS_MAP=${file}\nSNEAKPEEK_MNTNS_INODE=${inoA}\n`,
    );
    // Up means bpftrace attached: its start line is in the unit's log (deadline 30 s), and the unit is still active.
    const log = path.join(sd.dir, 'log', `execsnoop-${idA}.log`);
    const tracing = `Tracing exec in mount namespace ${inoA}... Ctrl-C to end.`;
    const lines = () => (existsSync(log) ? readFileSync(log, 'utf8').split('\n') : []);
    for (const end = Date.now() + 30_000; Date.now() < end && !lines().includes(tracing); ) await sleep(200);
    expect(lines()).toContain(tracing);
    expect(sd.systemctl('is-active', `execsnoop@${idA}.service`).stdout.trim()).toBe('active');
    const stop = runTool('sneakpeek', ['-t', 'procmon', '--stop', '--purge', '-n', A], { env: { ...(sd.env as Record<string, string>), SNEAKPEEK_CONFIG: sdCfg } });
    expect(stop.stderr).toBe('');
    expect(stop.stdout).toBe(`${A} execsnoop@${idA}.service stopped ${file} removed\n`);
    expect(stop.code).toBe(0);
    expect(existsSync(file)).toBe(false);
    expect(existsSync(path.join(sd.dir, 'env'))).toBe(false);
    expect(existsSync(path.join(sd.unitDir, 'execsnoop@.service'))).toBe(false);
  });
});
