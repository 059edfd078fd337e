// Integration prerequisites: skip locally with the reason, fail under CI (CI=true).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export const IN_CI = process.env.CI === 'true' || process.env.CI === '1';

export function commandWorks(cmd: string, args: string[] = []): boolean {
  try {
    execFileSync(cmd, args, { stdio: 'ignore', timeout: 20_000 });
    return true;
  } catch {
    return false;
  }
}

/**
 * Check what a test file needs. Returns a reason string when something is missing (the
 * caller skips with it); under CI a missing prerequisite throws so the run fails instead.
 */
export function missing(checks: Record<string, () => boolean>): string | undefined {
  const gone = Object.entries(checks)
    .filter(([, ok]) => !ok())
    .map(([name]) => name);
  if (!gone.length) return undefined;
  const reason = `missing prerequisite: ${gone.join(', ')} (run: bash .ci/provision)`;
  if (IN_CI) throw new Error(`${reason} — under CI this is a failure, not a skip`);
  return reason;
}

export const isRoot = () => process.getuid?.() === 0;

/** The eBPF prerequisites, spelled once: pass to missing() (spread). */
export const EBPF = {
  'bpftool (apt-get install bpftool)': () => commandWorks('bpftool', ['version']),
  'bpftrace (apt-get install bpftrace)': () => existsSync('/usr/bin/bpftrace'),
  'bpffs on /sys/fs/bpf': () =>
    spawnSync('stat', ['-f', '-c', '%T', '/sys/fs/bpf'], { encoding: 'utf8' }).stdout.trim() === 'bpf_fs',
};
export const dockerUp = () => commandWorks('docker', ['info']);
