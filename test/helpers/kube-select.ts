// Label and field selectors as the API server reads them (?labelSelector=, ?fieldSelector=),
// for the Kubernetes API double. Pure.
type Obj = Record<string, unknown>;

/** Split on commas outside parentheses: "a in (x,y),b" → ["a in (x,y)", "b"]. */
function terms(sel: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of sel) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      out.push(cur.trim());
      cur = '';
    } else cur += ch;
  }
  if (cur.trim()) out.push(cur.trim());
  return out;
}

/**
 * Label selector: k=v, k==v, k!=v, k, !k, k in (a,b), k notin (a,b); comma = and.
 * Throws on a term it cannot read (the server answers 400).
 */
export function labelsMatch(labels: Record<string, string>, sel: string | null | undefined): boolean {
  if (!sel) return true;
  return terms(sel).every((r) => {
    let m: RegExpMatchArray | null;
    if ((m = r.match(/^([^\s=!(),]+)\s+(in|notin)\s+\((.*)\)$/))) {
      const set = m[3]!.split(',').map((s) => s.trim());
      const has = m[1]! in labels && set.includes(labels[m[1]!]!);
      return m[2] === 'in' ? has : !has;
    }
    if ((m = r.match(/^([^\s=!(),]+)\s*!=\s*([^\s=!(),]*)$/))) return labels[m[1]!] !== m[2];
    if ((m = r.match(/^([^\s=!(),]+)\s*==?\s*([^\s=!(),]*)$/))) return labels[m[1]!] === m[2];
    if ((m = r.match(/^!\s*([^\s=!(),]+)$/))) return !(m[1]! in labels);
    if ((m = r.match(/^([^\s=!(),]+)$/))) return m[1]! in labels;
    throw new Error(`unable to parse requirement: ${JSON.stringify(r)}`);
  });
}

/** The pod fields the API server lets you select on (a subset: the ones a tool would use). */
const POD_FIELDS: Record<string, (p: Obj) => unknown> = {
  'metadata.name': (p) => (p.metadata as Obj)?.name,
  'metadata.namespace': (p) => (p.metadata as Obj)?.namespace,
  'spec.nodeName': (p) => (p.spec as Obj)?.nodeName ?? '',
  'spec.restartPolicy': (p) => (p.spec as Obj)?.restartPolicy,
  'spec.schedulerName': (p) => (p.spec as Obj)?.schedulerName,
  'spec.serviceAccountName': (p) => (p.spec as Obj)?.serviceAccountName,
  'spec.hostNetwork': (p) => String((p.spec as Obj)?.hostNetwork === true),
  'status.phase': (p) => (p.status as Obj)?.phase,
  'status.podIP': (p) => (p.status as Obj)?.podIP ?? '',
  'status.nominatedNodeName': (p) => (p.status as Obj)?.nominatedNodeName ?? '',
};

/** Field selector on pods: f=v, f==v, f!=v; comma = and. Throws `field label not supported: f`. */
export function fieldsMatch(pod: Obj, sel: string | null | undefined, fields = POD_FIELDS): boolean {
  if (!sel) return true;
  return terms(sel).every((r) => {
    const m = r.match(/^([^=!]+)(!=|==|=)(.*)$/);
    if (!m) throw new Error(`invalid selector: '${sel}'; can't understand '${r}'`);
    const get = fields[m[1]!.trim()];
    if (!get) throw new Error(`field label not supported: ${m[1]!.trim()}`);
    const v = String(get(pod) ?? '');
    return m[2] === '!=' ? v !== m[3] : v === m[3];
  });
}

/** Check a selector's syntax without an object (the list is empty, the error must still show). */
export function checkSelectors(labelSelector: string | null, fieldSelector: string | null): void {
  labelsMatch({}, labelSelector);
  fieldsMatch({ metadata: {}, spec: {}, status: {} }, fieldSelector);
}
