// sneakpeek -t files --chroot -f <docker inspect> prints exactly docker diff's lines,
// for containers that change their file system in every way overlay2 records.
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, runTool, sortedLines } from '../helpers/cli.ts';
import { spawnSync } from 'node:child_process';
import { changeCases } from '../helpers/change-matrix.ts';
import { cleanupContainers, docker, dockerDiffSorted, dockerTry, ensureBusyboxImage, exec, importImage, makeRootfs, runContainer } from '../helpers/docker.ts';
import { dockerUp, isRoot, missing } from '../helpers/prereq.ts';

const skip = missing({ root: isRoot, 'docker engine': dockerUp });
// File names cannot hold '/': the canary is relative, so it would land in whatever directory
// a shell ran it from (the repo, a layer dir, /); we look in each.
const CANARY = `sp-files-canary-${process.pid}`;
const canaryFound = (...more: string[]) => [ROOT, '/', os.tmpdir(), '/tmp', ...more].some((d) => existsSync(path.join(d, CANARY)));
const CASES = changeCases(CANARY);

describe.skipIf(skip)('-t files --chroot matches docker diff', () => {
  let image: string;
  let dir: string;
  const name = (i: number) => `sp-files-${process.pid}-${i}`;

  beforeAll(() => {
    image = ensureBusyboxImage();
    dir = mkdtempSync(path.join(os.tmpdir(), 'sp-files-'));
  });
  afterAll(() => {
    cleanupContainers();
    rmSync(dir, { recursive: true, force: true });
  });

  function check(container: string): string[] {
    const inspectFile = path.join(dir, `${container}.json`);
    writeFileSync(inspectFile, docker('inspect', container));
    const r = runTool('sneakpeek', ['-t', 'files', '--chroot', '-f', inspectFile]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const ours = sortedLines(r.stdout);
    expect(ours).toEqual(dockerDiffSorted(container));
    return ours;
  }

  it.each(Object.entries(CASES).map(([k, v], i) => [k, v, i] as const))('%s', (_label, script, i) => {
    runContainer(name(i), image);
    exec(name(i), script);
    const lines = check(name(i));
    const upper = docker('inspect', '-f', '{{.GraphDriver.Data.UpperDir}}', name(i));
    if (!_label.startsWith('h:')) expect(lines.length).toBeGreaterThan(0);
    else {
      // the open really copied the files up, and a copy-up without a real change is no change
      expect(existsSync(path.join(upper, 'etc/motd')) && existsSync(path.join(upper, 'data/old/a.txt'))).toBe(true);
      expect(lines).toEqual([]);
    }
    // wherever a shell might have run it: here, in the layers, in the merged view
    const merged = docker('inspect', '-f', '{{.GraphDriver.Data.MergedDir}}', name(i));
    expect(canaryFound(upper, merged, path.join(merged, 'tmp'))).toBe(false);
  });

  it('g: a two-layer image made with docker commit', () => {
    const base = name(100);
    runContainer(base, image);
    exec(base, 'echo layer2 > /etc/layer2.conf && rm /etc/motd && rm -r /data/old/deep && mkdir /opt && echo o > /opt/o && echo changed > /data/keep.txt && mknod /etc/dev1 c 1 3 && mknod /etc/dev2 c 1 3');
    const image2 = `sneakpeek-test/two-layer:${process.pid}`;
    docker('commit', base, image2);
    try {
      const c = name(101);
      runContainer(c, image2);
      // touch things from both layers, re-create what the top layer deleted
      // dev1 re-made with other numbers (C by rdev alone, mtime kept); dev2 re-made the same
      exec(c, 'echo x >> /etc/layer2.conf && echo back > /etc/motd && rm /data/old/a.txt && rm /opt/o && echo y >> /data/keep.txt && mkdir -p /data/old/deep'
        + ' && touch -r /etc/dev1 /tmp/ref && rm /etc/dev1 && mknod /etc/dev1 c 1 5 && touch -r /tmp/ref /etc/dev1'
        + ' && touch -r /etc/dev2 /tmp/ref && rm /etc/dev2 && mknod /etc/dev2 c 1 3 && touch -r /tmp/ref /etc/dev2');
      const lines = check(c);
      expect(lines).toContain('A /etc/motd');
      expect(lines).toContain('A /data/old/deep');
      expect(lines).toContain('C /etc/dev1');
      expect(lines).not.toContain('C /etc/dev2');
      docker('rm', '-f', c);
    } finally {
      docker('rmi', '-f', image2);
    }
  });

  it('j: a three-layer image with whiteouts, opaque dirs, a file made a dir and a dir made a link in its lower layers', () => {
    // Layer 2 deletes (whiteouts), re-creates a directory (opaque), turns a file into a directory
    // and a directory into a link; layer 3 does more of the same one level deeper. The container
    // then writes exactly there.
    const l2 = name(110);
    runContainer(l2, image);
    exec(l2, 'rm /etc/motd && rm -r /data/old/deep && rm -r /etc/app && mkdir /etc/app && echo n > /etc/app/new.conf'
      + ' && rm /data/keep.txt && mkdir /data/keep.txt && echo in > /data/keep.txt/inner && mkdir -p /srv/a/b/c && echo s > /srv/a/b/c/s'
      + ' && mv /data/old /data/old.real && ln -s /etc /data/old && mkdir -p /opt/x/y && echo o > /opt/x/y/o');
    const image2 = `sneakpeek-test/perf-layers2:${process.pid}`;
    const image3 = `sneakpeek-test/perf-layers3:${process.pid}`;
    docker('commit', l2, image2);
    try {
      const l3 = name(111);
      runContainer(l3, image2);
      exec(l3, 'rm /etc/passwd && rm -r /opt/x && mkdir -p /opt/x/z && echo z > /opt/x/z/z && rm /srv/a/b/c/s && rm -r /data/keep.txt/inner'
        + ' && echo deep > /srv/a/b/c/t && rm -r /etc/app && mkdir /etc/app && echo again > /etc/app/again.conf');
      docker('commit', l3, image3);
      const c = name(112);
      runContainer(c, image3);
      exec(c, 'echo back > /etc/motd && echo pw > /etc/passwd && echo more > /etc/app/more.conf && rm /etc/app/again.conf'
        + ' && echo x > /data/keep.txt/inner && rm /data/old && mkdir -p /data/old/deep && echo z > /data/old/deep/z'
        + ' && mkdir /opt/x/y && echo y > /opt/x/y/o && rm -r /opt/x/z && echo u >> /srv/a/b/c/t && echo s > /srv/a/b/c/s'
        + ' && rm /data/old.real/a.txt && chmod 700 /srv/a/b');
      const lines = check(c);
      expect(lines).toEqual(expect.arrayContaining(['A /etc/motd', 'A /etc/passwd', 'A /etc/app/more.conf', 'D /etc/app/again.conf', 'C /data/old', 'A /data/old/deep/z', 'A /opt/x/y', 'D /opt/x/z', 'A /srv/a/b/c/s', 'C /srv/a/b']));
      docker('rm', '-f', c, l3);
    } finally {
      docker('rmi', '-f', image3, image2);
    }
  });

  it('k: a big image where only deep directories change: the same lines, and only those directories are listed', () => {
    const big = 'sneakpeek-test/perf-deep:1';
    if (dockerTry('image', 'inspect', big).status !== 0) {
      const extra: Record<string, string> = {};
      for (let i = 0; i < 10_000; i++) extra[`usr/share/deep/d${i % 20}/e${Math.floor(i / 20) % 10}/f${i}.txt`] = `${i}\n`;
      const root = makeRootfs(extra);
      try {
        importImage(root, big);
      } finally {
        rmSync(root, { recursive: true, force: true });
      }
    }
    const c = name(120);
    runContainer(c, big);
    exec(c, 'echo x >> /usr/share/deep/d3/e4/f883.txt && mkdir -p /usr/share/deep/d7/e1/new/x && echo n > /usr/share/deep/d7/e1/new/x/n'
      + ' && rm -r /usr/share/deep/d9/e9 && chmod 700 /usr/share/deep/d11/e2 && rm /usr/share/deep/d12/e0/f12.txt'
      + ' && mv /usr/share/deep/d13/e5/f113.txt /usr/share/deep/d14/e5/moved.txt');
    const lines = check(c);
    expect(lines).toContain('C /usr/share/deep/d3/e4/f883.txt');
    expect(lines).toContain('D /usr/share/deep/d9/e9');
    // What the node sent of the image: the directories the container wrote in and their parents,
    // one level deep — a few hundred entries of the image's 10,000 files.
    const inspectFile = path.join(dir, `${c}.json`);
    const script = runTool('sneakpeek', ['-t', 'files', '--chroot', '-f', inspectFile, '--dry-run']).stdout;
    const node = spawnSync('sh', ['-s'], { input: script, maxBuffer: 256 << 20 });
    const image = node.stdout.toString('latin1').split('\0').filter((r) => r.startsWith('F\t') && !r.split('\t')[8]!.startsWith('000'));
    expect(image.length).toBeGreaterThan(50);
    expect(image.length).toBeLessThan(800);
  });

  it('-n NAME asks this host\'s engine and prints the same as -f', () => {
    const c = name(200);
    runContainer(c, image);
    exec(c, CASES['d: deletes an image directory and re-creates it with new content']!);
    const r = runTool('sneakpeek', ['-t', 'files', '--chroot', '-n', c]);
    expect(r.code).toBe(0);
    expect(sortedLines(r.stdout)).toEqual(dockerDiffSorted(c));
  });

  it('an engine that warns on stderr changes nothing; the node leaves no temp files behind', () => {
    const c = name(700);
    runContainer(c, image);
    exec(c, CASES['d: deletes an image directory and re-creates it with new content']!);
    // crictl without /etc/crictl.yaml, or a docker plugin, warns on stderr on every call
    const wrapper = path.join(dir, 'noisy-docker');
    writeFileSync(wrapper, `#!/bin/sh\necho 'WARN[0000] something the engine wants to say' >&2\nexec docker "$@"\n`, { mode: 0o755 });
    const cfg = path.join(dir, 'noisy.yaml');
    writeFileSync(cfg, `paths:\n  docker: ${wrapper}\n`);
    // The node script makes its scratch dir under TMPDIR: a dir of this test's own, empty after.
    const nodeTmp = mkdtempSync(path.join(dir, 'node-tmp-'));
    const r = runTool('sneakpeek', ['-t', 'files', '--chroot', '-n', c], { env: { SNEAKPEEK_CONFIG: cfg, TMPDIR: nodeTmp } });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(sortedLines(r.stdout)).toEqual(dockerDiffSorted(c));
    expect(readdirSync(nodeTmp).filter((f) => f.startsWith('sneakpeek.'))).toEqual([]);
  });

  it('without --chroot prints host paths under MergedDir; -t merged_dir prints MergedDir', () => {
    const c = name(300);
    runContainer(c, image);
    exec(c, 'echo x > /tmp/hostpath');
    const merged = docker('inspect', '-f', '{{.GraphDriver.Data.MergedDir}}', c);
    const md = runTool('sneakpeek', ['-t', 'merged_dir', '-n', c]);
    expect(md).toMatchObject({ code: 0, stdout: `${merged}\n`, stderr: '' });
    const r = runTool('sneakpeek', ['-t', 'files', '-n', c]);
    expect(r.code).toBe(0);
    expect(sortedLines(r.stdout)).toEqual([`A ${merged}/tmp/hostpath`, `C ${merged}/tmp`]);
    // the host path is real: the file is there, through the merged mount
    expect(existsSync(`${merged}/tmp/hostpath`)).toBe(true);
  });

  it('--json gives one object a line with kind, path, hostPath, type, size, mode, mtime', () => {
    const c = name(400);
    runContainer(c, image);
    exec(c, 'printf 12345 > /tmp/five && chmod 640 /tmp/five && rm /etc/motd');
    const r = runTool('sneakpeek', ['-t', 'files', '--json', '-n', c]);
    expect(r.code).toBe(0);
    const objs = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const five = objs.find((o) => o.path === '/tmp/five');
    expect(five).toMatchObject({ kind: 'A', type: 'file', size: 5, mode: '0640' });
    expect(String(five!.hostPath)).toMatch(/\/merged\/tmp\/five$/);
    expect(Date.now() - Date.parse(String(five!.mtime))).toBeLessThan(10 * 60_000);
    expect(objs.find((o) => o.path === '/etc/motd')).toMatchObject({ kind: 'D', type: 'file', size: 8 });
  });

  it('-0 ends every line with NUL, so names with newlines stay whole', () => {
    const c = name(500);
    runContainer(c, image);
    exec(c, "echo x > '/tmp/two\nlines'");
    const r = runTool('sneakpeek', ['-t', 'files', '--chroot', '-0', '-n', c]);
    expect(r.code).toBe(0);
    expect(r.raw.toString('utf8').split('\0').filter(Boolean).sort()).toEqual(['A /tmp/two\nlines', 'C /tmp']);
  });

  it('--all prints every path of the merged view (the original\'s output)', () => {
    const c = name(600);
    runContainer(c, image);
    exec(c, 'echo x > /tmp/all-new && rm /etc/motd');
    const r = runTool('sneakpeek', ['-t', 'files', '--all', '--chroot', '-n', c]);
    expect(r.code).toBe(0);
    const paths = sortedLines(r.stdout);
    // The container's own view of its root file system; /proc, /sys, /dev and the files docker
    // bind-mounts over the merged dir (/etc/hosts, …) are other mounts inside the container.
    const other = /^\/(proc|sys|dev)(\/|$)|^\/etc\/(hosts|hostname|resolv\.conf)$/;
    const inside = sortedLines(exec(c, 'find / -xdev -mindepth 1'));
    expect(paths).toContain('/tmp/all-new');
    expect(paths).not.toContain('/etc/motd');
    expect(paths.filter((p) => !other.test(p))).toEqual(inside.filter((p) => !other.test(p)));
  });
});
