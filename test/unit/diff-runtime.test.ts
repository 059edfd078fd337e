// The runtime rule (lib/runtime-rule.ts) and podman's own diff (lib/diff-podman.ts) over
// synthetic layer listings, case by case; the live engines hold the same cases in
// test/integration/runtimes-files.test.ts.
import { describe, expect, it } from 'vitest';
import { ChangeComputer, emptyExtras, layerKey, type LayerExtras } from '../../lib/diff.ts';
import { PodmanChangeComputer } from '../../lib/diff-podman.ts';
import { FilesConsumer } from '../../lib/diff-stream.ts';
import { diffModeOf, RUNTIME_PATHS } from '../../lib/runtime-rule.ts';
import { listing, type Layers, type Spec } from '../helpers/layer-spec.ts';

type Mode = 'docker' | 'runtime' | 'podman';
function diff(l: Layers, mode: Mode): string[] {
  const extras = emptyExtras();
  l.extras?.(extras);
  const out: string[] = [];
  const emit = (c: { kind: string; path: string }) => out.push(`${c.kind} /${c.path}`);
  const cc =
    mode === 'podman' ? new PodmanChangeComputer(extras, (c) => RUNTIME_PATHS.has(c.path) || emit(c))
    : new ChangeComputer(extras, emit, mode === 'runtime' ? RUNTIME_PATHS : undefined);
  for (const e of listing(l, 'd 755 4096')) cc.push(e);
  cc.end();
  return out;
}

// busybox-like image: /etc with files, /data trees, no /dev /proc /run /sys
const image: Record<string, Spec> = {
  etc: 'd 755 4096 1000', 'etc/motd': 'f 644 8 1000', 'etc/app': 'd 755 4096 1000', 'etc/app/app.conf': 'f 644 4 1000',
  data: 'd 755 4096 1000', 'data/keep.txt': 'f 644 5 1000', 'data/old': 'd 755 4096 1000', 'data/old/a.txt': 'f 644 2 1000',
  'data/old/b.txt': 'f 644 2 1000', 'data/old/deep': 'd 755 4096 1000', 'data/old/deep/c.txt': 'f 644 2 1000',
  tmp: 'd 1777 4096 1000',
};
// what runc makes in the upper dir: ctr's mount points; podman's files (and /etc copied up)
const ctrMade: Record<string, Spec> = { dev: 'd 755 4096 2000', proc: 'd 755 4096 2000', run: 'd 755 4096 2000', sys: 'd 755 4096 2000' };
const podmanMade: Record<string, Spec> = {
  ...ctrMade, etc: 'd 755 4096 2000', 'etc/hostname': 'f 644 0 2000', 'etc/hosts': 'f 644 0 2000', 'etc/mtab': 'l 777 12 2000',
  'run/.containerenv': 'f 644 0 2000',
};
const opaque = (path: string) => (x: LayerExtras) => x.opaque.add(layerKey(0, path));

