// docker diff from overlay layers alone. Input: layer entries (layer 0 = UpperDir, 1.. =
// LowerDirs, topmost first) sorted together in tree order; output: A/C/D changes in the same
// order, computed as docker's naive diff does (merged container tree vs merged image tree).
// The lower layers need not be whole: what the node sends (scripts/sneakpeek.sh sp_layers) is
// the UpperDir whole and, of each lower layer, the directories the UpperDir has too, one level
// deep — everything that decides a change (a lower entry nowhere near the UpperDir is one the
// container sees unchanged). Memory: one path group plus the stack of open directories.

export type EntryType = 'f' | 'd' | 'l' | 'c' | 'b' | 'p' | 's';

export interface Entry {
  layer: number;
  type: EntryType;
  /** Permission bits incl. setuid/setgid/sticky (find %m). */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtimeSec: number;
  mtimeNsec: number;
  /** Relative to the layer root, no leading slash; '' is the root itself. */
  path: string;
}

/** What layer metadata find cannot print: xattrs and device numbers, keyed by layerKey(). */
export interface LayerExtras {
  opaque: Set<string>;
  xwhiteout: Set<string>;
  capability: Map<string, string>;
  rdev: Map<string, string>;
}

export const layerKey = (layer: number, path: string) => `${layer}\0${path}`;

export function emptyExtras(): LayerExtras {
  return { opaque: new Set(), xwhiteout: new Set(), capability: new Map(), rdev: new Map() };
}

export type ChangeKind = 'A' | 'C' | 'D';
export interface Change {
  kind: ChangeKind;
  path: string;
  /** The container's entry (A, C) or the image's (D). */
  entry: Entry;
}

interface Frame {
  path: string;
  /** The container's view of this directory still merges the lower layers (not new, not opaque). */
  ctrSeesLower: boolean;
  /** Lower layers merged into the image's view of this directory, top first. */
  imgLayers: number[];
  /** In both trees and unchanged itself: listed as C only once something beneath it changes. */
  pending: boolean;
  entry?: Entry;
  /** The runtime's directory (runtimePaths): never a line, not even C for what is beneath it. */
  hidden?: boolean;
}

// docker's sameFsTime: equal, or same second where either side has no sub-second part.
export const sameTime = (a: Entry, b: Entry) =>
  a.mtimeSec === b.mtimeSec && (a.mtimeNsec === b.mtimeNsec || a.mtimeNsec === 0 || b.mtimeNsec === 0);

/**
 * Entries come in tree order, all layers of one path together (layer ascending); each path's
 * group is handed to `flush` whole. `done` is called at the end, after the last group.
 */
export abstract class PathGroups {
  private group: Entry[] = [];

  push(e: Entry): void {
    if (this.group.length && this.group[0]!.path !== e.path) this.take();
    this.group.push(e);
  }

  end(): void {
    if (this.group.length) this.take();
    this.done();
  }

  private take(): void {
    const group = this.group;
    this.group = [];
    this.flush(group);
  }

  protected abstract flush(group: Entry[]): void;
  protected abstract done(): void;
}

export class ChangeComputer extends PathGroups {
  private stack: Frame[] = [];

  /**
   * `runtimePaths`: upper-dir entries the runtime made (lib/runtime-rule.ts), read as if they
   * were in docker's -init layer: never a line (not even C for what changed beneath them); what
   * is beneath them is diffed as usual.
   */
  constructor(
    private readonly extras: LayerExtras,
    private readonly emit: (c: Change) => void,
    private readonly runtimePaths?: ReadonlySet<string>,
  ) {
    super();
  }

  private isWhiteout(e: Entry): boolean {
    if (e.type === 'c') return (this.extras.rdev.get(layerKey(e.layer, e.path)) ?? '0:0') === '0:0';
    return e.type === 'f' && e.size === 0 && this.extras.xwhiteout.has(layerKey(e.layer, e.path));
  }

  private isOpaque(e: Entry): boolean {
    return e.type === 'd' && this.extras.opaque.has(layerKey(e.layer, e.path));
  }

