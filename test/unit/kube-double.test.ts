// The Kubernetes API double's pure parts (test/helpers/kube-*.ts): RFC 6455 framing, the
// nsenter prefix it reads as "enter the node", selectors, pod validation, exec Status shapes.
// The whole double is proven against the real kubectl in test/integration/kube-double.test.ts.
import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import zlib from 'node:zlib';
import { spawn } from 'node:child_process';
import { kubeletStatusExit, nodeArgv, processTree, statusExit, statusInternal, statusSuccess, translateStatus } from '../helpers/kube-exec.ts';
import { normalizeImage } from '../helpers/kube-pod-status.ts';
import { fieldsMatch, labelsMatch } from '../helpers/kube-select.ts';
import { invalidMessage, unknownFields, validatePod } from '../helpers/kube-validate.ts';
import { FRAME, HeaderCodec, SPDY_DICTIONARY, SpdyFrameReader, controlFrame, dataFrame, decodeHeaderBlock, encodeHeaderBlock } from '../helpers/kube-spdy.ts';
import { FrameReader, MessageAssembler, OP, ProtocolError, acceptKey, encodeFrame, encodeMaskedFrame } from '../helpers/kube-websocket.ts';

type Obj = Record<string, unknown>;

describe('websocket framing (RFC 6455)', () => {
  it('accept key: the RFC example', () => {
    expect(acceptKey('dGhlIHNhbXBsZSBub25jZQ==')).toBe('s3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
  });

  it.each([
    [0, 2],
    [125, 2],
    [126, 4],
    [65535, 4],
    [65536, 10],
    [1 << 20, 10],
  ])('server frame of %i bytes has a %i-byte header, unmasked', (len, head) => {
    const f = encodeFrame(OP.binary, Buffer.alloc(len, 7));
    expect(f.length).toBe(len + head);
    expect(f[0]).toBe(0x82);
    expect(f[1]! & 0x80).toBe(0);
    const [back] = new FrameReader(16 << 20, false).push(f);
    expect(back!.payload.equals(Buffer.alloc(len, 7))).toBe(true);
  });

  const payload = Buffer.from(Array.from({ length: 70000 }, (_, i) => i % 251));
  it.each([
    ['one chunk', 1 << 30],
    ['byte by byte', 1],
    ['7-byte pieces', 7],
    ['just under a header', 3],
  ])('masked client frames, %s: unmasked, lengths 7/16/64-bit', (_name, piece) => {
    const wire = Buffer.concat([
      encodeMaskedFrame(OP.binary, payload.subarray(0, 100)),
      encodeMaskedFrame(OP.binary, payload.subarray(0, 300)),
      encodeMaskedFrame(OP.binary, payload),
    ]);
    const r = new FrameReader();
    const frames = [];
    for (let i = 0; i < wire.length; i += piece) frames.push(...r.push(wire.subarray(i, i + piece)));
    expect(frames.map((f) => f.payload.length)).toEqual([100, 300, 70000]);
    expect(frames.every((f) => f.masked && f.fin && f.opcode === OP.binary)).toBe(true);
    expect(frames[2]!.payload.equals(payload)).toBe(true);
  });

  it('fragmented message with a ping between the fragments: ping first, then the whole message', () => {
    const wire = Buffer.concat([
      encodeMaskedFrame(OP.binary, Buffer.from([0, 1, 2]), false),
      encodeMaskedFrame(OP.ping, Buffer.from('hb')),
      encodeMaskedFrame(OP.cont, Buffer.from([3, 4]), false),
      encodeMaskedFrame(OP.cont, Buffer.from([5]), true),
    ]);
    const a = new MessageAssembler();
    const msgs = new FrameReader().push(wire).map((f) => a.add(f)).filter(Boolean);
    expect(msgs).toEqual([
      { opcode: OP.ping, data: Buffer.from('hb') },
      { opcode: OP.binary, data: Buffer.from([0, 1, 2, 3, 4, 5]) },
    ]);
  });

  const hdr = (b0: number, b1: number, extra: number[] = []) => Buffer.from([b0, b1, ...extra, 1, 2, 3, 4]);
  it.each([
    ['an unmasked client frame', Buffer.from([0x82, 0x01, 0x00]), /not masked/],
    ['reserved bits', hdr(0xc2, 0x80), /reserved bits/],
    ['an unknown opcode', hdr(0x83, 0x80), /unknown opcode 3/],
    ['a control frame over 125 bytes', hdr(0x89, 0xfe, [0, 200]), /control frame/],
    ['a fragmented control frame', hdr(0x09, 0x80), /control frame/],
    ['a frame over the limit', hdr(0x82, 0xff, [0, 0, 0, 1, 0, 0, 0, 0]), /too big/],
  ])('refuses %s', (_name, wire, msg) => {
    expect(() => new FrameReader().push(wire)).toThrow(msg);
  });

  it.each([
    ['continuation without a start', [[OP.cont, true]]],
    ['a new message inside a fragmented one', [[OP.binary, false], [OP.binary, true]]],
  ] as const)('assembler refuses %s', (_name, seq) => {
    const a = new MessageAssembler();
    expect(() => seq.forEach(([opcode, fin]) => a.add({ opcode, fin, payload: Buffer.alloc(1), masked: true }))).toThrow(ProtocolError);
  });
});

describe('nodeArgv: a leading `nsenter -t 1 … --` means "on the node"', () => {
  it.each([
    [['nsenter', '-t', '1', '-m', '-u', '-i', '-n', '-p', '--', 'sh', '-s'], ['sh', '-s'], true],
    [['nsenter', '--target', '1', '--mount', '--uts', '--ipc', '--net', '--pid', '--', 'sh'], ['sh'], true],
    [['nsenter', '--target=1', '-m', 'sh', '-c', 'x'], ['sh', '-c', 'x'], true],
    [['nsenter', '-t1', '-m', '--', 'true'], ['true'], true],
    [['nsenter', '-mt', '1', 'true'], ['true'], true],
    [['nsenter', '-muinpt1', '--', 'id'], ['id'], true],
    [['/usr/bin/nsenter', '-t', '1', '-a'], ['/bin/sh'], true],
    [['nsenter', '-t', '1', '-m', '--', '-x'], ['-x'], true],
    [['nsenter', '-t', '1', '--', 'nsenter', '-t', '1', '--', 'id'], ['nsenter', '-t', '1', '--', 'id'], true],
    [['nsenter', '-t', '2', '-m', '--', 'sh'], ['nsenter', '-t', '2', '-m', '--', 'sh'], false],
    [['nsenter', '-m', '--', 'sh'], ['nsenter', '-m', '--', 'sh'], false],
    [['sh', '-c', 'nsenter -t 1 -- id'], ['sh', '-c', 'nsenter -t 1 -- id'], false],
    [[], [], false],
  ])('%j → %j', (command, argv, nsenter) => {
    expect(nodeArgv(command)).toEqual({ argv, nsenter });
  });
});

describe('exec Status on the error channel (as the stream translator writes it)', () => {
  it('success, exit code, internal error', () => {
    expect(statusSuccess()).toEqual({ metadata: {}, status: 'Success' });
    expect(statusExit(7)).toEqual({
      metadata: {},
      status: 'Failure',
      message: 'command terminated with non-zero exit code: command terminated with exit code 7',
      reason: 'NonZeroExitCode',
      details: { causes: [{ reason: 'ExitCode', message: '7' }] },
    });
    expect(statusInternal('boom')).toMatchObject({ status: 'Failure', reason: 'InternalError', code: 500, message: 'Internal error occurred: boom' });
  });
});

describe('exec Status: the kubelet writes it, the WebSocket translator rewrites it', () => {
  it.each([
    [statusSuccess(), statusSuccess()],
    [kubeletStatusExit(7, ['sh', '-c', 'exit 7']), statusExit(7)],
    [statusInternal('error executing command in container: boom'), statusInternal('Internal error occurred: error executing command in container: boom')],
  ])('%j → %j', (kubelet, ws) => {
    expect(translateStatus(kubelet)).toEqual(ws);
  });

  it('the kubelet names the command as containerd does', () => {
    expect(kubeletStatusExit(7, ['sh', '-c', 'exit 7']).message).toBe('command terminated with non-zero exit code: error executing command [sh -c exit 7], exit code 7');
  });
});

describe('SPDY/3.1 framing', () => {
  it('the header dictionary is the SPDY/3 one (1423 bytes)', () => {
    expect(SPDY_DICTIONARY.length).toBe(1423);
    expect(createHash('sha256').update(SPDY_DICTIONARY).digest('hex')).toBe('51d27341373f923f3cd88e1eb7162aeaa3723d7585ff2399201dc06498407f02');
  });

  it('frames split anywhere come back whole: control (version 3, type, flags) and data (stream id, FIN)', () => {
    const wire = Buffer.concat([controlFrame(FRAME.ping, 0, Buffer.from([0, 0, 0, 1])), dataFrame(5, 1, Buffer.alloc(70000, 9)), dataFrame(3, 0, Buffer.alloc(0))]);
    for (const piece of [1, 7, 1 << 20]) {
      const r = new SpdyFrameReader();
      const frames = [];
      for (let i = 0; i < wire.length; i += piece) frames.push(...r.push(wire.subarray(i, i + piece)));
      expect(frames.map((f) => (f.control ? `c${f.type}/${f.flags}/${f.data.length}` : `d${f.streamId}/${f.flags}/${f.data.length}`))).toEqual(['c6/0/4', 'd5/1/70000', 'd3/0/0']);
    }
    expect(wire.subarray(0, 4)).toEqual(Buffer.from([0x80, 0x03, 0x00, 0x06]));
  });

  it('header blocks: encode/decode, and a shared zlib context with the dictionary across blocks', async () => {
    const h = { streamtype: 'stdout', 'x-extra': 'v' };
    expect(decodeHeaderBlock(encodeHeaderBlock(h))).toEqual(h);
    const a = new HeaderCodec();
    const b = new HeaderCodec();
    const blocks = [await a.encode({ streamtype: 'error' }), await a.encode({ streamtype: 'stdin' }), await a.encode({})];
    // what a peer with its own context reads, block by block
    expect([await b.decode(blocks[0]!), await b.decode(blocks[1]!), await b.decode(blocks[2]!)]).toEqual([{ streamtype: 'error' }, { streamtype: 'stdin' }, {}]);
    // the second block leans on the first: it does not inflate on its own
    expect(() => zlib.inflateSync(blocks[1]!, { dictionary: SPDY_DICTIONARY })).toThrow();
    a.close();
    b.close();
  });
});

describe('selectors', () => {
  const labels = { app: 'web', 'app.kubernetes.io/managed-by': 'sneakpeek', tier: 'db' };
  it.each([
    ['', true],
    ['app=web', true],
    ['app==web', true],
    ['app!=web', false],
    ['app.kubernetes.io/managed-by=sneakpeek,tier=db', true],
    ['app.kubernetes.io/managed-by=sneakpeek,tier=fe', false],
    ['tier', true],
    ['!tier', false],
    ['!missing', true],
    ['tier in (db,fe)', true],
    ['tier notin (db,fe)', false],
    ['missing notin (x)', true],
    ['app=web,tier in (fe, db)', true],
  ])('labels %j → %s', (sel, want) => {
    expect(labelsMatch(labels, sel)).toBe(want);
  });

  it('an unreadable label selector throws', () => {
    expect(() => labelsMatch(labels, 'a b c')).toThrow(/unable to parse requirement/);
  });

  const p: Obj = { metadata: { name: 'p1', namespace: 'ns' }, spec: { nodeName: 'n1' }, status: { phase: 'Running' } };
  it.each([
    ['metadata.name=p1', true],
    ['metadata.name==p2', false],
    ['spec.nodeName=n1,status.phase!=Pending', true],
    ['status.phase=Pending', false],
  ])('fields %j → %s', (sel, want) => {
    expect(fieldsMatch(p, sel)).toBe(want);
  });

  it('an unknown field label throws the API server message', () => {
    expect(() => fieldsMatch(p, 'spec.bogus=1')).toThrow('field label not supported: spec.bogus');
  });
});

describe('pod validation', () => {
  const good = (): Obj => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'sp-1', labels: { 'app.kubernetes.io/managed-by': 'sneakpeek' } },
    spec: { nodeName: 'node-a', hostPID: true, restartPolicy: 'Never', activeDeadlineSeconds: 60, tolerations: [{ operator: 'Exists' }], containers: [{ name: 'c', image: 'busybox', securityContext: { privileged: true } }] },
  });

  it('a good pod has no unknown fields and no errors', () => {
    expect(unknownFields(good())).toEqual([]);
    expect(validatePod(good())).toEqual([]);
  });

  it.each([
    [(o: Obj) => ((o.spec as Obj).hostPid = true), 'spec.hostPid'],
    [(o: Obj) => (((o.spec as Obj).containers as Obj[])[0]!.imagePullPolcy = 'Never'), 'spec.containers[0].imagePullPolcy'],
    [(o: Obj) => ((((o.spec as Obj).containers as Obj[])[0]!.securityContext as Obj).priviledged = true), 'spec.containers[0].securityContext.priviledged'],
    [(o: Obj) => ((((o.spec as Obj).tolerations as Obj[])[0]!).operater = 'Exists'), 'spec.tolerations[0].operater'],
    [(o: Obj) => ((o.metadata as Obj).label = {}), 'metadata.label'],
  ])('unknown field %#: %s', (mutate, field) => {
    const o = good();
    mutate(o);
    expect(unknownFields(o)).toEqual([field]);
  });

  it.each([
    [(o: Obj) => delete (o.metadata as Obj).name, 'Pod "" is invalid: metadata.name: Required value: name or generateName is required'],
    [(o: Obj) => ((o.spec as Obj).containers = []), 'Pod "sp-1" is invalid: spec.containers: Required value'],
    [(o: Obj) => delete ((o.spec as Obj).containers as Obj[])[0]!.image, 'Pod "sp-1" is invalid: spec.containers[0].image: Required value'],
    [(o: Obj) => ((o.spec as Obj).activeDeadlineSeconds = 0), 'Pod "sp-1" is invalid: spec.activeDeadlineSeconds: Invalid value: 0: must be between 1 and 2147483647, inclusive'],
    [(o: Obj) => ((o.spec as Obj).restartPolicy = 'Sometimes'), 'Pod "sp-1" is invalid: spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"'],
  ])('invalid %#: %s', (mutate, message) => {
    const o = good();
    mutate(o);
    expect(invalidMessage(String((o.metadata as Obj).name ?? ''), validatePod(o))).toBe(message);
  });
});