describe('the runtime rule: entries the runtime made are read as docker reads its -init layer', () => {
  it.each<[string, Layers, string[], string[]]>([
    ['nothing but what runc made (ctr)', { upper: ctrMade, lowers: [image] }, ['A /dev', 'A /proc', 'A /run', 'A /sys'], []],
    ['nothing but what runc made (podman\'s files, /etc copied up)', { upper: podmanMade, lowers: [image] },
      ['A /dev', 'C /etc', 'A /etc/hostname', 'A /etc/hosts', 'A /etc/mtab', 'A /proc', 'A /run', 'A /run/.containerenv', 'A /sys'], []],
    ['/tmp/x written: docker diff\'s two lines, /etc left alone', { upper: { ...podmanMade, tmp: 'd 1777 4096 3000', 'tmp/x': 'f 644 2 3000' }, lowers: [image] },
      ['A /dev', 'C /etc', 'A /etc/hostname', 'A /etc/hosts', 'A /etc/mtab', 'A /proc', 'A /run', 'A /run/.containerenv', 'A /sys', 'C /tmp', 'A /tmp/x'],
      ['C /tmp', 'A /tmp/x']],
    ['a real change in /etc still makes /etc C', { upper: { ...podmanMade, 'etc/motd': 'c 0' }, lowers: [image] },
      ['A /dev', 'C /etc', 'A /etc/hostname', 'A /etc/hosts', 'D /etc/motd', 'A /etc/mtab', 'A /proc', 'A /run', 'A /run/.containerenv', 'A /sys'],
      ['C /etc', 'D /etc/motd']],
    ['beneath a runtime directory: compared as under an -init layer\'s directory', {
      upper: { ...ctrMade, 'run/secrets': 'd 755 4096 2000', 'run/secrets/kubernetes.io': 'd 755 4096 2000', 'run/app.pid': 'f 644 3 3000' }, lowers: [image],
    }, ['A /dev', 'A /proc', 'A /run', 'A /run/app.pid', 'A /run/secrets', 'A /run/secrets/kubernetes.io', 'A /sys'],
      ['A /run/app.pid', 'A /run/secrets/kubernetes.io']],
    ['kubelet\'s service-account mount points under an image\'s /run: only those the list does not name', {
      upper: { run: 'd 755 4096 2000', 'run/secrets': 'd 755 4096 2000', 'run/secrets/kubernetes.io': 'd 755 4096 2000', 'run/secrets/kubernetes.io/serviceaccount': 'd 755 4096 2000' },
      lowers: [{ ...image, run: 'd 755 4096 1000' }],
    }, ['C /run', 'A /run/secrets', 'A /run/secrets/kubernetes.io', 'A /run/secrets/kubernetes.io/serviceaccount'],
      ['A /run/secrets/kubernetes.io', 'A /run/secrets/kubernetes.io/serviceaccount']],
    ['a runtime path the image has (an /etc/hosts copied up): no line', { upper: { etc: 'd 755 4096 1000', 'etc/hosts': 'f 644 9 3000' }, lowers: [{ ...image, 'etc/hosts': 'f 644 1 1000' }] },
      ['C /etc', 'C /etc/hosts'], []],
    ['a path beside a runtime path is the container\'s', { upper: { etc: 'd 755 4096 1000', 'etc/hostname.bak': 'f 644 1 3000' }, lowers: [image] },
      ['C /etc', 'A /etc/hostname.bak'], ['C /etc', 'A /etc/hostname.bak']],
  ])('%s', (_name, l, docker, runtime) => {
    expect(diff(l, 'docker')).toEqual(docker);
    expect(diff(l, 'runtime')).toEqual(runtime);
  });
});

