// Which containers a command works on, grouped by node: one node script per node.
import type { Config, Engine } from './config.ts';
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
  /** Cluster-wide runs: the engine that knows this container on its node (else cfg.engine). */
  engine?: Engine;
  meta?: { pod?: string; namespace?: string; node?: string; container?: string; nodeIP?: string; id?: string };
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

/**
 * One node's targets split by engine, each with the config to build its engine functions
 * from (usually one group: a node runs one runtime). A node script with several groups
 * defines the engine functions again before each group's steps: still one session.
 */
export function engineGroups<T extends { engine?: Engine }>(targets: readonly T[], cfg: Config): { cfg: Config; targets: T[] }[] {
  const m = new Map<Engine, T[]>();
  for (const t of targets) {
    const e = t.engine ?? cfg.engine;
    const list = m.get(e);
    if (list) list.push(t);
    else m.set(e, [t]);
  }
  return [...m].map(([engine, ts]) => ({ cfg: engine === cfg.engine ? cfg : { ...cfg, engine }, targets: ts }));
}

const HOST_RE = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const IPV6_RE = /^[0-9A-Fa-f:.]+(?:%[A-Za-z0-9]+)?$/;

/** A node address is a hostname, IPv4 or IPv6 literal; anything else (spaces, `-o…`, `$(…)`) is refused. */
export function checkNodeAddress(node: string): string {
  const bare = node.startsWith('[') && node.endsWith(']') ? node.slice(1, -1) : node;
  if (!HOST_RE.test(bare) && !(bare.includes(':') && IPV6_RE.test(bare)))
    throw new UsageError(`invalid node address ${JSON.stringify(node)}: expected a hostname or IP address`);
  return bare;
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
