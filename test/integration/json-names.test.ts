// --json is valid UTF-8 JSON for any file name, checked with the real jq on a real container:
// names that are UTF-8 (`/tmp/été ☃`, a tab, a newline) appear as themselves; a name that is not
// valid UTF-8 has U+FFFD per bad byte in `path` (as docker shows it) and its exact bytes in
// `pathBytes` (base64). Text output keeps the raw bytes.
import { spawnSync } from 'node:child_process';
import http from 'node:http';
import { isUtf8 } from 'node:buffer';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runTool } from '../helpers/cli.ts';
import { cleanupContainers, docker, ensureBusyboxImage, runContainer } from '../helpers/docker.ts';
import { pod } from '../helpers/kube.ts';
import { commandWorks, dockerUp, isRoot, missing } from '../helpers/prereq.ts';

const skip = missing({ root: isRoot, docker: dockerUp, 'jq (apt-get install jq)': () => commandWorks('jq', ['--version']) });
const NAME = `sp-reliability-input-json-${process.pid}`;
const dir = mkdtempSync(path.join(os.tmpdir(), 'sp-reliability-input-json-'));

// The names made in the container, as bytes (under /tmp/names).
const NAMES = [
  Buffer.from('été ☃'),
  Buffer.from('tab\there'),
  Buffer.from('new\nline'),
  Buffer.from([0x62, 0x61, 0x64, 0xff, 0xfe, 0x6e, 0x61, 0x6d, 0x65]), // bad\xff\xfename
  Buffer.from([0x74, 0x72, 0x75, 0x6e, 0x63, 0xe2, 0x98]), // trunc + 2 of ☃'s 3 bytes
];
const full = (n: Buffer) => Buffer.concat([Buffer.from('/tmp/names/'), n]);
const octal = (b: Buffer) => [...b].map((c) => `\\${c.toString(8).padStart(3, '0')}`).join('');

interface Line { kind: string; path: string; pathBytes?: string; hostPath: string; hostPathBytes?: string; pod?: string }
const bytesOf = (text: string, b64?: string) => (b64 === undefined ? Buffer.from(text, 'utf8') : Buffer.from(b64, 'base64'));

/** Every line through the real `jq -c .`: it must accept each one; returns the parsed objects. */
function throughJq(raw: Buffer): Line[] {
  const lines = raw.toString('latin1').split('\n').filter(Boolean);
  const jq = spawnSync('jq', ['-c', '.'], { input: raw });
  expect(jq.stderr.toString()).toBe('');
  expect(jq.status).toBe(0);
  expect(jq.stdout.toString('utf8').split('\n').filter(Boolean)).toHaveLength(lines.length);
  return lines.map((l) => JSON.parse(Buffer.from(l, 'latin1').toString('utf8')) as Line);
}

/** What docker's API says changed (GET /containers/NAME/changes), path strings as docker gives them. */
function dockerChanges(): Promise<string[]> {
  return new Promise((resolve, reject) => {
    http.get({ socketPath: '/var/run/docker.sock', path: `/containers/${NAME}/changes` }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve((JSON.parse(Buffer.concat(chunks).toString('utf8')) as { Path: string }[]).map((c) => c.Path)));
    }).on('error', reject);
  });
}

