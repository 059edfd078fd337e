// crictl (containerd, CRI-O) from recorded output: crictl is not installed here, so a stub
// prints the recorded `crictl inspect` JSON and the generated node functions run in a real sh.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULTS, type Config } from '../../lib/config.ts';
import { crictlFacts, crictlStatus, isCrictlInspect } from '../../lib/crictl.ts';
import { CRICTL_HELPERS, cidFn, inspectFn, nsFn } from '../../lib/engine-script.ts';
import { FilesConsumer } from '../../lib/diff-stream.ts';
import { nodeScript } from '../../lib/node-script.ts';
import { shQuote } from '../../lib/quote.ts';
import { RecordSplitter, splitFields } from '../../lib/wire.ts';

const FIX = path.resolve(import.meta.dirname, '../fixtures/crictl');
const fixture = (name: string) => readFileSync(path.join(FIX, name), 'utf8');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'sp-crictl-unit-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A crictl stub that prints `text` for `inspect`, or fails like crictl with `fail`. */
function stub(name: string, text: string, fail?: string): Config {
  const out = path.join(tmp, `${name}.out`);
  writeFileSync(out, fail ?? text);
  const bin = path.join(tmp, name);
  writeFileSync(bin, `#!/bin/sh\n[ "$1" = inspect ] || exit 9\n${fail ? `cat ${shQuote(out)} >&2; exit 1` : `cat ${shQuote(out)}`}\n`);
  chmodSync(bin, 0o755);
  return { ...DEFAULTS, engine: 'crictl', paths: { ...DEFAULTS.paths, crictl: bin } };
}

function run(script: string): string[][] {
  const r = spawnSync('sh', ['-s'], { input: script });
  const recs: string[][] = [];
  new RecordSplitter().push(r.stdout, (rec) => recs.push(splitFields(rec)));
  return recs;
}

const withPid = (text: string, pid: number) => text.replace(/"pid": \d+,/, `"pid": ${pid},`);
const myMntIno = String(statSync(`/proc/${process.pid}/ns/mnt`).ino);

describe('crictl inspect documents', () => {
  it.each([
    ['containerd-inspect.json', { id: '5b3f2c8e9a1d4f6b7c0e2a4d6f8b0c2e4a6d8f0b2c4e6a8d0f2b4c6e8a0d2f4b', name: 'app', state: 'CONTAINER_RUNNING', pid: 51873 }],
    ['cri-o-inspect.json', { id: 'e4a1c9b7d5f3a1c9e7b5d3f1a9c7e5b3d1f9a7c5e3b1d9f7a5c3e1b9d7f5a3c1', name: 'db', state: 'CONTAINER_RUNNING', pid: 28116 }],
  ])('%s → id, name, state, .info.pid', (file, want) => {
    const doc = JSON.parse(fixture(file));
    expect(isCrictlInspect(doc)).toBe(true);
    expect(crictlStatus(doc)).toEqual(want);
  });

  it('docker inspect is not crictl', () => expect(isCrictlInspect({ Id: 'x', GraphDriver: {} })).toBe(false));

  it.each([
    [['overlay', '/u', '/l1:/l2', '/m'], { upperDir: '/u', lowerDirs: ['/l1', '/l2'], mergedDir: '/m' }],
    [['overlay', '/u', '', '/proc/1/root'], { upperDir: '/u', lowerDirs: [], mergedDir: '/proc/1/root' }],
  ])('facts from the node fields %j', (dirs, want) => {
    expect(crictlFacts(JSON.parse(fixture('containerd-inspect.json')), dirs)).toMatchObject({ ...want, name: 'app', pid: 51873, driver: 'overlay' });
  });

  it('refuses a root that is not overlay', () => {
    expect(() => crictlFacts(JSON.parse(fixture('containerd-inspect.json')), ['', '', '', ''])).toThrow(/not on an overlay root/);
  });
});

