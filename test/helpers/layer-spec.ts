// Synthetic overlay layers for the diff engine's table tests: each layer a map of path → spec,
// turned into the listing the node sends (every layer's entries, sorted together in tree order).
import type { Entry, EntryType, LayerExtras } from '../../lib/diff.ts';

/** "type mode [size] [mtime[.nsec]] [uid] [gid]": "f 644 8 1000", "d 755", a whiteout "c 0". */
export type Spec = string;
export interface Layers {
  upper: Record<string, Spec>;
  lowers: Record<string, Spec>[];
  extras?: (x: LayerExtras) => void;
}

export function entry(layer: number, path: string, spec: Spec): Entry {
  const [type, mode = '644', size = '0', mtime = '1000', uid = '0', gid = '0'] = spec.split(' ');
  const [sec, nsec = '0'] = mtime.split('.');
  return {
    layer, path, type: type as EntryType, mode: parseInt(mode, 8), size: Number(size),
    mtimeSec: Number(sec), mtimeNsec: Number(nsec), uid: Number(uid), gid: Number(gid),
  };
}

/** Tree order as the node's `tr '/\001' | sort -z` produces it: '/' sorts lowest. */
const treeKey = (p: string) => Buffer.from(p.replace(/\//g, '\x01'), 'latin1');

/** The listing as the node sends it; each layer's root is `rootSpec`. */
export function listing(l: Layers, rootSpec: Spec = 'd 755'): Entry[] {
  const all: Entry[] = [];
  [l.upper, ...l.lowers].forEach((tree, i) => {
    all.push(entry(i, '', rootSpec));
    for (const [p, s] of Object.entries(tree)) all.push(entry(i, p, s));
  });
  return all.sort((a, b) => Buffer.compare(treeKey(a.path), treeKey(b.path)) || a.layer - b.layer);
}