describe.skipIf(skip)('--json and non-UTF-8 names (real docker, real jq)', () => {
  let merged: Buffer;
  beforeAll(() => {
    runContainer(NAME, ensureBusyboxImage());
    const touch = NAMES.map((n) => `touch "$(printf '${octal(n)}')"`).join('; ');
    docker('exec', NAME, 'sh', '-c', `mkdir /tmp/names && cd /tmp/names && ${touch}`);
    merged = Buffer.from(docker('inspect', '-f', '{{.GraphDriver.Data.MergedDir}}', NAME), 'utf8');
  });
  afterAll(() => {
    cleanupContainers();
    rmSync(dir, { recursive: true, force: true });
  });

  it.each([[['--json']], [['--json', '--chroot']], [['--json', '-0']]])('sneakpeek -t files %j: jq takes every line; the decoded bytes are the real names', async (flags) => {
    const r = runTool('sneakpeek', ['-t', 'files', '-n', NAME, ...flags]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(isUtf8(r.raw)).toBe(true);
    const raw = flags.includes('-0') ? Buffer.from(r.raw.toString('latin1').replace(/\0/g, '\n'), 'latin1') : r.raw;
    const objs = throughJq(raw);
    const made = objs.filter((o) => bytesOf(o.path, o.pathBytes).subarray(0, 11).toString() === '/tmp/names/');
    expect(made.map((o) => bytesOf(o.path, o.pathBytes).toString('hex')).sort()).toEqual(NAMES.map((n) => full(n).toString('hex')).sort());
    for (const o of made) {
      const bytes = bytesOf(o.path, o.pathBytes);
      expect(o.kind).toBe('A');
      // pathBytes only where the name is not UTF-8; hostPath is MergedDir + the same bytes.
      expect(o.pathBytes !== undefined).toBe(!isUtf8(bytes));
      expect(bytesOf(o.hostPath, o.hostPathBytes).equals(Buffer.concat([merged, bytes]))).toBe(true);
    }
    // `path` is the text docker's API gives for the same change (U+FFFD per invalid byte).
    const docker = await dockerChanges();
    for (const o of made) expect(docker).toContain(o.path);
  });

  it('cluster-wide (--pods-file, this host): labelled JSON lines are valid too', () => {
    const id = docker('inspect', '-f', '{{.Id}}', NAME);
    const f = path.join(dir, 'pods.json');
    writeFileSync(f, JSON.stringify(pod({ name: 'web-0', hostIP: '127.0.0.1', containers: [{ name: 'app', id }] })));
    const r = runTool('sneakpeek', ['-t', 'files', '--json', '--pods-file', f]);
    expect(r.code).toBe(0);
    const objs = throughJq(r.raw);
    expect(objs.every((o) => o.pod === 'web-0')).toBe(true);
    expect(objs.filter((o) => o.pathBytes).map((o) => Buffer.from(o.pathBytes!, 'base64').toString('hex')).sort())
      .toEqual(NAMES.filter((n) => !isUtf8(n)).map((n) => full(n).toString('hex')).sort());
  });

  it('text output keeps the raw bytes (-0: one record per name, newline and all)', () => {
    const r = runTool('sneakpeek', ['-t', 'files', '--chroot', '-0', '-n', NAME]);
    expect(r.code).toBe(0);
    const records = r.raw.toString('latin1').split('\0').filter(Boolean).map((l) => Buffer.from(l, 'latin1'));
    const made = records.filter((b) => b.subarray(0, 13).toString() === 'A /tmp/names/').map((b) => b.subarray(2).toString('hex'));
    expect(made.sort()).toEqual(NAMES.map((n) => full(n).toString('hex')).sort());
  });
});

describe.skipIf(missing({ 'jq (apt-get install jq)': () => commandWorks('jq', ['--version']) }))('get_all_containers --json and non-ASCII text', () => {
  it('a node name that is not ASCII comes out as itself, valid for jq', () => {
    const tmp = mkdtempSync(path.join(os.tmpdir(), 'sp-reliability-input-json-pods-'));
    try {
      const f = path.join(tmp, 'pods.json');
      writeFileSync(f, JSON.stringify(pod({ name: 'web-0', hostIP: '10.0.0.3', nodeName: 'nœud-été-☃', containers: [{ name: 'app', id: 'a'.repeat(64) }] })));
      const r = runTool('get_all_containers', ['--pods-file', f, '--json']);
      expect(r.code).toBe(0);
      expect(isUtf8(r.raw)).toBe(true);
      const jq = spawnSync('jq', ['-r', '.node'], { input: r.raw });
      expect(jq.status).toBe(0);
      expect(jq.stdout.toString('utf8')).toBe('nœud-été-☃\n');
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});
