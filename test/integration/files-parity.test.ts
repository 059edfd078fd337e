// sneakpeek -t files --chroot -f <docker inspect> prints exactly docker diff's lines,
// for containers that change their file system in every way overlay2 records.
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, runTool, sortedLines } from '../helpers/cli.ts';
import { changeCases } from '../helpers/change-matrix.ts';
import { cleanupContainers, docker, dockerDiffSorted, ensureBusyboxImage, exec, runContainer } from '../helpers/docker.ts';
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
