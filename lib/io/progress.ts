// Live progress of a cluster run on stderr: `⠋ 3/8 nodes done, 1 failed`, redrawn in place.
// Only on a terminal: nothing when stderr is a pipe or a file (cron, CI, `2>log`), under CI=true,
// or with -q. Every other stderr line of the run goes through `say`, so the two never mix.

const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/** The progress line for `done` of `total` nodes. Pure. */
export function progressLine(frame: number, done: number, total: number, failed: number): string {
  return `${FRAMES[frame % FRAMES.length]} ${done}/${total} nodes done${failed ? `, ${failed} failed` : ''}`;
}

export interface Progress {
  /** A node finished (failed or not). */
  done(failed: boolean): void;
  /** Write one line to stderr (the progress line steps aside and comes back). */
  say(line: string): void;
  /** Remove the progress line for good. */
  end(): void;
}

export function progressOn(stderr: NodeJS.WritableStream, env: Record<string, string | undefined>, total: number, quiet: boolean): Progress {
  const tty = (stderr as NodeJS.WriteStream).isTTY === true;
  const ci = env.CI === 'true' || env.CI === '1';
  if (!tty || ci || quiet || total < 2) return { done: () => {}, say: (l) => void stderr.write(l), end: () => {} };
  let frame = 0;
  let done = 0;
  let failed = 0;
  let shown = false;
  const draw = () => {
    stderr.write(`\r\x1b[K${progressLine(frame++, done, total, failed)}`);
    shown = true;
  };
  const clear = () => {
    if (shown) stderr.write('\r\x1b[K');
    shown = false;
  };
  const timer = setInterval(draw, 100);
  timer.unref();
  draw();
  return {
    done(f) {
      done++;
      if (f) failed++;
      draw();
    },
    say(line) {
      clear();
      stderr.write(line);
      draw();
    },
    end() {
      clearInterval(timer);
      clear();
    },
  };
}
