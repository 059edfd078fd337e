// `podman diff` from overlay layers alone: containers/storage's native overlay diff
// (pkg/archive/changes.go `changes` with changes_linux.go `OverlayChanges`, v1.43 — what podman
// 4.3 uses when `podman info` says Native Overlay Diff: true), which is NOT docker's naive diff:
// it walks the upper dir only and asks the lower layers about each entry.
//
// For each upper-dir entry, in the walk's order (a directory before its contents, names in byte
// order — the same tree order as the listing):
//   - a 0/0 character device (a whiteout) is `D path`;
//   - an opaque directory (overlay.opaque = y) is `D path` when the first lower layer that has
//     the path holds something other than a whiteout there — before any lower layer in which a
//     parent of it is a whiteout; nothing beneath it is made D (its new content is walked as
//     usual);
//   - anything else is `A`, unless a lower layer has the path (scanning from the top, and
//     stopping at a layer with a whiteout at the path or at one of its parents): then `C`. A
//     directory in both with the same size, mode and mtime is no change at all (uid and gid
//     are not compared); a file in both is `C` even when nothing in it differs (a copy-up).
//   - before an `A` or a `D`, each parent directory not yet recorded is `C` (a `C` of a file
//     makes no parent `C`); a directory recorded as A, C or D counts as recorded.
// Differences from docker's diff (lib/diff.ts) that follow: an edited file does not make its
// unchanged directory C; a directory deleted and re-created is `D dir` (its old content is not
// listed); a file opened for writing and not changed is `C`; a chown of a directory is not a change.
// The lower layers are read as they are listed (lstat): podman's os.Stat follows a symlink in a
// lower layer, on the host — a difference only for lower-layer symlinks whose target is missing
// there or a directory.
import { layerKey, PathGroups, sameTime, type Change, type ChangeKind, type Entry, type LayerExtras } from './diff.ts';

interface Frame {
  path: string;
  /** In podman's changedDirs: recorded as a change (or made C for a child already). */
  recorded: boolean;
  entry?: Entry;
  /** Lower layers with a whiteout at this path (a parent of everything beneath). */
  whiteouts: number[];
}

export class PodmanChangeComputer extends PathGroups {
  private stack: Frame[] = [];

  constructor(
    private readonly extras: LayerExtras,
    private readonly emit: (c: Change) => void,
  ) {
    super();
  }

  /** containers/storage's isWhiteOut: a character device 0/0 (xattr whiteouts are not). */
  private isWhiteout(e: Entry | undefined): boolean {
    return e?.type === 'c' && (this.extras.rdev.get(layerKey(e.layer, e.path)) ?? '0:0') === '0:0';
  }

  private isOpaque(e: Entry): boolean {
    return e.type === 'd' && this.extras.opaque.has(layerKey(e.layer, e.path));
  }

  protected done(): void {
    this.stack = [];
  }

  protected flush(group: Entry[]): void {
    const path = group[0]!.path;
    const at = (layer: number) => group.find((e) => e.layer === layer);
    const lowers = [...new Set(group.filter((e) => e.layer > 0).map((e) => e.layer))];
    const whiteouts = group.filter((e) => e.layer > 0 && this.isWhiteout(e)).map((e) => e.layer);
    if (path === '') {
      this.stack = [{ path: '', recorded: true, whiteouts }];
      return;
    }
    const slash = path.lastIndexOf('/');
    const parentPath = slash < 0 ? '' : path.slice(0, slash);
    while (this.stack.length && !isAncestor(this.stack[this.stack.length - 1]!.path, path)) this.stack.pop();
    const parent = this.stack[this.stack.length - 1];
    const upper = at(0);
    // Only the upper dir is walked; its parent is always an upper directory before it.
    if (!upper || !parent || parent.path !== parentPath) return;
    // A lower layer in which a parent (not '/') of this path is a whiteout.
    const parentWhiteout = (layer: number) => this.stack.some((f) => f.path !== '' && f.whiteouts.includes(layer));
    // The lower layers that can matter here, top first: those with the path, and those with a
    // whiteout at a parent (a layer with neither is passed over by every scan below).
    const scan = [...new Set([...lowers, ...this.stack.flatMap((f) => (f.path === '' ? [] : f.whiteouts))])].sort((a, b) => a - b);

    let kind: ChangeKind | undefined;
    let entry: Entry = upper;
    if (this.isWhiteout(upper)) {
      kind = 'D';
      entry = lowers.length ? at(Math.min(...lowers))! : upper;
    } else if (this.isOpaque(upper)) {
      // overlayDeletedFile: deleted and re-created here, or new here?
      for (const l of scan) {
        const r = at(l);
        if (r) {
          if (!this.isWhiteout(r)) [kind, entry] = ['D', r];
          break;
        }
        if (parentWhiteout(l)) break;
      }
    }
    if (!kind) {
      kind = 'A';
      for (const l of scan) {
        const r = at(l);
        if (this.isWhiteout(r) || parentWhiteout(l)) break;
        if (!r) continue;
        if (r.type === 'd' && upper.type === 'd' && r.size === upper.size && r.mode === upper.mode && sameTime(r, upper)) {
          // the same directory: no change, not recorded; its contents are still walked
          this.stack.push({ path, recorded: false, entry: upper, whiteouts });
          return;
        }
        kind = 'C';
        break;
      }
    }
    if (kind === 'A' || kind === 'D') {
      for (const f of this.stack) {
        if (f.recorded || !f.entry) continue;
        f.recorded = true;
        this.emit({ kind: 'C', path: f.path, entry: f.entry });
      }
    }
    this.emit({ kind, path, entry });
    if (upper.type === 'd') this.stack.push({ path, recorded: true, entry: upper, whiteouts });
  }

}

const isAncestor = (dir: string, path: string) => dir === '' || path.startsWith(`${dir}/`);
