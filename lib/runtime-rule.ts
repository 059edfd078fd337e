// What a container runtime itself makes in a container's upper dir, and how `-t files` leaves it
// out: one rule for every engine (README: Runtimes).
//
// docker keeps its mount points and the files it writes (/etc/hostname, /etc/hosts, …) in an
// `-init` layer BELOW the container's layer: part of what the container started from, never a
// change. podman, containerd (ctr, the CRI) and CRI-O let runc make them in the upper dir
// itself. The rule: an upper-dir entry at one of RUNTIME_PATHS is the runtime's, not the
// container's. The list is podman's own (libpod/diff.go `initInodes`, v4.3.1; the same on
// main), which `podman diff` leaves out: exact paths, of any kind, not what is beneath them.
//
// How it applies, by engine (DiffMode):
//   docker        nothing to do: docker's runtime entries are in its -init layer.
//   runtime       containerd, CRI-O: the entry is read as if it were in docker's -init layer
//                 (before the diff): it is never a line, not even a C for what changed beneath
//                 it, and it does not make its parent C; what is beneath it is compared as usual.
//                 So the lines are docker diff's for the same changes: a container that wrote
//                 /tmp/x shows `C /tmp, A /tmp/x`, not also `C /etc` because runc made
//                 /etc/hostname inside it.
//   podman        what `podman diff` does: containers/storage's native overlay diff (a walk of
//                 the upper dir, lib/diff-podman.ts), then the lines at these paths dropped
//                 (after the diff: `C /etc` stays when /etc/hostname made it).
//   podman-naive  podman whose storage does not use the native diff (podman info: Native
//                 Overlay Diff false, e.g. fuse-overlayfs): podman diff is then the same naive
//                 tree diff as docker's, the lines at these paths dropped after it.
import type { Engine } from './config.ts';

/** podman's initInodes, as container paths without the leading '/'. */
export const RUNTIME_PATHS: ReadonlySet<string> = new Set([
  'dev', 'etc/hostname', 'etc/hosts', 'etc/resolv.conf', 'proc', 'run', 'run/notify',
  'run/.containerenv', 'run/secrets', 'run/podman-init', 'sys', 'etc/mtab',
]);

export type DiffMode = 'docker' | 'runtime' | 'podman' | 'podman-naive';

/**
 * The diff an engine's containers get. `answered` is the engine that answered on the node
 * (engine containerd: crictl or ctr); `podmanDiff` what podman's storage uses (native | naive).
 */
export function diffModeOf(engine: Engine | string, podmanDiff?: string): DiffMode {
  if (engine === 'docker') return 'docker';
  if (engine === 'podman') return podmanDiff === 'naive' ? 'podman-naive' : 'podman';
  return 'runtime';
}
