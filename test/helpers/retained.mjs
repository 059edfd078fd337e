// Peak *retained* memory of a Node process, for tests that must tell "streams" from "holds the
// whole listing" without the ±10 MB wobble of RSS (which depends on when the GC ran).
// Load it with `node --import` (NODE_OPTIONS, for a tool started through bin/): every 100 ms
// it runs a full GC and notes heapUsed + external (Buffers included); at exit it appends the
// peak in bytes to the file $SP_RETAINED_OUT, one line per process.
import { appendFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

const out = process.env.SP_RETAINED_OUT;
if (out) {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc');
  let peak = 0;
  const sample = () => {
    gc();
    const m = process.memoryUsage();
    peak = Math.max(peak, m.heapUsed + m.external);
  };
  setInterval(sample, 100).unref();
  process.on('exit', () => {
    sample();
    appendFileSync(out, `${peak}\n`);
  });
}
