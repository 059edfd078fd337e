// --status / --reconcile: the verdicts (tables), the records → rows join, the node steps, and
// the node-side helpers that need no engine or systemd, run in a real dash.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULTS, parseConfig } from '../../lib/config.ts';
import { inodeToHexBytes } from '../../lib/endian.ts';
import {
  changeLine, changeOf, envNewer, groupRecords, judge, mapInodes, parseEnvFile, reconcileReport, reconcileSteps, reconcileSummary, statusLine, statusReport,
  statusSteps, statusSummary, type InstanceView, type KeyRecords,
} from '../../lib/lifecycle.ts';
import { sh } from '../../lib/quote.ts';
import type { Target } from '../../lib/targets.ts';
import { MANAGED_HEADER } from '../../lib/units.ts';
import { parseRecord, type NodeRecord, type RecordOf } from '../../lib/wire.ts';
import { main } from '../../scripts/sneakpeek.ts';
import { TEST_CONFIG } from '../helpers/cli.ts';
import { runSteps } from '../helpers/node-sh.ts';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'sp-lifecycle-unit-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A record as the node sends it: TAG, KEY, fields (tabs between). */
const rec = (...f: string[]) => parseRecord(f.join('\t')) as NodeRecord;
const ID = '0123456789ab';
const dump = (...inodes: string[]) => JSON.stringify(inodes.map((i) => ({ key: inodeToHexBytes(i, 'little').map((b) => `0x${b}`), value: ['0x00', '0x00', '0x00', '0x00'] })));
const tracerEnv = (ino: string) => ({ SNEAKPEEK_CONTAINER: ID, SNEAKPEEK_BACKEND: 'bpftrace', SNEAKPEEK_MNTNS_MAP: `/sys/fs/bpf/mnt_ns_${ID}`, SNEAKPEEK_MNTNS_INODE: ino });

describe('parseEnvFile: NAME=value lines; the header comment and anything else skipped', () => {
  it.each([
    ['# managed by sneakpeek\nSNEAKPEEK_CONTAINER=abc\nSNEAKPEEK_WATCH_DIR=/x/diff\n', { SNEAKPEEK_CONTAINER: 'abc', SNEAKPEEK_WATCH_DIR: '/x/diff' }],
    ['A=1\nA=2', { A: '2' }],
    ['SNEAKPEEK_IMAGE_DIRS=\n', { SNEAKPEEK_IMAGE_DIRS: '' }],
    ['lower=1\n  B=2\nC = 3\n', {}],
    ['', {}],
  ])('%j', (text, want) => expect(parseEnvFile(text)).toEqual(want));
});

describe('mapInodes: bpftool -j dump → inodes, in the node byte order', () => {
  it.each([
    [dump('4026532545'), 'little', [4026532545n]],
    [dump('4026532545', '4026531840'), 'little', [4026532545n, 4026531840n]],
    ['[]', 'little', []],
    [JSON.stringify([{ key: inodeToHexBytes('4026532545', 'big').map((b) => `0x${b}`) }]), 'big', [4026532545n]],
  ] as const)('%s (%s)', (d, order, want) => expect(mapInodes(d, order)).toEqual(want));
  it.each(['{}', '[{"value": []}]', 'not json'])('refuses %s', (d) => expect(() => mapInodes(d, 'little')).toThrow());
});

