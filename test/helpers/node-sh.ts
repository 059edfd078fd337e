// Run node-script functions for real, in a real shell (dash by default, Debian's /bin/sh): the
// script is built the way the tools build it (lib/io/node-files.ts nodeScript) and its records
// come back by field name (lib/wire.ts).
import { spawnSync } from 'node:child_process';
import { DEFAULTS, type Config } from '../../lib/config.ts';
import type { NodeLib } from '../../lib/node-script.ts';
import { parseRecords, type NodeRecord } from '../../lib/wire.ts';
import { nodeScript } from '../../lib/io/node-files.ts';

export const SHELLS = ['dash', 'bash', 'busybox sh'].filter((s) => spawnSync('sh', ['-c', `${s} -c true`]).status === 0);

export interface ShRun {
  code: number;
  records: NodeRecord[];
  stdout: Buffer;
  stderr: string;
}

/** Run `steps` after the named function files, under `timeout 30 SHELL -s` as the runner does. */
export function runSteps(steps: string[], o: { libs?: NodeLib[]; cfg?: Config; shell?: string; env?: NodeJS.ProcessEnv } = {}): ShRun {
  const script = nodeScript(o.cfg ?? DEFAULTS, o.libs ?? ['get_container_ns', 'bpftool_map_container_ns', 'sneakpeek'], steps);
  const r = spawnSync('timeout', ['30', ...(o.shell ?? 'dash').split(' '), '-s'], { input: script, env: o.env ?? process.env, maxBuffer: 256 << 20 });
  return { code: r.status ?? -1, records: parseRecords(r.stdout), stdout: r.stdout, stderr: r.stderr.toString('utf8').replace(/^\n+/gm, '') };
}

/** Records without the tag's `key`, as [tag, ...values] for compact expectations. */
export const flat = (records: NodeRecord[]) => records.map((r) => Object.values(r));

/** The step lines of a built node script (after the function files), without its final `exit 0`. */
export const stepsOf = (script: string): string[] => script.slice(script.indexOf('\n# ---- steps\n') + 13).split('\n').filter((l) => l && l !== 'exit 0');