describe("podman diff: containers/storage's native overlay diff, then podman's initInodes left out", () => {
  it.each<[string, Layers, string[], string[]]>([
    // [name, layers, docker's naive diff (+ the rule), podman's]
    ['a fresh container: only C /etc (the runtime\'s files made it)', { upper: podmanMade, lowers: [image] }, [], ['C /etc']],
    ['a new file: A, and its unrecorded parent C', { upper: { etc: 'd 755 4096 1000', 'etc/new': 'f 644 1 3000' }, lowers: [image] }, ['C /etc', 'A /etc/new'], ['C /etc', 'A /etc/new']],
    ['a new tree', { upper: { n: 'd 755 4096 3000', 'n/x': 'd 755 4096 3000', 'n/x/f': 'f 644 1 3000' }, lowers: [image] }, ['A /n', 'A /n/x', 'A /n/x/f'], ['A /n', 'A /n/x', 'A /n/x/f']],
    ['a file edited in place: no C for its unchanged directory', { upper: { etc: 'd 755 4096 1000', 'etc/app': 'd 755 4096 1000', 'etc/app/app.conf': 'f 644 9 3000' }, lowers: [image] },
      ['C /etc', 'C /etc/app', 'C /etc/app/app.conf'], ['C /etc/app/app.conf']],
    ['a file opened for writing, unchanged (a copy-up): C', { upper: { etc: 'd 755 4096 1000', 'etc/motd': 'f 644 8 1000' }, lowers: [image] }, [], ['C /etc/motd']],
    ['a directory whose mtime changed: C (size, mode, mtime compared)', { upper: { etc: 'd 755 4096 2000' }, lowers: [image] }, [], ['C /etc']],
    ['a directory chowned only: no change (uid, gid not compared)', { upper: { data: 'd 755 4096 1000 65534 65534' }, lowers: [image] }, ['C /data'], []],
    ['a directory chmodded: C', { upper: { data: 'd 700 4096 1000' }, lowers: [image] }, ['C /data'], ['C /data']],
    ['a deleted file: D, parent C', { upper: { etc: 'd 755 4096 1000', 'etc/motd': 'c 0' }, lowers: [image] }, ['C /etc', 'D /etc/motd'], ['C /etc', 'D /etc/motd']],
    ['a deleted directory: only its top D', { upper: { data: 'd 755 4096 1000', 'data/old': 'c 0' }, lowers: [image] }, ['C /data', 'D /data/old'], ['C /data', 'D /data/old']],
    ['a whiteout of what no layer has: still D', { upper: { etc: 'd 755 4096 1000', 'etc/ghost': 'c 0' }, lowers: [image] }, [], ['C /etc', 'D /etc/ghost']],
    ['a directory deleted and re-created (opaque): D dir, its new content walked', {
      upper: { data: 'd 755 4096 3000', 'data/old': 'd 755 4096 3000', 'data/old/deep': 'd 755 4096 3000', 'data/old/new.txt': 'f 644 2 3000', 'data/old/a.txt': 'f 644 6 3000' },
      lowers: [image], extras: opaque('data/old'),
    }, ['C /data', 'C /data/old', 'C /data/old/a.txt', 'D /data/old/b.txt', 'C /data/old/deep', 'D /data/old/deep/c.txt', 'A /data/old/new.txt'],
      ['C /data', 'D /data/old', 'C /data/old/a.txt', 'C /data/old/deep', 'A /data/old/new.txt']],
    ['an opaque directory the image never had: A', { upper: { n: 'd 755 4096 3000', 'n/f': 'f 644 1 3000' }, lowers: [image], extras: opaque('n') }, ['A /n', 'A /n/f'], ['A /n', 'A /n/f']],
    ['a C of a file makes no parent C; an A then does', {
      upper: { etc: 'd 755 4096 1000', 'etc/app': 'd 755 4096 1000', 'etc/app/app.conf': 'f 600 4 1000', 'etc/app/z.conf': 'f 644 1 3000' }, lowers: [image],
    }, ['C /etc', 'C /etc/app', 'C /etc/app/app.conf', 'A /etc/app/z.conf'], ['C /etc/app/app.conf', 'C /etc', 'C /etc/app', 'A /etc/app/z.conf']],
    ['a renamed directory: D old, A new', { upper: { data: 'd 755 4096 3000', 'data/old': 'c 0', 'data/older': 'd 755 4096 1000', 'data/older/a.txt': 'f 644 2 1000' }, lowers: [image] },
      ['C /data', 'D /data/old', 'A /data/older', 'A /data/older/a.txt'], ['C /data', 'D /data/old', 'A /data/older', 'A /data/older/a.txt']],
  ])('%s', (_name, l, docker, podman) => {
    expect(diff(l, 'runtime')).toEqual(docker);
    expect(diff(l, 'podman')).toEqual(podman);
  });

  it('several lower layers: the first that has the path decides; a whiteout in a layer, at the path or a parent, makes it new', () => {
    const lowers = [
      // layer 1 (top): deleted /data/old in the image, re-added /etc/motd
      { data: 'd 755 4096 1000', 'data/old': 'c 0', etc: 'd 755 4096 1000', 'etc/motd': 'f 644 8 1000' },
      image,
    ];
    expect(diff({ upper: { data: 'd 755 4096 1000', 'data/old': 'd 755 4096 3000', 'data/old/a.txt': 'f 644 1 3000' }, lowers }, 'podman'))
      .toEqual(['C /data', 'A /data/old', 'A /data/old/a.txt']);
    expect(diff({ upper: { etc: 'd 755 4096 1000', 'etc/motd': 'f 644 9 3000' }, lowers }, 'podman')).toEqual(['C /etc/motd']);
    // an opaque dir over a layer whose parent is a whiteout: new, not deleted
    expect(diff({ upper: { data: 'd 755 4096 1000', 'data/old': 'd 755 4096 3000', 'data/old/deep': 'd 755 4096 3000' }, lowers, extras: opaque('data/old') }, 'podman'))
      .toEqual(['C /data', 'A /data/old', 'A /data/old/deep']);
  });
});

