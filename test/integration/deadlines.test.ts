// Every run ends, on both sides, and leaves nothing (issues #8 items 1, 4, 8 and #9 item 2).
// Real sshd "nodes" on loopback: 127.0.0.2 and 127.0.0.3 have the real docker behind them;
// 127.0.0.5's `docker` hangs (a `sleep` first on its PATH, set by sshd's ForceCommand). Every
// session gets TMPDIR set to a directory of this test, so the node scripts' scratch dirs and
// every process they start can be found: a process of ours is one whose environment names it.
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, runToolAsync, sortedLines, type Run } from '../helpers/cli.ts';
import { cleanupContainers, docker, dockerDiffSorted, ensureBusyboxImage, exec, runContainer } from '../helpers/docker.ts';
import { pod } from '../helpers/kube.ts';
import { commandWorks, dockerUp, isRoot, missing } from '../helpers/prereq.ts';
import { sshdInstalled, startSshd, type Sshd } from '../helpers/sshd.ts';

const skip = missing({
  root: isRoot,
  docker: dockerUp,
  'sshd (/usr/sbin/sshd, openssh-server)': sshdInstalled,
  'ssh (openssh-client)': () => commandWorks('ssh', ['-V']),
});

const tmp = mkdtempSync(path.join(os.tmpdir(), 'sp-deadlines-'));
const nodeTmp = path.join(tmp, 'node-tmp');
const hungBin = path.join(tmp, 'hung-bin');
// A sleep no other test runs: the hung engine.
const HANG = String(3000 + (process.pid % 500));
const C = (n: string) => `sp-deadlines-${n}-${process.pid}`;
let sshd: Sshd;
let cfgFile: string;
let podsFile: string;
const ids: Record<string, string> = {};

const run = (tool: string, args: string[], timeoutMs = 60_000): Promise<Run> =>
  runToolAsync(tool, args, { env: { SNEAKPEEK_CONFIG: cfgFile, CI: 'true' }, timeoutMs });
/** 100 directories × 1000 files: a listing that takes a while. */
const BIG_TREE = 'mkdir /big && cd /big && for d in $(seq 100); do mkdir $d && (cd $d && touch $(seq 1000)); done';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Live (not zombie) processes with their command line and environment. */
function processes(): { pid: string; cmd: string; env: string }[] {
  const out: { pid: string; cmd: string; env: string }[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z') continue;
      out.push({ pid, cmd: readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim(), env: readFileSync(`/proc/${pid}/environ`, 'utf8') });
    } catch {
      /* gone */
    }
  }
  return out;
}

/** Ours on the "node": processes whose environment carries this test's node TMPDIR, or the hung engine's sleep. */
const nodeProcesses = () =>
  processes().filter((p) => p.env.includes(`TMPDIR=${nodeTmp}\0`) || p.cmd === `sleep ${HANG}`).map((p) => `${p.pid} ${p.cmd}`);

/** Ours on the operator side: ssh clients that use this test's key. */
const sshClients = () => processes().filter((p) => p.cmd.startsWith('ssh ') && p.cmd.includes(sshd.identityFile)).map((p) => `${p.pid} ${p.cmd}`);

/** Wait until nothing of ours is left on either side (the watchdog needs about a second). */
async function nothingLeft(ms = 8000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end && (nodeProcesses().length || sshClients().length || readdirSync(nodeTmp).length)) await sleep(200);
  expect(nodeProcesses()).toEqual([]);
  expect(sshClients()).toEqual([]);
  expect(readdirSync(nodeTmp)).toEqual([]);
}

