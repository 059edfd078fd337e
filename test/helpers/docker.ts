// Real containers for integration tests: busybox-static images made with docker import,
// every container --network none.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, mkdirSync, copyFileSync, symlinkSync, writeFileSync, chmodSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export function docker(...args: string[]): string {
  return execFileSync('docker', args, { encoding: 'utf8', maxBuffer: 64 << 20 }).trim();
}

/** Like docker(), but returns status and output instead of throwing. */
export function dockerTry(...args: string[]): { status: number; stdout: string; stderr: string } {
  const r = spawnSync('docker', args, { encoding: 'utf8', maxBuffer: 64 << 20 });
  return { status: r.status ?? 1, stdout: r.stdout, stderr: r.stderr };
}

const BUSYBOX = ['/bin/busybox', '/usr/bin/busybox'];

/** A minimal rootfs: busybox + applet links, /etc with a few files, /tmp. Returns its dir. */
export function makeRootfs(extra: Record<string, string> = {}): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sp-rootfs-'));
  mkdirSync(path.join(dir, 'bin'));
  mkdirSync(path.join(dir, 'tmp'));
  chmodSync(path.join(dir, 'tmp'), 0o1777);
  mkdirSync(path.join(dir, 'etc'));
  const bb = BUSYBOX.find((p) => spawnSync(p, ['true']).status === 0);
  if (!bb) throw new Error('busybox-static not installed (apt-get install busybox-static)');
  copyFileSync(bb, path.join(dir, 'bin/busybox'));
  chmodSync(path.join(dir, 'bin/busybox'), 0o755);
  for (const applet of execFileSync(bb, ['--list'], { encoding: 'utf8' }).split('\n').filter(Boolean)) {
    if (applet !== 'busybox') symlinkSync('busybox', path.join(dir, 'bin', applet));
  }
  writeFileSync(path.join(dir, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n');
  writeFileSync(path.join(dir, 'etc/group'), 'root:x:0:\nnogroup:x:65534:\n');
  writeFileSync(path.join(dir, 'etc/motd'), 'welcome\n');
  for (const [rel, content] of Object.entries(extra)) {
    mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    writeFileSync(path.join(dir, rel), content);
  }
  return dir;
}

/** Import a rootfs dir as IMAGE (no registry needed). */
export function importImage(rootfs: string, image: string): void {
  const tar = spawnSync('tar', ['-C', rootfs, '-c', '.'], { maxBuffer: 256 << 20 });
  if (tar.status !== 0) throw new Error(`tar failed: ${tar.stderr}`);
  execFileSync('docker', ['import', '-', image], { input: tar.stdout, stdio: ['pipe', 'ignore', 'inherit'] });
}

/** The shared test image (busybox with a small /etc and /data tree); built once per machine. */
export function ensureBusyboxImage(image = 'sneakpeek-test/busybox:1'): string {
  if (dockerTry('image', 'inspect', image).status === 0) return image;
  const dir = makeRootfs({
    'data/keep.txt': 'keep\n',
    'data/old/a.txt': 'a\n',
    'data/old/b.txt': 'b\n',
    'data/old/deep/c.txt': 'c\n',
    'etc/app/app.conf': 'x=1\n',
  });
  try {
    importImage(dir, image);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return image;
}

const started: string[] = [];

/** Start a container (--network none) running `sleep` so tests can docker exec into it. */
export function runContainer(name: string, image: string, ...extra: string[]): string {
  dockerTry('rm', '-f', name);
  const id = docker('run', '-d', '--network', 'none', '--name', name, ...extra, image, 'sleep', '100000');
  started.push(name);
  return id;
}

export function exec(name: string, script: string): string {
  return docker('exec', name, 'sh', '-c', script);
}

/** Remove the containers this process started (only those). */
export function cleanupContainers(): void {
  for (const name of started.splice(0)) dockerTry('rm', '-f', name);
}

/** docker diff, sorted like the shell's `LC_ALL=C sort`. */
export function dockerDiffSorted(name: string): string[] {
  return sortBytes(docker('diff', name).split('\n').filter(Boolean));
}

export function sortBytes(lines: string[]): string[] {
  return [...lines].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
}

export function listImageLayers(): string[] {
  return readdirSync('/var/lib/docker/overlay2');
}