describe('judge: an instance against its container now', () => {
  const base: InstanceView = {
    tool: 'execsnoop', id: ID, load: 'loaded', active: 'active', sub: 'running', env: tracerEnv('100'),
    container: { id: `${ID}ffff`, state: 'running', pid: '42', upper: '/u/diff' }, inode: '100',
    map: { file: `/sys/fs/bpf/mnt_ns_${ID}`, state: 'present', inodes: [100n] },
  };
  const fsw: InstanceView = { ...base, tool: 'fswatch', env: { SNEAKPEEK_CONTAINER: ID, SNEAKPEEK_WATCH_DIR: '/u/diff' }, map: undefined };
  it.each<[string, Partial<InstanceView>, string, string | RegExp]>([
    ['running and current', {}, 'active', ''],
    ['the recycled inode: the container has a new namespace, the map and env file still name the old one', { inode: '200', container: { ...base.container!, pid: '43' } }, 'stale',
      'set up for mount namespace 100, the container\'s is now 200; map holds 100, the container\'s mount namespace is 200'],
    ['the map alone is behind (a bcc instance reads it live)', { map: { ...base.map!, inodes: [100n, 300n] } }, 'stale', 'map holds 100, 300, the container\'s mount namespace is 100'],
    ['the map is empty', { map: { ...base.map!, inodes: [] } }, 'stale', 'map holds nothing, the container\'s mount namespace is 100'],
    ['the map is gone', { map: { file: `/sys/fs/bpf/mnt_ns_${ID}`, state: 'absent' } }, 'stale', `map /sys/fs/bpf/mnt_ns_${ID} missing`],
    ['the map cannot be read', { map: { file: 'm', state: 'error', error: 'Operation not permitted' } }, 'stale', 'map m unreadable: Operation not permitted'],
    ['the container stopped: its namespace is gone (an inode still alive proves nothing)', { container: { ...base.container!, state: 'stopped', pid: '0' }, inode: undefined }, 'stale',
      'container not running (stopped): the mount namespace it was set up for is gone'],
    ['running, but its namespace could not be read (it exited meanwhile)', { inode: undefined }, 'stale', 'cannot read the mount namespace of the container\'s process (pid 42)'],
    ['stale and not running: the unit state and last log too', { inode: '200', active: 'failed', sub: 'failed', lastLog: 'ERROR: x' }, 'stale', /is now 200; .*; unit failed; last log: ERROR: x$/],
    ['the container is gone', { gone: { engine: 'docker', gone: true, message: 'No such container: x' }, container: undefined, inode: undefined }, 'orphan', 'container gone (docker: No such container: x)'],
    ['the engine did not answer: nothing concluded', { gone: { engine: 'docker', gone: false, message: 'Cannot connect to the Docker daemon' }, container: undefined }, 'unknown',
      'docker did not answer: Cannot connect to the Docker daemon'],
    ['failed, with its last log line', { active: 'failed', sub: 'failed', lastLog: 'ERROR: could not attach' }, 'failed', 'unit failed; last log: ERROR: could not attach'],
    ['restarting after failures is failed', { active: 'activating', sub: 'auto-restart', lastLog: 'boom' }, 'failed', 'unit activating (auto-restart); last log: boom'],
    ['stopped by hand', { active: 'inactive', sub: 'dead', lastLog: 'header' }, 'inactive', 'unit inactive (dead)'],
    ['starting', { active: 'activating', sub: 'start-pre' }, 'inactive', 'unit activating (start-pre)'],
    ['a selected container with no instance', { env: undefined, load: '-', active: 'inactive', sub: 'dead' }, 'missing', 'not set up'],
    ['a unit running without its env file', { env: undefined }, 'stale', 'no env file'],
    ['an old env file without SNEAKPEEK_ENGINE is read as it is', { env: tracerEnv('100') }, 'active', ''],
    ['its env file written after the unit started (a run ended before restarting it): the unit runs with an older one', { envNewer: true }, 'stale',
      'its env file changed after the unit started: the unit does not run with what it says'],
    ['env file newer, and the namespace changed too: the namespace is said', { envNewer: true, inode: '200' }, 'stale', /^set up for mount namespace 100, the container's is now 200; /],
  ])('%s', (_what, change, state, why) => {
    const r = judge({ ...base, ...change });
    expect(r.state).toBe(state);
    if (typeof why === 'string') expect(r.why).toBe(why);
    else expect(r.why).toMatch(why);
  });

  it.each<[string, Partial<InstanceView>, string, string]>([
    ['fswatch on the container\'s UpperDir', {}, 'active', ''],
    ['fswatch on another UpperDir', { env: { SNEAKPEEK_WATCH_DIR: '/old/diff' } }, 'stale', 'watches /old/diff, the container\'s UpperDir is /u/diff'],
    ['fswatch of a stopped container still watches its UpperDir (it stays)', { container: { ...base.container!, state: 'stopped' }, inode: undefined }, 'active', ''],
  ])('%s', (_what, change, state, why) => expect(judge({ ...fsw, ...change })).toEqual({ state, why }));
});

const inst = (active: string, env?: string, load = 'loaded', sub = active === 'active' ? 'running' : 'dead'): RecordOf<'INST'> =>
  rec('INST', `i${ID}`, 'execsnoop', ID, load, active, sub, env === undefined ? '0' : '1', env ?? '') as RecordOf<'INST'>;
const envText = (ino: string) => Object.entries(tracerEnv(ino)).map(([k, v]) => `${k}=${v}`).join('\n');
const k = (...records: NodeRecord[]): KeyRecords => groupRecords(records).keys.values().next().value!;

describe('changeOf: what --reconcile did, from the records and the instance before', () => {
  const ns = (ino: string) => rec('NS', '0', `${ID}ff`, '42', ino);
  const map = (ino: string) => rec('MAP', '0', `/sys/fs/bpf/mnt_ns_${ID}`, 'present', 'little', '1', dump(ino));
  const ok = (action: string) => rec('OK', '0', `execsnoop@${ID}.service`, action);
  it.each<[string, NodeRecord[], RecordOf<'INST'> | undefined, string, string | RegExp]>([
    ['nothing before: started', [ns('100'), map('100'), ok('started')], undefined, 'started', 'missing'],
    ['running and current: unchanged', [ns('100'), map('100'), ok('running')], inst('active', envText('100')), 'unchanged', ''],
    ['a new namespace: restarted, old → new', [ns('200'), map('200'), ok('restarted')], inst('active', envText('100')), 'restarted', 'stale: mount namespace 100 → 200'],
    ['a failed unit started again: restarted', [ns('100'), map('100'), ok('started')], inst('failed', envText('100')), 'restarted', 'was failed'],
    ['a failed unit of a restarted container', [ns('200'), map('200'), ok('started')], inst('failed', envText('100')), 'restarted', 'was failed; stale: mount namespace 100 → 200'],
    ['stopped by hand: started', [ns('100'), map('100'), ok('started')], inst('inactive', envText('100')), 'started', 'was inactive'],
    ['the template changed: restarted', [ns('100'), map('100'), ok('restarted')], inst('active', envText('100')), 'restarted', 'its unit template, program or env file changed'],
    ['container gone: removed', [rec('GONE', '0', 'docker', '1', 'No such container: x'), ok('stopped'), rec('MAPGONE', '0', 'm', 'removed')], inst('active', envText('100')), 'removed',
      'orphan: container gone (No such container: x)'],
    ['container stopped: removed', [rec('FACTS', '0', `${ID}ff`, 'stopped', '0', 'overlay2', '/u', '/l', ''), ok('stopped')], inst('active', envText('100')), 'removed', /^container not running \(stopped\)/],
    ['an error', [rec('ERR', '0', 'container web is not running (stopped)')], undefined, 'failed', 'container web is not running (stopped)'],
    ['the map read back does not hold exactly the inode', [ns('200'), map('100'), ok('restarted')], inst('active', envText('100')), 'failed', /does not hold inode 200/],
    ['no answer', [ns('100')], undefined, 'failed', 'the node script ended before this was done'],
  ])('%s', (_what, records, before, change, why) => {
    const r = changeOf(k(...records), before);
    expect(r.change).toBe(change);
    if (typeof why === 'string') expect(r.why).toBe(why);
    else expect(r.why).toMatch(why);
  });

  it.each<[string, string, string, boolean]>([
    ['env file written after the unit started', '1000', '1001', true],
    ['before', '1001', '1000', false],
    ['the same microsecond', '1000', '1000', false],
    ['start unknown', '', '1001', false],
    ['mtime unknown', '1000', '', false],
  ])('envNewer: %s', (_what, start, mtime, newer) => {
    expect(envNewer(k(rec('UNITSTART', '0', start, mtime)))).toBe(newer);
  });

  it.each<[string, boolean, string]>([
    ['env file newer than the unit, same namespace: restarted for that', true, 'stale: its env file changed after the unit started'],
    ['not newer: the template', false, 'its unit template, program or env file changed'],
  ])('%s', (_what, newer, why) => {
    const r = changeOf(k(ns('100'), map('100'), ok('restarted')), inst('active', envText('100')), newer);
    expect(r).toEqual({ change: 'restarted', why });
  });
});

describe('one node\'s answer → rows', () => {
  const t = (key: number, name: string, label?: string): Target => ({ node: '10.0.0.2', name, key, label, engine: 'docker' });
  const OTHER = 'aaaaaaaaaaaa';
  const GONE = 'bbbbbbbbbbbb';

  it('--status: the selected container\'s instance (key i<ID>), then every other instance; a container the engine does not know is an error', () => {
    const g = groupRecords([
      rec('FACTS', '0', `${ID}ff`, 'running', '42', 'overlay2', '/u', '/l', '/m'),
      rec('NS', '0', `${ID}ff`, '42', '100'),
      rec('INST', `i${ID}`, 'execsnoop', ID, 'loaded', 'active', 'running', '1', envText('100')),
      rec('MAPKEYS', `i${ID}`, `/sys/fs/bpf/mnt_ns_${ID}`, 'present', 'little', dump('100')),
      rec('GONE', '1', 'docker', '1', 'No such container: nosuch'),
      rec('GONE', `i${GONE}`, 'docker', '1', `No such container: ${GONE}`),
      rec('INST', `i${GONE}`, 'execsnoop', GONE, 'loaded', 'active', 'running', '1', envText('300')),
      rec('MAPKEYS', `i${GONE}`, `/sys/fs/bpf/mnt_ns_${GONE}`, 'present', 'little', dump('300')),
      rec('FACTS', `i${OTHER}`, `${OTHER}ff`, 'running', '43', 'overlay2', '/u2', '/l', '/m'),
      rec('NS', `i${OTHER}`, `${OTHER}ff`, '43', '400'),
      rec('INST', `i${OTHER}`, 'execsnoop', OTHER, 'loaded', 'failed', 'failed', '1', envText('400')),
      rec('MAPKEYS', `i${OTHER}`, `/sys/fs/bpf/mnt_ns_${OTHER}`, 'present', 'little', dump('400')),
      rec('LASTLOG', `i${OTHER}`, 'ERROR: attach failed'),
    ]);
    const r = statusReport('10.0.0.2', [t(0, `${ID}ffff`, `10.0.0.2,${ID}`), t(1, 'nosuch', '10.0.0.2,nosuch')], g);
    expect(r.rows.map(statusLine)).toEqual([
      `10.0.0.2,${ID} execsnoop@${ID}.service active\n`,
      `10.0.0.2,${GONE} execsnoop@${GONE}.service orphan container gone (docker: No such container: ${GONE})\n`,
      `10.0.0.2,${OTHER} execsnoop@${OTHER}.service failed unit failed; last log: ERROR: attach failed\n`,
    ]);
    expect(r.errors.map(([tg, why]) => [tg.name, why])).toEqual([['nosuch', 'No such container: nosuch']]);
  });

  it('--reconcile: a row per selected container, then per other instance that was dealt with', () => {
    const g = groupRecords([
      rec('INST', `i${ID}`, 'execsnoop', ID, 'loaded', 'active', 'running', '1', envText('100')),
      rec('INST', `i${GONE}`, 'execsnoop', GONE, 'loaded', 'active', 'running', '1', envText('300')),
      rec('NS', '0', `${ID}ff`, '42', '200'),
      rec('MAP', '0', `/sys/fs/bpf/mnt_ns_${ID}`, 'present', 'little', '1', dump('200')),
      rec('GONE', `i${GONE}`, 'docker', '1', `No such container: ${GONE}`),
      rec('OK', `i${GONE}`, `execsnoop@${GONE}.service`, 'stopped'),
      rec('MAPGONE', `i${GONE}`, `/sys/fs/bpf/mnt_ns_${GONE}`, 'removed'),
      rec('OK', '0', `execsnoop@${ID}.service`, 'restarted'),
    ]);
    const rows = reconcileReport('10.0.0.2', 'execsnoop', [t(0, `${ID}ffff`, `10.0.0.2,${ID}`)], g);
    expect(rows.map(changeLine)).toEqual([
      `10.0.0.2,${ID} execsnoop@${ID}.service restarted stale: mount namespace 100 → 200\n`,
      `10.0.0.2,${GONE} execsnoop@${GONE}.service removed orphan: container gone (No such container: ${GONE})\n`,
    ]);
  });

  it('a BUSY record: the node was not touched', () => {
    expect(groupRecords([rec('BUSY', '-', 'another sneakpeek run holds /run/lock/sneakpeek.lock (waited 30 s)')]).busy).toMatch(/another sneakpeek run/);
  });
});

describe('summaries', () => {
  it.each([
    [{ started: 2, restarted: 1, removed: 1, unchanged: 3, failed: 0 }, 0, '2 started, 1 restarted, 1 removed, 3 unchanged'],
    [{ started: 0, restarted: 0, removed: 0, unchanged: 0, failed: 1 }, 2, '0 started, 0 restarted, 0 removed, 0 unchanged, 1 failed, 2 nodes busy (left for the next run)'],
  ] as const)('reconcile %j', (counts, busy, want) => expect(reconcileSummary({ ...counts }, busy)).toBe(want));
  it.each([
    [{ active: 3, stale: 1 }, 0, '3 active, 1 stale'],
    [{ orphan: 1 }, 1, '1 orphan, 1 failed to look at'],
    [{}, 0, 'no instances'],
  ] as const)('status %j', (counts, failed, want) => expect(statusSummary(counts, failed)).toBe(want));
});

describe('node steps', () => {
  const cfg = parseConfig('envDir: /etc/sp\nlog: {target: file, dir: /var/log/sp}', 'test');
  const targets: Target[] = [{ node: '10.0.0.2', name: "it's", key: 0, engine: 'docker' }, { node: '10.0.0.2', name: 'db', key: 1, engine: 'crictl' }];

  it('--status reads only: no lock; every other instance only cluster-wide; values quoted', () => {
    expect(statusSteps(cfg, 'procmon', targets, true)).toEqual([
      'sp_lc_units execsnoop',
      "sp_lc_status 0 docker 'it'\\''s' execsnoop /etc/sp/execsnoop /sys/fs/bpf /var/log/sp",
      'sp_lc_status 1 crictl db execsnoop /etc/sp/execsnoop /sys/fs/bpf /var/log/sp',
      'sp_lc_others execsnoop /etc/sp/execsnoop /sys/fs/bpf /var/log/sp docker',
    ]);
    expect(statusSteps(DEFAULTS, 'fswatch', targets.slice(0, 1), false)).toEqual([
      'sp_lc_units fswatch',
      "sp_lc_status 0 docker 'it'\\''s' fswatch /etc/sneakpeek/fswatch '' ''",
    ]);
  });

  it('--reconcile: the lock first; the state before; setup per container; the rest; one reload; starts; one settle', () => {
    const steps = reconcileSteps(cfg, 'tcptracer', targets, true, { backend: 'bcc' });
    expect(steps[0]).toBe('sp_lock');
    expect(steps[1]).toMatch(/^sp_template tcptracer \/etc\/systemd\/system\/tcptracer@\.service '/);
    expect(steps.slice(2)).toEqual([
      'sp_lc_units tcptracer',
      'sp_lc_before tcptracer /etc/sp/tcptracer',
      "sp_cid= sp_id=; sp_tracer 0 docker 'it'\\''s' tcptracer bcc /sys/fs/bpf /etc/sp/tcptracer; sp_lc_saw; sp_lc_fresh 0 /etc/sp/tcptracer",
      'sp_cid= sp_id=; sp_tracer 1 crictl db tcptracer bcc /sys/fs/bpf /etc/sp/tcptracer; sp_lc_saw; sp_lc_fresh 1 /etc/sp/tcptracer',
      'sp_lc_rest all tcptracer /etc/sp/tcptracer docker bcc /sys/fs/bpf /etc/sp/execsnoop',
      'sp_daemon_reload',
      'sp_start 0',
      'sp_start 1',
      'sp_lc_start',
      'sp_lc_settle 0 1',
    ]);
    const fs = reconcileSteps(DEFAULTS, 'fswatch', [], false, { backend: 'bcc' });
    expect(fs).toContain("sp_lc_rest only fswatch /etc/sneakpeek/fswatch docker 2048 '' ''");
    expect(fs[fs.length - 1]).toBe('sp_lc_settle');
  });
});

describe('node-side helpers in a real dash', () => {
  it.each([
    ['Error response from daemon: No such container: abc', 0],
    ['Error: No such container: abc', 0],
    ['Error: inspecting object: no such container abc', 0],
    ['rpc error: code = NotFound desc = an error occurred when try to find container "abc": not found', 0],
    ['ctr: container "abc" in namespace "k8s.io": not found', 0],
    ["ctr: no container 'abc' in namespace k8s.io", 0],
    ['ctr: no containerd socket at /run/containerd/containerd.sock', 1],
    ["ctr: 'ab' matches 2 containers in namespace k8s.io; give more of the id", 1],
    ['Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?', 1],
    ['sh: 1: docker: not found', 1],
    ['', 1],
  ])('sp_lc_gone %j → %i', (why, code) => {
    const r = runSteps([`sp_lc_gone '${why.replace(/'/g, `'\\''`)}' && rec OK - x gone || rec OK - x alive`]);
    expect(r.records).toEqual([{ tag: 'OK', key: '-', unit: 'x', action: code === 0 ? 'gone' : 'alive' }]);
  });

  it('sp_lc_envval: the last value; none in an old file or no file', () => {
    const f = path.join(tmp, 'a.env');
    writeFileSync(f, `${MANAGED_HEADER}\nSNEAKPEEK_CONTAINER=x\nSNEAKPEEK_ENGINE=podman\n`);
    const old = path.join(tmp, 'old.env');
    writeFileSync(old, `${MANAGED_HEADER}\nSNEAKPEEK_CONTAINER=x\n`);
    // not ours: no managed-by first line, or a symbolic link to one that has it
    const alien = path.join(tmp, 'alien.env');
    writeFileSync(alien, 'SNEAKPEEK_ENGINE=podman\n');
    symlinkSync(f, path.join(tmp, 'link.env'));
    const r = runSteps([
      `rec OK - a "$(sp_lc_envval ${f} SNEAKPEEK_ENGINE)"`,
      `rec OK - b "$(sp_lc_envval ${old} SNEAKPEEK_ENGINE)"`,
      `rec OK - c "$(sp_lc_envval ${path.join(tmp, 'none.env')} SNEAKPEEK_ENGINE)"`,
      `rec OK - d "$(sp_lc_envval ${alien} SNEAKPEEK_ENGINE)"`,
      `rec OK - e "$(sp_lc_envval ${path.join(tmp, 'link.env')} SNEAKPEEK_ENGINE)"`,
    ]);
    expect(r.records.map((x) => (x as RecordOf<'OK'>).action)).toEqual(['podman', '', '', '', '']);
  });

  it('sp_lc_ids: env files and units that are not inactive, once each, ids only', () => {
    const d = path.join(tmp, 'env');
    mkdirSync(d);
    for (const f of [`${ID}.env`, 'cccccccccccc.env', 'notanid.env', `${ID}.env.sp-new.1`]) writeFileSync(path.join(d, f), `${MANAGED_HEADER}\nX=1\n`);
    // not ours (left alone, never an instance): no managed-by first line, a symbolic link, a directory
    writeFileSync(path.join(d, 'aaaaaaaaaaaa.env'), 'X=1\n');
    symlinkSync(path.join(d, 'cccccccccccc.env'), path.join(d, 'bbbbbbbbbbbb.env'));
    mkdirSync(path.join(d, 'ffffffffffff.env'));
    const units = [`${ID} loaded active running`, 'dddddddddddd loaded failed failed', 'eeeeeeeeeeee loaded inactive dead'].join('\n');
    const r = runSteps([sh`sp_lc_units=${units}`, `rec OK - ids "$(sp_lc_ids execsnoop ${d} | tr '\\n' ' ')"`, sh`sp_lc_aliens ${d}`]);
    expect((r.records[0] as RecordOf<'OK'>).action).toBe(`${ID} cccccccccccc dddddddddddd `);
    expect(r.records.slice(1).map((x) => (x as RecordOf<'WARN'>).message)).toEqual([
      `${d}/aaaaaaaaaaaa.env: not written by sneakpeek (no managed-by first line): left alone`,
      `${d}/bbbbbbbbbbbb.env: not written by sneakpeek (a symbolic link): left alone`,
      `${d}/ffffffffffff.env: not written by sneakpeek (not a regular file): left alone`,
    ]);
  });
});

describe('the command line: --status / --reconcile refuse what does not go with them (exit 2, one line, no node asked)', () => {
  async function cli(argv: string[]) {
    const [out, err] = [new PassThrough(), new PassThrough()];
    let stdout = '';
    let stderr = '';
    out.on('data', (c) => (stdout += c));
    err.on('data', (c) => (stderr += c));
    const code = await main(argv, { stdout: out, stderr: err, stdin: new PassThrough(), env: { SNEAKPEEK_CONFIG: TEST_CONFIG } });
    return { code, stdout, stderr };
  }
  it.each([
    [['-t', 'procmon', '--status', '--reconcile', '-n', 'web'], '--status and --reconcile exclude each other'],
    [['-t', 'fswatch', '--reconcile', '--stop', '-n', 'web'], '--reconcile and --stop exclude each other'],
    [['-t', 'tcptracer', '--status', '--backend', 'bpftrace', '-n', 'web'], '--backend does not apply to --status'],
    [['-t', 'files', '--status', '-n', 'web'], '--status does not apply to -t files (only to -t fswatch, -t procmon, -t tcptracer)'],
    [['-t', 'merged_dir', '--reconcile', '-n', 'web'], '--reconcile does not apply to -t merged_dir (only to -t fswatch, -t procmon, -t tcptracer)'],
    [['-t', 'fswatch', '--json', '-n', 'web'], '--json with -t fswatch goes with --status or --reconcile'],
    [['-t', 'procmon', '--reconcile', '-f', 'web.json'], '--reconcile asks the engine on the node: name the container with -n, not -f'],
    // --cleanup did the cleanup (kubectl delete) and ignored these
    [['--cleanup', '--status'], '--cleanup takes only --namespace NS or -A (and --dry-run), not --status'],
    [['--cleanup', '--reconcile', '-A'], '--cleanup takes only --namespace NS or -A (and --dry-run), not --reconcile'],
    [['--cleanup', '--stop', '--purge'], '--cleanup takes only --namespace NS or -A (and --dry-run), not --stop'],
    [['--cleanup', '--events'], '--cleanup takes only --namespace NS or -A (and --dry-run), not --events'],
  ])('%j', async (argv, msg) => {
    const r = await cli(argv);
    expect(r.stderr).toBe(`sneakpeek: ${msg} (see sneakpeek --help)\n`);
    expect(r.stdout).toBe('');
    expect(r.code).toBe(2);
  });

  it('--dry-run shows the node script: --status takes no lock, --reconcile does', async () => {
    const st = await cli(['-t', 'procmon', '--status', '-n', 'web', '--dry-run']);
    expect(st.code).toBe(0);
    expect(st.stdout).toContain('\n# ---- steps\nsp_lc_units execsnoop\nsp_lc_status 0 docker web execsnoop /etc/sneakpeek/execsnoop /sys/fs/bpf \'\'\nexit 0\n');
    const rc = await cli(['-t', 'fswatch', '--reconcile', '-n', 'web', '--dry-run']);
    expect(rc.stdout).toMatch(/\n# ---- steps\nsp_lock\nsp_inotify\nsp_template fswatch /);
  });
});
