// Real podman for tests: rootful, overlay driver (Debian 12's podman 4.3). No registry: the
// busybox test image comes from docker (`docker save IMG | podman load` names it
// localhost/IMG), and every run is `--pull never --network none` with the rlimits this machine
// allows (podman raises RLIMIT_NOFILE/NPROC by default and fails with "error setting rlimit").
//
//   const image = loadImage('sneakpeek-test/busybox:1');   // localhost/sneakpeek-test/busybox:1
//   runContainer('sp-runtimes-prep-p1', image);            // sleep 100000
//   exec(name, 'echo x > /tmp/x'); pause / unpause / stop; podmanDiffSorted(name)
//   cleanupContainers();                                    // only the containers this process made
import { execFileSync, spawnSync } from 'node:child_process';
import { sortBytes } from './docker.ts';

export const RUN_FLAGS = ['--pull', 'never', '--network', 'none', '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024'];

/** podman ARGS…: stdout; its stderr (cgroup warnings on this machine) never mixes in. */
export function podman(...args: string[]): string {
  const r = podmanTry(...args);
  if (r.status !== 0) throw new Error(`podman ${args.join(' ')}: ${r.stderr.trim() || `exit ${r.status}`}`);
  return r.stdout.trim();
}

export function podmanTry(...args: string[]): { status: number; stdout: string; stderr: string } {
  const r = spawnSync('podman', args, { encoding: 'utf8', maxBuffer: 64 << 20, timeout: 120_000 });
  return { status: r.status ?? 1, stdout: r.stdout ?? '', stderr: r.stderr ?? String(r.error ?? '') };
}

export const podmanWorks = () => podmanTry('info', '--format', '{{.Store.GraphDriverName}}').stdout.trim() === 'overlay';

/** The docker image in podman's store as localhost/IMAGE (loaded once; same image id). */
export function loadImage(dockerImage: string): string {
  const name = `localhost/${dockerImage}`;
  const want = execFileSync('docker', ['image', 'inspect', '--format', '{{.Id}}', dockerImage], { encoding: 'utf8' }).trim();
  const have = podmanTry('image', 'inspect', '--format', '{{.Id}}', name);
  if (have.status === 0 && `sha256:${have.stdout.trim()}` === want) return name;
  const tar = execFileSync('docker', ['save', dockerImage], { maxBuffer: 512 << 20 });
  const r = spawnSync('podman', ['load'], { input: tar, encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`podman load ${dockerImage}: ${r.stderr.trim()}`);
  podman('image', 'inspect', '--format', '{{.Id}}', name);
  return name;
}

/** podman load -i FILE (docker save format); returns the name podman gave it. */
export function loadArchive(file: string): string {
  const r = podmanTry('load', '-i', file);
  const name = /^Loaded image(?:\(s\))?: (\S+)$/m.exec(r.stdout)?.[1];
  if (r.status !== 0 || !name) throw new Error(`podman load -i ${file}: ${r.stderr.trim() || r.stdout.trim()}`);
  return name;
}

const started = new Set<string>();

/** podman run -d (no network, no pull) IMAGE sleep 100000; returns the full id. */
export function runContainer(name: string, image: string, ...extra: string[]): string {
  podmanTry('rm', '-f', '-t', '0', name);
  started.add(name);
  return podman('run', '-d', ...RUN_FLAGS, '--name', name, ...extra, image, 'sleep', '100000');
}

export const exec = (name: string, script: string) => podman('exec', name, 'sh', '-c', script);
export const pause = (name: string) => void podman('pause', name);
export const unpause = (name: string) => void podman('unpause', name);
export const stop = (name: string) => void podman('stop', '-t', '0', name);
export function remove(name: string): void {
  podman('rm', '-f', '-t', '0', name);
  started.delete(name);
}

/** Remove the containers this process started (only those). */
export function cleanupContainers(): void {
  for (const name of [...started]) podmanTry('rm', '-f', '-t', '0', name);
  started.clear();
}

/** podman diff, sorted like `LC_ALL=C sort`. */
export function podmanDiffSorted(name: string): string[] {
  return sortBytes(podman('diff', name).split('\n').filter(Boolean));
}
