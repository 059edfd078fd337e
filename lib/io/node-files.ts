// The files the node scripts are made of, read from the repo when a script is built: the sh
// preamble (lib/node-script.sh), each tool's node functions (scripts/<tool>.sh), and the
// bpftrace programs (tracers/<tool>.bt). Read once per run; an edit takes effect on the next run.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../config.ts';
import { assembleNodeScript, type NodeLib } from '../node-script.ts';
import type { Tool } from '../tracers.ts';
import { REPO_ROOT } from './entry.ts';

const cache = new Map<string, string>();
function repoFile(rel: string): string {
  let text = cache.get(rel);
  if (text === undefined) cache.set(rel, (text = readFileSync(path.join(REPO_ROOT, rel), 'utf8')));
  return text;
}

/** A node script: config lines, lib/node-script.sh, the named scripts/<lib>.sh, then `steps`. */
export function nodeScript(cfg: Config, libs: readonly NodeLib[], steps: readonly string[]): string {
  return assembleNodeScript(
    { preamble: repoFile('lib/node-script.sh'), libs: [...new Set(libs)].map((l) => repoFile(`scripts/${l}.sh`)) },
    cfg,
    steps,
  );
}

/** The text of tracers/<tool>.bt. */
export function readProgram(tool: Tool): string {
  return repoFile(`tracers/${tool}.bt`);
}
