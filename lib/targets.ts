// Which containers a command works on, grouped by node: one node script per node.
import { UsageError } from './errors.ts';
import type { ContainerFacts } from './inspect.ts';

export interface Target {
  /** Node address; undefined = this host. */
  node: string | undefined;
  /** Container name or id as the engine on that node knows it. */
  name: string;
  /** Unique per command run; ties records back to the target. */
  key: number;
  /** Set for cluster-wide runs: lines are prefixed with it ("NODE,CONTAINER"). */
  label?: string;
  facts?: ContainerFacts;
  meta?: { pod?: string; namespace?: string; node?: string; container?: string };
}

/** Group targets by node, keeping first-seen node order. */
export function byNode<T extends { node: string | undefined }>(targets: readonly T[]): Map<string | undefined, T[]> {
  const m = new Map<string | undefined, T[]>();
  for (const t of targets) {
    const list = m.get(t.node);
    if (list) list.push(t);
    else m.set(t.node, [t]);
  }
  return m;
}

/** A container name as engines allow it, or a (partial) id; refuses anything else. */
export function checkContainerName(name: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name.replace(/^\//, '')))
    throw new UsageError(`invalid container name ${JSON.stringify(name)}: expected letters, digits, '_', '.', '-'`);
  return name;
}

export function summary(ok: number, failed: number): string {
  return `${ok} ok, ${failed} failed`;
}
