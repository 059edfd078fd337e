// Ctrl-C and SIGTERM of a run: every process the runner started is ended (the ssh client, the
// local `sh`, kubectl), no new one starts, and the script exits 130 / 143. Kept apart from the
// runner so that installing the handlers costs nothing at start-up.

type Stopper = (signal: NodeJS.Signals) => void;

const stoppers = new Set<Stopper>();
let received: NodeJS.Signals | undefined;

/** The signal that interrupted this run, if one did. */
export const interruptedBy = (): NodeJS.Signals | undefined => received;

/** The exit code of a run ended by `sig`: 128 + its number (SIGINT 130, SIGTERM 143). */
export const signalExitCode = (sig: NodeJS.Signals): number => 128 + ({ SIGHUP: 1, SIGINT: 2, SIGTERM: 15 } as Record<string, number>)[sig]!;

/** Call `stop` when the run is interrupted (at once if it already was); returns the undo. */
export function onInterrupt(stop: Stopper): () => void {
  if (received) stop(received);
  stoppers.add(stop);
  return () => void stoppers.delete(stop);
}

/** End the run: every registered stopper is called once. A second signal exits at once. */
export function interrupt(sig: NodeJS.Signals): void {
  if (received) {
    process.exit(signalExitCode(received));
  }
  received = sig;
  for (const stop of [...stoppers]) stop(sig);
}

let stopping = false;

/** True once the run is being ended (a signal, or a reader that left): nothing new may start. */
export const stopped = (): boolean => stopping || received !== undefined;

/** End every running process without marking the run interrupted (a reader that closed early). */
export function stopAll(): void {
  stopping = true;
  for (const stop of [...stoppers]) stop('SIGTERM');
}

type Undo = () => Promise<void>;
const undos = new Set<Undo>();

/**
 * Work that must still be undone when the process leaves early (stopAll, then process.exit):
 * the kubectl transport's pods. Returns the unregister.
 */
export function onLeave(undo: Undo): () => void {
  undos.add(undo);
  return () => void undos.delete(undo);
}

/** Run every onLeave undo, giving them `ms` in all. */
export async function undoBeforeLeaving(ms = 15_000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    Promise.allSettled([...undos].map((u) => u())),
    new Promise((r) => (timer = setTimeout(r, ms))),
  ]);
  clearTimeout(timer);
}

/** For tests that run several mains in one process. */
export function resetInterrupt(): void {
  received = undefined;
  stopping = false;
}
