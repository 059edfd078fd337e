// The bpftrace programs shipped in the repo (tracers/<tool>.bt), read for the node scripts
// of `sneakpeek -t procmon|tcptracer` and bpftool_map_container_ns. Kept apart from
// lib/tracers.ts, which stays pure.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from './entry.ts';
import type { Tool } from '../tracers.ts';

/** The text of tracers/<tool>.bt. */
export function readProgram(tool: Tool): string {
  return readFileSync(path.join(REPO_ROOT, 'tracers', `${tool}.bt`), 'utf8');
}