describe('image names as the runtime reports them', () => {
  it.each([
    ['busybox', 'docker.io/library/busybox:latest'],
    ['busybox:1.36', 'docker.io/library/busybox:1.36'],
    ['library/busybox', 'docker.io/library/busybox:latest'],
    ['ghcr.io/x/y:2', 'ghcr.io/x/y:2'],
    ['localhost:5000/x', 'localhost:5000/x:latest'],
    ['busybox@sha256:abc', 'docker.io/library/busybox@sha256:abc'],
  ])('%s → %s', (image, want) => {
    expect(normalizeImage(image)).toBe(want);
  });
});

describe('processTree of a reaped exec: its group, never a group whose id was reused', () => {
  const until = async (f: () => boolean) => {
    for (let i = 0; i < 200 && !f(); i++) await new Promise((r) => setTimeout(r, 10));
  };
  it('a leader that exited leaves its group members (orphans) to be killed', async () => {
    const sh = spawn('sh', ['-c', 'sleep 30 >/dev/null 2>&1 & echo $!'], { detached: true, stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    sh.stdout.on('data', (d: Buffer) => (out += d.toString()));
    await new Promise((r) => sh.on('close', r));
    const sleeper = Number(out.trim());
    try {
      expect(processTree([sh.pid!], { groupOnly: true })).toEqual([sleeper]);
    } finally {
      process.kill(sleeper, 'SIGKILL');
    }
  });
  it('an id a live process holds again (it leads its own group now) is not ours: nothing', async () => {
    // a detached process leads a group whose id is its pid: as a reused id of a reaped exec would
    const other = spawn('sleep', ['30'], { detached: true, stdio: 'ignore' });
    try {
      await until(() => processTree([other.pid!]).length > 0);
      expect(processTree([other.pid!])).toEqual([other.pid]); // as a live root: itself
      expect(processTree([other.pid!], { groupOnly: true })).toEqual([]); // as a reaped root's group: foreign
    } finally {
      other.kill('SIGKILL');
    }
  });
});