describe('which diff an engine gets', () => {
  it.each([
    ['docker', undefined, 'docker'], ['podman', 'native', 'podman'], ['podman', undefined, 'podman'], ['podman', 'naive', 'podman-naive'],
    ['ctr', undefined, 'runtime'], ['crictl', undefined, 'runtime'], ['containerd', undefined, 'runtime'],
  ])('%s (podman diff %s) → %s', (engine, pdiff, want) => expect(diffModeOf(engine, pdiff)).toBe(want));

  const records = (upper: Record<string, Spec>) =>
    listing({ upper, lowers: [image] }, 'd 755 4096').map((e) => ['F', '0', e.type, e.mode.toString(8), e.uid, e.gid, e.size, `${e.mtimeSec}.${e.mtimeNsec}`, `${String(e.layer).padStart(3, '0')}/${e.path}`.replace(/\//g, '\x01')].join('\t'));
  const run = (engine: string | undefined, node: string[]) => {
    const lines: string[] = [];
    const c = new FilesConsumer([{ key: 0, name: 'c', engine }], { chroot: true, json: false, nul: false, all: false }, { line: (l) => void lines.push(l.trim()), warn: () => {} });
    c.record(['FACTS', '0', 'a'.repeat(64), 'running', '1', 'overlay', '/u', '/l', '/m'].join('\t'));
    for (const r of node) c.record(r);
    for (const r of records({ ...podmanMade, 'etc/app': 'd 755 4096 1000', 'etc/app/app.conf': 'f 644 9 3000' })) c.record(r);
    c.record('DONE\t0');
    expect(c.finish()[0]!.error).toBeUndefined();
    return lines;
  };

  it('the node\'s ENGINE record decides (podman\'s native or naive diff); without one, the target\'s engine', () => {
    const docker = ['A /dev', 'C /etc', 'C /etc/app', 'C /etc/app/app.conf', 'A /etc/hostname', 'A /etc/hosts', 'A /etc/mtab', 'A /proc', 'A /run', 'A /run/.containerenv', 'A /sys'];
    expect(run(undefined, [])).toEqual(docker);
    expect(run('podman', [])).toEqual(['C /etc', 'C /etc/app/app.conf']);
    expect(run('docker', ['ENGINE\t0\tpodman\tnative'])).toEqual(['C /etc', 'C /etc/app/app.conf']);
    expect(run('podman', ['ENGINE\t0\tpodman\tnaive'])).toEqual(['C /etc', 'C /etc/app', 'C /etc/app/app.conf']);
    expect(run('containerd', ['ENGINE\t0\tctr\t'])).toEqual(['C /etc', 'C /etc/app', 'C /etc/app/app.conf']);
    expect(run('docker', ['ENGINE\t0\tdocker\t'])).toEqual(docker);
  });
});
