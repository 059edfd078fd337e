// The process table as the tests read it (/proc): a process's state and parent, what runs below
// a process, and the "every number exactly once" check of the follow tests.
import { readdirSync, readFileSync } from 'node:fs';

/** State letter and parent of PID, or undefined once it is gone. */
export function procStat(pid: number): { state: string; ppid: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: state!, ppid: Number(ppid) };
  } catch {
    return undefined;
  }
}

/** Running: there and not a zombie (orphans here are reaped by PID 1 only now and then). */
export const alive = (pid: number): boolean => {
  const s = procStat(pid);
  return s !== undefined && s.state !== 'Z';
};

/** The command line of PID, words joined by spaces ('' once it is gone). */
export function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trimEnd();
  } catch {
    return '';
  }
}

/** Every process below ROOT (children, their children, …), ROOT itself not included. */
export function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const s = procStat(Number(e));
    if (s) children.set(s.ppid, [...(children.get(s.ppid) ?? []), Number(e)]);
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const c of children.get(p) ?? []) if (!out.includes(c)) {
      out.push(c);
      walk(c);
    }
  };
  walk(root);
  return out;
}

/** Every number 1..max exactly once: what is missing, and what came twice (or out of range). */
export function exactlyOnce(nums: number[], max: number): { missing: number[]; doubled: number[] } {
  const seen = new Map<number, number>();
  for (const n of nums) seen.set(n, (seen.get(n) ?? 0) + 1);
  const missing: number[] = [];
  for (let i = 1; i <= max; i++) if (!seen.has(i)) missing.push(i);
  return { missing, doubled: [...seen].filter(([n, c]) => c > 1 || n < 1 || n > max).map(([n]) => n) };
}
