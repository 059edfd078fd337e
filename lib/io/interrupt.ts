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

/** End every running process without marking the run interrupted (a reader that closed early). */
export function stopAll(): void {
  for (const stop of [...stoppers]) stop('SIGTERM');
}

/** For tests that run several mains in one process. */
export function resetInterrupt(): void {
  received = undefined;
}