beforeAll(async () => {
  if (skip) return;
  mkdirSync(nodeTmp, { mode: 0o1777 });
  mkdirSync(hungBin);
  writeFileSync(path.join(hungBin, 'docker'), `#!/bin/sh\nexec sleep ${HANG}\n`);
  chmodSync(path.join(hungBin, 'docker'), 0o755);
  const image = ensureBusyboxImage();
  for (const n of ['a', 'b', 'h']) {
    ids[n] = runContainer(C(n), image);
    exec(C(n), `echo ${n} > /tmp/${n}; rm /etc/motd`);
  }
  const env = `env TMPDIR=${nodeTmp}`;
  sshd = await startSshd({
    addresses: ['127.0.0.2', '127.0.0.3', '127.0.0.5'],
    sshdConfig: [
      'Match LocalAddress 127.0.0.2,127.0.0.3',
      `  ForceCommand ${env} sh -c "$SSH_ORIGINAL_COMMAND"`,
      'Match LocalAddress 127.0.0.5',
      `  ForceCommand ${env} PATH=${hungBin}:/usr/local/bin:/usr/bin:/bin sh -c "$SSH_ORIGINAL_COMMAND"`,
      '',
    ].join('\n'),
  });
  cfgFile = sshd.writeConfig({ ssh: { serverAliveInterval: 1 } });
  podsFile = path.join(tmp, 'pods.json');
  writeFileSync(
    podsFile,
    JSON.stringify({
      kind: 'PodList',
      items: [
        pod({ name: 'a-0', hostIP: '127.0.0.2', containers: [{ name: 'a', id: ids.a }] }),
        pod({ name: 'b-0', hostIP: '127.0.0.3', containers: [{ name: 'b', id: ids.b }] }),
        pod({ name: 'h-0', hostIP: '127.0.0.5', containers: [{ name: 'h', id: ids.h }] }),
      ],
    }),
  );
}, 120_000);

afterAll(async () => {
  await sshd?.stop();
  cleanupContainers();
  rmSync(tmp, { recursive: true, force: true });
});

const label = (n: string, node: string) => `${node},${ids[n]!.slice(0, 12)}`;
const prefixed = (n: string, node: string) => dockerDiffSorted(C(n)).map((l) => `${label(n, node)} ${l}`);

describe.skipIf(skip)('deadlines: a hung engine on one node of three', () => {
  it('-t files: the hung node times out on both sides, the others complete, exit 1, nothing left', async () => {
    const t0 = Date.now();
    const r = await run('sneakpeek', ['-t', 'files', '--chroot', '--pods-file', podsFile, '--timeout', '4']);
    const secs = (Date.now() - t0) / 1000;
    expect(sortedLines(r.stdout)).toEqual(sortedLines([...prefixed('a', '127.0.0.2'), ...prefixed('b', '127.0.0.3')].join('\n')));
    expect(r.stderr).toBe(`sneakpeek: ${label('h', '127.0.0.5')}: 127.0.0.5: timed out after 4s\n2 ok, 1 failed\n`);
    expect(r.code).toBe(1);
    // 4 s on the node (its own `timeout`), plus ssh's start and tsx's: far from the hour a hung docker would take.
    expect(secs).toBeLessThan(12);
    await nothingLeft();
  });

  it('get_container_ns on the hung node: one line, exit 1, nothing left', async () => {
    const r = await run('get_container_ns', ['-a', '127.0.0.5', '-n', C('h'), '--timeout', '2']);
    expect(r).toMatchObject({ code: 1, stdout: '', stderr: 'get_container_ns: 127.0.0.5: timed out after 2s\n' });
    await nothingLeft();
  });

  it('the deadline comes from the config when not given: timeouts.lookup for -t merged_dir', async () => {
    const cfg2 = path.join(tmp, 'short.yaml');
    writeFileSync(cfg2, `${readFileSync(cfgFile, 'utf8')}timeouts: {lookup: 2}\n`);
    const r = await runToolAsync('sneakpeek', ['-t', 'merged_dir', '-a', '127.0.0.5', '-n', C('h')], { env: { SNEAKPEEK_CONFIG: cfg2 } });
    expect(r).toMatchObject({ code: 1, stderr: `sneakpeek: ${C('h')}: 127.0.0.5: timed out after 2s\n` });
    await nothingLeft();
  });
});

