// The overlay facts sneakpeek works from: from `docker inspect` / `podman inspect` JSON (a file
// given with -f), or from a node's FACTS record (what the engine said there).
import { OpError, UsageError } from './errors.ts';
import { utf8, type RecordOf } from './wire.ts';

export interface ContainerFacts {
  id: string;
  name: string;
  /** running | paused | stopped | created | removing | unknown (from the engine); '' from a file. */
  state?: string;
  pid: number;
  driver: string;
  upperDir: string;
  lowerDirs: string[];
  mergedDir: string;
  /** From an inspect file: podman's document (it has OCIRuntime and ConmonPidFile) or docker's. */
  engine?: 'docker' | 'podman';
}

const OVERLAY_DRIVERS = new Set(['overlay2', 'overlay']);
type Obj = { [k: string]: unknown };
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function looksLikeContainer(v: unknown): v is Obj {
  return isObj(v) && typeof v.Id === 'string' && (isObj(v.GraphDriver) || isObj(v.State));
}

const shortName = (o: Obj) => String(o.Name ?? '').replace(/^\//, '');

/** Choose one container out of an inspect document; `want` is a name or an id prefix. */
function choose(list: Obj[], want: string | undefined, source: string): Obj {
  if (want !== undefined) {
    const bare = want.replace(/^\//, '');
    const hit = list.filter((c) => shortName(c) === bare || (bare.length > 0 && String(c.Id).startsWith(bare)));
    if (hit.length === 1) return hit[0]!;
    if (hit.length > 1) throw new UsageError(`${source}: '${want}' matches ${hit.length} containers; give more of the id`);
    throw new UsageError(`${source}: no container named '${want}' (it holds ${list.map(shortName).join(', ')})`);
  }
  if (list.length === 1) return list[0]!;
  throw new UsageError(
    `${source}: holds ${list.length} containers (${list.map(shortName).join(', ')}); choose one with -n NAME`,
  );
}

/** Parse inspect output (an array, or one object) and pick the container. Pure. */
export function parseInspect(text: string, want?: string, source = 'inspect'): ContainerFacts {
  if (text.trim() === '') throw new UsageError(`${source}: empty; expected docker inspect JSON`);
  if (text.includes('\0')) throw new UsageError(`${source}: binary data, not docker inspect JSON`);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new UsageError(`${source}: not JSON; expected the output of docker inspect`);
  }
  const list = Array.isArray(doc) ? doc : [doc];
  if (list.length === 0) throw new UsageError(`${source}: an empty list; docker inspect found no container`);
  const containers = list.filter(looksLikeContainer);
  if (containers.length !== list.length)
    throw new UsageError(`${source}: not a container inspect document (no Id/GraphDriver)`);
  return factsOf(choose(containers, want, source), source);
}

/** The overlay facts of one inspected container, with a clear error for what sneakpeek cannot read. */
export function factsOf(c: Obj, source = 'inspect'): ContainerFacts {
  const name = shortName(c);
  const gd = isObj(c.GraphDriver) ? c.GraphDriver : {};
  const data = isObj(gd.Data) ? gd.Data : {};
  const driver = typeof gd.Name === 'string' ? gd.Name : '';
  if (!OVERLAY_DRIVERS.has(driver))
    throw new OpError(
      `${source}: container ${name} uses storage driver '${driver || 'none'}'; sneakpeek reads overlay2/overlay only`,
    );
  const upperDir = typeof data.UpperDir === 'string' ? data.UpperDir : '';
  if (!upperDir) throw new OpError(`${source}: container ${name} has no GraphDriver.Data.UpperDir`);
  const lower = typeof data.LowerDir === 'string' ? data.LowerDir : '';
  const state = isObj(c.State) ? c.State : {};
  return {
    id: String(c.Id),
    name,
    pid: typeof state.Pid === 'number' ? state.Pid : 0,
    driver,
    upperDir,
    // LowerDir lists the topmost lower layer first, as overlayfs's lowerdir= does.
    lowerDirs: lower ? lower.split(':').filter(Boolean) : [],
    mergedDir: typeof data.MergedDir === 'string' ? data.MergedDir : '',
    engine: typeof c.OCIRuntime === 'string' && typeof c.ConmonPidFile === 'string' ? 'podman' : 'docker',
  };
}

/**
 * The facts a node's FACTS record carries (scripts/get_container_ns.sh sp_inspect), with the
 * same clear errors as an inspect file: a driver that is not overlay, no UpperDir.
 */
export function factsOfRecord(r: Omit<RecordOf<'FACTS'>, 'tag' | 'key'>, name: string): ContainerFacts {
  const text = (s: string) => utf8(s);
  const driver = text(r.driver);
  if (!OVERLAY_DRIVERS.has(driver))
    throw new OpError(`container ${name} uses storage driver '${driver || 'none'}'; sneakpeek reads overlay2/overlay only`);
  const upperDir = text(r.upper);
  if (!upperDir) throw new OpError(`container ${name} has no UpperDir${r.state === 'removing' ? ' (it is being removed)' : ''}`);
  return {
    id: text(r.id),
    name,
    state: r.state,
    pid: /^\d+$/.test(r.pid) ? Number(r.pid) : 0,
    driver,
    upperDir,
    lowerDirs: r.lower ? text(r.lower).split(':').filter(Boolean) : [],
    mergedDir: text(r.merged),
  };
}
