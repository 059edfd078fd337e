// `crictl inspect` JSON (containerd, CRI-O) → the same container facts docker inspect gives.
// crictl has no GraphDriver: the node script finds the overlay layers in the container's
// /proc/PID/mountinfo and sends them with the JSON (FACTS KEY DRIVER UPPER LOWER MERGED ID JSON).
import { OpError } from './errors.ts';
import type { ContainerFacts } from './inspect.ts';

type Obj = { [k: string]: unknown };
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** crictl's document has `status` and `info`; docker's and podman's have `Id`. */
export function isCrictlInspect(doc: unknown): doc is Obj {
  return isObj(doc) && isObj(doc.status) && isObj(doc.info) && !('Id' in doc);
}

export interface CrictlStatus {
  id: string;
  name: string;
  state: string;
  pid: number;
}

/** id, name, state and `.info.pid` of one crictl inspect document. */
export function crictlStatus(doc: Obj): CrictlStatus {
  const status = isObj(doc.status) ? doc.status : {};
  const info = isObj(doc.info) ? doc.info : {};
  const meta = isObj(status.metadata) ? status.metadata : {};
  return {
    id: typeof status.id === 'string' ? status.id : '',
    name: typeof meta.name === 'string' ? meta.name : '',
    state: typeof status.state === 'string' ? status.state : '',
    pid: typeof info.pid === 'number' ? info.pid : 0,
  };
}

/** Facts from the node's FACTS fields (driver, upper, lower, merged) plus crictl's JSON. */
export function crictlFacts(doc: Obj, dirs: readonly string[], source = 'crictl inspect'): ContainerFacts {
  const s = crictlStatus(doc);
  const [driver = '', upperDir = '', lower = '', mergedDir = ''] = dirs;
  if (!s.id) throw new OpError(`${source}: no status.id in crictl's output`);
  if (driver !== 'overlay' || !upperDir) throw new OpError(`${source}: container ${s.name || s.id} is not on an overlay root; sneakpeek reads overlay only`);
  return {
    id: s.id,
    name: s.name,
    pid: s.pid,
    driver,
    upperDir,
    lowerDirs: lower ? lower.split(':').filter(Boolean) : [],
    mergedDir,
  };
}
