// bench/files.ts's "diff" column: a node answer (a file) through the tool's own reader, in a
// fresh process as in a real run (cold: no JIT warm-up from earlier rounds). Prints the seconds
// from the first chunk to the last line, and the number of lines.
import { readFileSync } from 'node:fs';
import { FilesConsumer } from '../lib/diff-stream.ts';
import { RecordSplitter } from '../lib/wire.ts';

const answer = readFileSync(process.argv[2]!);
const t0 = process.hrtime.bigint();
let lines = 0;
const consumer = new FilesConsumer([{ key: 0, name: 'bench' }], { chroot: true, json: false, nul: false, all: false }, {
  line: () => void lines++,
  warn: () => {},
});
const splitter = new RecordSplitter();
for (let i = 0; i < answer.length; i += 65536) splitter.push(answer.subarray(i, i + 65536), (rec) => consumer.record(rec));
const [r] = consumer.finish();
if (r!.error) throw new Error(r!.error);
process.stdout.write(`${Number(process.hrtime.bigint() - t0) / 1e9} ${lines}\n`);