describe('node side: sp_ns / sp_cid / sp_inspect with crictl', () => {
  it.each(['containerd-inspect.json', 'cri-o-inspect.json'])('sp_ns on %s gives the inode stat -L gives for .info.pid', (file) => {
    const cfg = stub(`ok-${file}`, withPid(fixture(file), process.pid));
    const id = JSON.parse(fixture(file)).status.id as string;
    expect(run(nodeScript([nsFn(cfg)], ['sp_ns 7 web']))).toEqual([['NS', '7', id, String(process.pid), myMntIno]]);
  });

  it.each([
    ['not found', '', fixture('notfound.txt').trim(), /not found$/],
    ['exited', fixture('containerd-inspect.json').replace('CONTAINER_RUNNING', 'CONTAINER_EXITED'), undefined, /is not running \(CONTAINER_EXITED\)/],
    ['pid 0', withPid(fixture('containerd-inspect.json'), 0), undefined, /has no main process \(pid '0'\)/],
    ['not crictl output', '{"foo": 1}', undefined, /no container id/],
  ])('sp_ns: %s → one ERR record, never an inode', (name, text, fail, msg) => {
    const recs = run(nodeScript([nsFn(stub(`bad-${name}`, text, fail))], ['sp_ns 3 web || rec GONE 3']));
    expect(recs[0]![0]).toBe('ERR');
    expect(recs[0]![2]).toMatch(msg);
    expect(recs[1]).toEqual(['GONE', '3']);
  });

  it('sp_cid gives the 12-character id', () => {
    const cfg = stub('cid', fixture('cri-o-inspect.json'));
    expect(run(nodeScript([cidFn(cfg)], ['sp_cid 1 db && rec CID 1 "$sp_cid"']))).toEqual([['CID', '1', 'e4a1c9b7d5f3']]);
  });

  it.each([
    ['containerd-mountinfo.txt', '/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/418/fs',
      ['412', '411', '405'].map((n) => `/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/${n}/fs`).join(':')],
    ['cri-o-mountinfo.txt', '/var/lib/containers/storage/overlay/1c3e5a7b9d1f3a5c7e9b1d3f5a7c9e1b3d5f7a9c1e3b5d7f9a1c3e5b7d9f1a3c/diff',
      '/var/lib/containers/storage/overlay/l/QZ3X5F7H2J4K6M8N0P2R4T6V8X:/var/lib/containers/storage/overlay/l/A1B3C5D7E9F1G3H5J7K9L1M3N5'],
  ])('sp_overlay_dirs reads the root mount of %s', (file, upper, lower) => {
    const script = nodeScript([CRICTL_HELPERS], [`sp_overlay_dirs ${shQuote(path.join(FIX, file))} && rec DIRS 0 "$sp_driver" "$sp_upper" "$sp_lower"`]);
    expect(run(script)).toEqual([['DIRS', '0', 'overlay', upper, lower]]);
  });

  it('sp_overlay_dirs fails on a root that is not overlay', () => {
    const script = nodeScript([CRICTL_HELPERS], [`sp_overlay_dirs ${shQuote(path.join(FIX, 'host-mountinfo.txt'))} || rec NO 0`]);
    expect(run(script)).toEqual([['NO', '0']]);
  });

  it('sp_mountpoint_of finds the host mount of an upperdir', () => {
    const upper = '/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/418/fs';
    const script = nodeScript([CRICTL_HELPERS], [`rec M 0 "$(sp_mountpoint_of ${shQuote(path.join(FIX, 'host-mountinfo.txt'))} ${shQuote(upper)})"`]);
    expect(run(script)).toEqual([['M', '0', '/run/containerd/io.containerd.runtime.v2.task/k8s.io/5b3f2c8e9a1d4f6b7c0e2a4d6f8b0c2e4a6d8f0b2c4e6a8d0f2b4c6e8a0d2f4b/rootfs']]);
  });

  it('sp_inspect on a process whose root is not overlay: one clear ERR', () => {
    const cfg = stub('inspect-host', withPid(fixture('containerd-inspect.json'), process.pid));
    const recs = run(nodeScript([inspectFn(cfg)], ['sp_inspect 4 app || rec FAILED 4']));
    expect(recs[0]![0]).toBe('ERR');
    expect(recs[0]![2]).toMatch(/is not an overlay mount/);
  });

  it('a crictl FACTS record becomes the facts -t files works from', () => {
    const json = fixture('containerd-inspect.json');
    const consumer = new FilesConsumer([{ key: 2, name: 'x' }], { chroot: true, json: false, nul: false, all: false }, { line: () => {}, warn: () => {} });
    consumer.record(['FACTS', '2', 'overlay', '/up', '/l1:/l2', '/merged', 'f'.repeat(64), json].join('\t'));
    consumer.record('DONE\t2');
    const [r] = consumer.finish();
    expect(r!.error).toBeUndefined();
    expect(r!.target.facts).toMatchObject({ upperDir: '/up', lowerDirs: ['/l1', '/l2'], mergedDir: '/merged', name: 'app' });
  });

  it('a hostile crictl path from the config stays one quoted word', () => {
    const canary = path.join(tmp, 'canary');
    const cfg: Config = { ...DEFAULTS, engine: 'crictl', paths: { ...DEFAULTS.paths, crictl: `/nonexistent$'x $(touch ${canary}) \`touch ${canary}\`` } };
    const recs = run(nodeScript([nsFn(cfg)], ['sp_ns 1 web']));
    expect(recs[0]![0]).toBe('ERR');
    expect(() => statSync(canary)).toThrow();
  });
});