describe.skipIf(skip)('Ctrl-C and SIGTERM of a cluster run end every node', () => {
  it.each([
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const)('%s → exit %i, every node process ended, nothing left on either side', async (sig, code) => {
    const child = spawn(path.join(ROOT, 'bin/sneakpeek'), ['-t', 'files', '--chroot', '--pods-file', podsFile, '--timeout', '120'], {
      env: { ...process.env, SNEAKPEEK_CONFIG: cfgFile, CI: 'true' },
    });
    let stderr = '';
    let stdout = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    // Wait until the two good nodes have answered and the hung node's engine is running, then interrupt.
    const ready = () => stdout.includes(label('a', '127.0.0.2')) && stdout.includes(label('b', '127.0.0.3')) && /ok, /.test(stderr) === false &&
      nodeProcesses().some((p) => p.endsWith(`sleep ${HANG}`));
    for (let i = 0; i < 300 && !ready(); i++) await sleep(100);
    expect(ready()).toBe(true);
    await sleep(300); // the good nodes' sessions close
    const t0 = Date.now();
    child.kill(sig);
    const exit = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(exit).toBe(code);
    expect(stderr).toMatch(new RegExp(`127\\.0\\.0\\.5: interrupted \\(${sig}\\)\\ninterrupted \\(${sig}\\): 2 ok, 1 failed\\n$`));
    await nothingLeft();
  });
});

describe.skipIf(skip)('a reader that stops early, and a container removed during the listing', () => {
  const BIG = C('big');
  let bigLines = 0;

  beforeAll(() => {
    runContainer(BIG, ensureBusyboxImage());
    exec(BIG, BIG_TREE);
    bigLines = dockerDiffSorted(BIG).length;
  }, 300_000);

  it('| head -1: the run ends quietly (exit 0), and the node stops listing at once: nothing left', async () => {
    const out = execFileSync('bash', ['-c', `${path.join(ROOT, 'bin/sneakpeek')} -t files --chroot -a 127.0.0.2 -n ${BIG} | head -1; echo "exit=\${PIPESTATUS[0]}"`], {
      env: { ...process.env, SNEAKPEEK_CONFIG: cfgFile },
      encoding: 'utf8',
    });
    expect(out).toMatch(/^[ACD] \/.*\nexit=0\n$/);
    await nothingLeft();
  }, 60_000);

  it.each([300, 800, 1500])('docker rm -f %i ms into the listing: the full listing, or a failure — never a short list with exit 0', async (ms) => {
    const victim = C(`victim${ms}`);
    runContainer(victim, ensureBusyboxImage());
    exec(victim, BIG_TREE);
    const listing = run('sneakpeek', ['-t', 'files', '--chroot', '-a', '127.0.0.2', '-n', victim]);
    await sleep(ms);
    docker('rm', '-f', victim);
    const r = await listing;
    const lines = r.stdout.split('\n').filter(Boolean).length;
    if (r.code === 0) expect(lines).toBe(bigLines);
    else {
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(new RegExp(`^sneakpeek: ${victim}: (.*went away during the listing.*|.*being removed.*|.*No such container.*|.*not found on this node.*)\\n$`));
    }
    await nothingLeft();
  }, 300_000);
});

describe.skipIf(skip)('a node that vanishes mid-run', () => {
  it('ssh\'s keepalives find it gone: one line that says so, exit 1', async () => {
    const listing = run('get_container_ns', ['-a', '127.0.0.5', '-n', C('h'), '--timeout', '60']);
    // The session process of that connection ("sshd: root@notty", under the listener or its privsep monitor).
    let session: number | undefined;
    for (let i = 0; i < 100 && !session; i++) {
      await sleep(100);
      const kids = (p: number) => readFileSync(`/proc/${p}/task/${p}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
      for (const k of [...kids(sshd.pid), ...kids(sshd.pid).flatMap(kids)]) if (readFileSync(`/proc/${k}/cmdline`, 'utf8').startsWith('sshd: root@notty')) session = k;
    }
    expect(session).toBeDefined();
    process.kill(session!, 'SIGSTOP'); // the node stops answering, as a node that lost its network would
    try {
      const r = await listing;
      expect(r).toMatchObject({ code: 1, stdout: '' });
      expect(r.stderr).toBe('get_container_ns: 127.0.0.5: the node stopped answering (ssh: no reply to keepalives for 3s) or the connection dropped\n');
    } finally {
      process.kill(session!, 'SIGCONT');
    }
    await nothingLeft();
  }, 60_000);
});
