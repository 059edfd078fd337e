// crictl (containerd, CRI-O) from recorded output: a stub prints the recorded `crictl inspect`
// JSON and scripts/get_container_ns.sh's functions run in a real sh (dash).
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULTS, type Config } from '../../lib/config.ts';
import { FilesConsumer } from '../../lib/diff-stream.ts';
import { sh, shQuote } from '../../lib/quote.ts';
import { flat, runSteps } from '../helpers/node-sh.ts';

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
  // no containerd socket: a stopped container's layers are not asked for through ctr
  return { ...DEFAULTS, engine: 'crictl', paths: { ...DEFAULTS.paths, crictl: bin }, containerd: { address: path.join(tmp, 'no.sock'), namespace: 'k8s.io' } };
}

/** Records of `steps` run with the engine functions and this config, as [TAG, KEY, field…]. */
const run = (cfg: Config, steps: string[]) => flat(runSteps(steps, { cfg, libs: ['get_container_ns'] }).records);

const withPid = (text: string, pid: number) => text.replace(/"pid": \d+,/, `"pid": ${pid},`);
const myMntIno = String(statSync(`/proc/${process.pid}/ns/mnt`).ino);

describe('node side: sp_ns / sp_cid / sp_inspect with crictl', () => {
  it.each(['containerd-inspect.json', 'cri-o-inspect.json'])('sp_ns on %s gives the inode stat -L gives for .info.pid', (file) => {
    const cfg = stub(`ok-${file}`, withPid(fixture(file), process.pid));
    const id = JSON.parse(fixture(file)).status.id as string;
    expect(run(cfg, ['sp_ns 7 crictl web'])).toEqual([['NS', '7', id, String(process.pid), myMntIno]]);
  });

  it.each([
    ['not found', '', fixture('notfound.txt').trim(), /not found$/],
    ['exited', fixture('containerd-inspect.json').replace('CONTAINER_RUNNING', 'CONTAINER_EXITED'), undefined, /is not running \(stopped\)/],
    ['pid 0', withPid(fixture('containerd-inspect.json'), 0), undefined, /has no main process \(pid '0'\)/],
    ['not crictl output', '{"foo": 1}', undefined, /no container id/],
  ])('sp_ns: %s → one ERR record, never an inode', (name, text, fail, msg) => {
    const recs = run(stub(`bad-${name}`, text, fail), ['sp_ns 3 crictl web || rec DONE 3']);
    expect(recs[0]![0]).toBe('ERR');
    expect(recs[0]![2]).toMatch(msg);
    expect(recs[1]).toEqual(['DONE', '3']);
  });

  it('sp_cid gives the 12-character id', () => {
    const cfg = stub('cid', fixture('cri-o-inspect.json'));
    expect(run(cfg, ['sp_cid 1 crictl db && rec OK 1 "$sp_cid" -'])).toEqual([['OK', '1', 'e4a1c9b7d5f3', '-']]);
  });

  it.each([
    ['containerd-mountinfo.txt', '/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/418/fs',
      ['412', '411', '405'].map((n) => `/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/${n}/fs`).join(':')],
    ['cri-o-mountinfo.txt', '/var/lib/containers/storage/overlay/1c3e5a7b9d1f3a5c7e9b1d3f5a7c9e1b3d5f7a9c1e3b5d7f9a1c3e5b7d9f1a3c/diff',
      '/var/lib/containers/storage/overlay/l/QZ3X5F7H2J4K6M8N0P2R4T6V8X:/var/lib/containers/storage/overlay/l/A1B3C5D7E9F1G3H5J7K9L1M3N5'],
  ])('sp_fx_rootmount reads the root mount of %s', (file, upper, lower) => {
    const mi = path.join(FIX, file);
    const recs = run(DEFAULTS, [sh`rec FACTS 0 - - - "$(sp_fx_rootmount ${mi} fstype)" "$(sp_fx_rootmount ${mi} upper)" "$(sp_fx_rootmount ${mi} lower)" -`]);
    expect(recs).toEqual([['FACTS', '0', '-', '-', '-', 'overlay', upper, lower, '-']]);
  });

  it('sp_fx_rootmount on a root that is not overlay: its fstype, no layers', () => {
    const mi = path.join(FIX, 'host-mountinfo.txt');
    expect(run(DEFAULTS, [sh`rec FACTS 0 - - - "$(sp_fx_rootmount ${mi} fstype)" "$(sp_fx_rootmount ${mi} upper)" "$(sp_fx_rootmount ${mi} lower)" -`]))
      .toEqual([['FACTS', '0', '-', '-', '-', 'ext4', '', '', '-']]);
  });

  it('sp_fx_hostmount finds the host mount of an upperdir', () => {
    const upper = '/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/418/fs';
    const recs = run(DEFAULTS, [sh`rec M 0 "$(sp_fx_hostmount upper ${upper} ${path.join(FIX, 'host-mountinfo.txt')})"`]);
    expect(recs).toEqual([['M', '0', '/run/containerd/io.containerd.runtime.v2.task/k8s.io/5b3f2c8e9a1d4f6b7c0e2a4d6f8b0c2e4a6d8f0b2c4e6a8d0f2b4c6e8a0d2f4b/rootfs']]);
  });

  it('sp_inspect on a process whose root is not overlay: FACTS say so, and -t files refuses it clearly', () => {
    const cfg = stub('inspect-host', withPid(fixture('containerd-inspect.json'), process.pid));
    const recs = run(cfg, ['sp_inspect 4 crictl app || rec ERR 4 failed']);
    const rootFs = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.split(' ')[4] === '/').pop()!.split(' - ')[1]!.split(' ')[0]!;
    expect(recs[0]!.slice(0, 6)).toEqual(['FACTS', '4', '5b3f2c8e9a1d4f6b7c0e2a4d6f8b0c2e4a6d8f0b2c4e6a8d0f2b4c6e8a0d2f4b', 'running', String(process.pid), rootFs]);
    const consumer = new FilesConsumer([{ key: 4, name: 'app' }], { chroot: true, json: false, nul: false, all: false }, { line: () => {}, warn: () => {} });
    consumer.record(recs[0]!.join('\t'));
    expect(consumer.finish()[0]!.error).toBe(`app: container app uses storage driver '${rootFs}'; sneakpeek reads overlay2/overlay only`);
  });

  it('a FACTS record becomes the facts -t files works from', () => {
    const consumer = new FilesConsumer([{ key: 2, name: 'x' }], { chroot: true, json: false, nul: false, all: false }, { line: () => {}, warn: () => {} });
    consumer.record(['FACTS', '2', 'f'.repeat(64), 'running', '42', 'overlay', '/up', '/l1:/l2', '/merged'].join('\t'));
    consumer.record('DONE\t2');
    const [r] = consumer.finish();
    expect(r!.error).toBeUndefined();
    expect(r!.target.facts).toMatchObject({ upperDir: '/up', lowerDirs: ['/l1', '/l2'], mergedDir: '/merged', pid: 42, state: 'running', name: 'x' });
  });

  it('a hostile crictl path from the config stays one quoted word', () => {
    const canary = path.join(tmp, 'canary');
    const cfg: Config = { ...DEFAULTS, engine: 'crictl', paths: { ...DEFAULTS.paths, crictl: `/nonexistent$'x $(touch ${canary}) \`touch ${canary}\`` } };
    const recs = run(cfg, ['sp_ns 1 crictl web']);
    expect(recs[0]![0]).toBe('ERR');
    expect(() => statSync(canary)).toThrow();
  });
});