  /** docker's statDifferent plus the security.capability comparison. */
  differs(img: Entry, ctr: Entry): boolean {
    const x = this.extras;
    if (img.type !== ctr.type || img.mode !== ctr.mode || img.uid !== ctr.uid || img.gid !== ctr.gid) return true;
    if ((img.type === 'c' || img.type === 'b') &&
        x.rdev.get(layerKey(img.layer, img.path)) !== x.rdev.get(layerKey(ctr.layer, ctr.path))) return true;
    if (img.type !== 'd' && (!sameTime(img, ctr) || img.size !== ctr.size)) return true;
    return x.capability.get(layerKey(img.layer, img.path)) !== x.capability.get(layerKey(ctr.layer, ctr.path));
  }

  protected done(): void {
    this.stack = [];
  }

  private report(kind: ChangeKind, entry: Entry): void {
    for (const f of this.stack) {
      if (f.pending && f.entry) {
        f.pending = false;
        if (!f.hidden) this.emit({ kind: 'C', path: f.path, entry: f.entry });
      }
    }
    this.emit({ kind, path: entry.path, entry });
  }

  /** The lower layers merged into an image directory found first at `from`. */
  private mergeLayers(parentLayers: number[], from: number, group: Entry[]): number[] {
    const out: number[] = [];
    for (const l of parentLayers.slice(parentLayers.indexOf(from))) {
      const r = entryAt(group, l);
      if (!r) continue;
      if (r.type !== 'd' || this.isWhiteout(r)) break;
      out.push(l);
      if (this.isOpaque(r)) break;
    }
    return out;
  }

  protected flush(group: Entry[]): void {
    const path = group[0]!.path;
    if (path === '') {
      const lowers = group.filter((e) => e.layer > 0 && e.type === 'd').map((e) => e.layer);
      this.stack = [{ path: '', ctrSeesLower: true, imgLayers: lowers, pending: false }];
      return;
    }
    const slash = path.lastIndexOf('/');
    const parentPath = slash < 0 ? '' : path.slice(0, slash);
    while (this.stack.length && !isAncestor(this.stack[this.stack.length - 1]!.path, path)) this.stack.pop();
    const parent = this.stack[this.stack.length - 1];
    // No frame for the parent: inside a subtree that is unchanged, deleted or not a directory.
    if (!parent || parent.path !== parentPath) return;

    let img: Entry | undefined;
    let imgFrom = -1;
    for (const l of parent.imgLayers) {
      const r = entryAt(group, l);
      if (!r) continue;
      if (!this.isWhiteout(r)) { img = r; imgFrom = l; }
      break;
    }
    const upper = entryAt(group, 0);
    if (!upper) {
      // A lower entry the container sees unchanged, or one its new/opaque parent hides.
      if (!parent.ctrSeesLower && img) this.report('D', img);
      return;
    }
    if (this.runtimePaths?.has(path)) {
      if (upper.type === 'd' && !this.isWhiteout(upper))
        this.stack.push({
          path,
          ctrSeesLower: parent.ctrSeesLower && !this.isOpaque(upper),
          imgLayers: img?.type === 'd' ? this.mergeLayers(parent.imgLayers, imgFrom, group) : [],
          pending: true,
          entry: upper,
          hidden: true,
        });
      return;
    }
    if (this.isWhiteout(upper)) {
      if (img) this.report('D', img);
      return;
    }
    if (!img) {
      this.report('A', upper);
      if (upper.type === 'd') this.stack.push({ path, ctrSeesLower: false, imgLayers: [], pending: false });
      return;
    }
    const changed = this.differs(img, upper);
    if (changed) this.report('C', upper);
    if (upper.type === 'd') {
      this.stack.push({
        path,
        // Below an opaque directory the container sees no lower layer at any depth.
        ctrSeesLower: parent.ctrSeesLower && !this.isOpaque(upper),
        imgLayers: img.type === 'd' ? this.mergeLayers(parent.imgLayers, imgFrom, group) : [],
        pending: !changed,
        entry: upper,
      });
    }
  }
}

