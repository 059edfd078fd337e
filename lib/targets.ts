// Which containers a command works on, grouped by node: one node script per node.
import { isIP } from 'node:net';
import type { Config, Engine, Transport } from './config.ts';
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
// A zone id after % (fe80::1%eth0): isIP checks the address; the zone must be a plain word.
const IPV6_ZONE_RE = /^[^%]*(?:%[A-Za-z0-9]+)?$/;
// No host name ends in an all-numeric label (RFC 1123 2.1); libc's inet_aton reads such a name
// as an address in its own shorthand ('1' = 0.0.0.1, '127.1', '0x7f.1', octal '010.0.0.1').
const NUMERIC_LAST_LABEL = /(?:^|\.)(?:[0-9]+|0x[0-9a-f]*)$/i;

/**
 * A node address (-a): a host name, an IPv4 address (dotted quad, in range) or an IPv6 literal
 * (bare or in brackets); anything else (spaces, `-o…`, `$(…)`, `999.1.1.1`, `:::`) is refused.
 */
export function checkNodeAddress(node: string): string {
  const bracketed = node.startsWith('[') && node.endsWith(']');
  const bare = bracketed ? node.slice(1, -1) : node;
  const ok = bare.includes(':') || bracketed
    ? isIP(bare) === 6 && IPV6_ZONE_RE.test(bare)
    : HOST_RE.test(bare) && (!NUMERIC_LAST_LABEL.test(bare) || isIP(bare) === 4);
  if (!ok) throw new UsageError(`invalid node address ${JSON.stringify(node)}: expected a hostname or IP address`);
  return bare;
}

// A Kubernetes object name (RFC 1123 subdomain), as node names are.
const NODE_NAME_RE = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

export const isNodeName = (name: string): boolean => NODE_NAME_RE.test(name);

/** A node name (-a with transport kubectl): what `kubectl get nodes` lists; anything else is refused. */
export function checkNodeName(name: string): string {
  if (!isNodeName(name)) throw new UsageError(`invalid node name ${JSON.stringify(name)}: expected a Kubernetes node name (a-z, 0-9, '-', '.'), as kubectl get nodes lists it`);
  return name;
}

/** -a NODE for the configured transport: an address for ssh, a node name for kubectl. */
export function checkNode(node: string, transport: Transport): string {
  return transport === 'kubectl' ? checkNodeName(node) : checkNodeAddress(node);
}

/** A pod's status.hostIP: an IP address only (v4 dotted quad or v6 literal), never a name to resolve. */
export function isHostIP(ip: string): boolean {
  return isIP(ip) !== 0 && IPV6_ZONE_RE.test(ip);
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