/** The entry of `layer` in a group (a group holds a few entries: one per layer that has the path). */
function entryAt(group: Entry[], layer: number): Entry | undefined {
  for (const e of group) if (e.layer === layer) return e;
  return undefined;
}

const isAncestor = (dir: string, path: string) =>
  dir === '' || (path.length > dir.length && path.charCodeAt(dir.length) === 47 /* / */ && path.startsWith(dir));

const TYPES = new Set(['f', 'd', 'l', 'c', 'b', 'p', 's']);

/**
 * A path on the wire, NNN/PATH (layer NNN, PATH relative to its root; getfattr -R writes
 * NNN//PATH, and NNN/ is the root) → [layer, PATH]; undefined for anything else.
 */
export function splitLayerPath(p: string): [number, string] | undefined {
  if (p.length < 4 || p.charCodeAt(3) !== 47 /* / */) return undefined;
  let layer = 0;
  for (let i = 0; i < 3; i++) {
    const d = p.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return undefined;
    layer = layer * 10 + d;
  }
  let i = 4;
  while (p[i] === '/') i++;
  return [layer, p.slice(i)];
}

/** Parse the fields of an F record after KEY: TYPE MODE UID GID SIZE MTIME NNN/PATH (slashes swapped). */
export function parseEntry(f: readonly string[]): Entry {
  const [type, mode, uid, gid, size, mtime, rawPath] = f;
  // The node swapped '/' and \001 so sort puts a directory's contents right after it.
  const where = rawPath === undefined ? undefined : splitLayerPath(unswapSlash(rawPath));
  if (!where || !TYPES.has(type!)) throw new Error(`bad layer listing record: ${f.join(' ')}`);
  const dot = mtime!.indexOf('.');
  return {
    layer: where[0],
    type: type as EntryType,
    mode: parseInt(mode!, 8),
    uid: Number(uid),
    gid: Number(gid),
    size: Number(size),
    mtimeSec: Number(dot < 0 ? mtime : mtime!.slice(0, dot)),
    mtimeNsec: dot < 0 ? 0 : Number(mtime!.slice(dot + 1, dot + 10).padEnd(9, '0')),
    path: where[1],
  };
}

/**
 * A whole `F KEY TYPE MODE UID GID SIZE MTIME NNN/PATH` record → [KEY, entry]. The hot path
 * of -t files (one call per entry listed), so it walks the tabs itself.
 */
export function parseListingRecord(rec: string): [number, Entry] {
  const f: string[] = [];
  let start = 2; // after "F\t"
  for (let n = 0; n < 7; n++) {
    const i = rec.indexOf('\t', start);
    if (i < 0) throw new Error(`bad layer listing record: ${rec.slice(0, 80)}`);
    f.push(rec.slice(start, i));
    start = i + 1;
  }
  f.push(rec.slice(start));
  return [Number(f[0]), parseEntry(f.slice(1))];
}

export function unswapSlash(p: string): string {
  // Fast path: names rarely hold '/'-swapped \001 bytes, so usually only separators change.
  if (!p.includes('/')) return p.replaceAll('\x01', '/');
  return p.replace(/[\x01/]/g, (c) => (c === '/' ? '\x01' : '/'));
}

/** getfattr -d -e hex output (paths NNN/PATH) → extras. Names are octal-escaped (\\012, \\134). */
export function parseXattrDump(text: string, into: LayerExtras): void {
  let key: string | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('# file: ')) {
      const where = splitLayerPath(line.slice(8).replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))));
      key = where && layerKey(...where);
      continue;
    }
    const eq = line.indexOf('=');
    if (key === undefined || eq < 0) continue;
    const name = line.slice(0, eq);
    const value = line.slice(eq + 1);
    if (/^(trusted|user)\.overlay\.opaque$/.test(name)) {
      if (value === '0x79') into.opaque.add(key); // "y"
    } else if (/^(trusted|user)\.overlay\.whiteout$/.test(name)) {
      into.xwhiteout.add(key);
    } else if (name === 'security.capability') {
      into.capability.set(key, value);
    }
  }
}
