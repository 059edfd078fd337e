// lib/event-format.ts: the text and JSON lines of --events, from events parsed out of the real
// captures (test/fixtures/events) and hand-made ones for the corners.
import { describe, expect, it } from 'vitest';
import { eventJson, eventText, showText, type EventLabel } from '../../lib/event-format.ts';
import type { FswatchEvent, ProcmonEvent, TcpEvent } from '../../lib/events.ts';

const CLUSTER: EventLabel = { prefix: '10.0.0.3,0123456789ab', node: 'node-3', nodeIP: '10.0.0.3', pod: 'web-0', namespace: 'shop', container: 'web', id: '0123456789abcdef' };
const LOCAL: EventLabel = { prefix: 'web', node: 'vm', nodeIP: null, pod: null, namespace: null, container: 'web', id: '0123456789abcdef' };

const exec = (over: Partial<ProcmonEvent> = {}): ProcmonEvent => ({
  type: 'procmon', time: '2026-12-01T15:36:41.650025+00:00', pid: 20739, ppid: 20728, uid: 0, comm: 'ls', ret: 0, filename: '/bin/ls', args: ['ls', '-l', '/etc'], upperLayer: false, layer: 'lower', argc: 3, ...over,
});
const tcp = (over: Partial<TcpEvent> = {}): TcpEvent => ({
  type: 'tcptracer', time: '2026-12-01T15:36:43.124414+00:00', kind: 'connect', ip: 4, saddr: '127.0.0.1', sport: 56536, daddr: '127.0.0.1', dport: 8080, pid: 21201, comm: 'nc', ...over,
});
const file = (over: Partial<FswatchEvent> = {}): FswatchEvent => ({
  type: 'fswatch', time: '2026-12-01T15:37:10Z', path: '/tmp/new.txt', hostPath: '/var/lib/docker/overlay2/x/diff/tmp/new.txt', flags: ['Created', 'IsFile'], ...over,
});

describe('showText: a value in a text line', () => {
  it.each([
    ['/bin/ls', '/bin/ls'],
    ['été☃', 'été☃'],
    ['\u{1f600}', '\u{1f600}'],
    ['', '""'],
    ['a b', '"a b"'],
    ['tab\there', '"tab\\there"'],
    ['nl\ncr\r', '"nl\\ncr\\r"'],
    ['q"uote', '"q\\"uote"'],
    ['back\\slash', '"back\\\\slash"'],
    ["single'quote", "single'quote"],
    ['esc\x1b[1m', '"esc\\x1b[1m"'],
    ['del\x7f', '"del\\x7f"'],
    ['c1\u0085', '"c1\\u0085"'],
    ['caf\udce9', '"caf\\xe9"'], // the byte 0xe9 that was not UTF-8
    ['\udcff\udcc0z', '"\\xff\\xc0z"'],
  ])('%j → %s', (s, want) => expect(showText(s)).toBe(want));
});

describe('eventText', () => {
  it.each([
    ['an exec', CLUSTER, exec(), '10.0.0.3,0123456789ab 2026-12-01T15:36:41.650025+00:00 exec pid=20739 ppid=20728 uid=0 ret=0 comm=ls file=/bin/ls args: ls -l /etc\n'],
    ['a dropped binary', LOCAL, exec({ comm: 'dropped', filename: '/tmp/dropped', args: ['/tmp/dropped', 'true'], upperLayer: true, layer: 'upper' }),
      'web 2026-12-01T15:36:41.650025+00:00 exec pid=20739 ppid=20728 uid=0 ret=0 comm=dropped file=/tmp/dropped UPPER(upper) args: /tmp/dropped true\n'],
    ['a copied-up binary', LOCAL, exec({ upperLayer: true, layer: 'copyup' }), 'web 2026-12-01T15:36:41.650025+00:00 exec pid=20739 ppid=20728 uid=0 ret=0 comm=ls file=/bin/ls UPPER(copyup) args: ls -l /etc\n'],
    ['a failed exec, no args', LOCAL, exec({ ret: -2, filename: '/nonexistent', args: [], upperLayer: null, layer: undefined }),
      'web 2026-12-01T15:36:41.650025+00:00 exec pid=20739 ppid=20728 uid=0 ret=-2 comm=ls file=/nonexistent args:\n'],
    ['BCC, file target: its clock, no ppid', LOCAL, exec({ time: null, clock: '15:38:05', ppid: null, uid: null, upperLayer: null, layer: undefined }),
      'web 15:38:05 exec pid=20739 ppid=? uid=? ret=0 comm=ls file=/bin/ls args: ls -l /etc\n'],
    ['cut args', LOCAL, exec({ args: ['a b'], truncated: { moreArgs: true } }), 'web 2026-12-01T15:36:41.650025+00:00 exec pid=20739 ppid=20728 uid=0 ret=0 comm=ls file=/bin/ls args: "a b" [cut]\n'],
    ['a connect', CLUSTER, tcp(), '10.0.0.3,0123456789ab 2026-12-01T15:36:43.124414+00:00 connect pid=21201 comm=nc 127.0.0.1:56536 -> 127.0.0.1:8080\n'],
    ['an IPv6 accept', CLUSTER, tcp({ kind: 'accept', ip: 6, saddr: '::1', sport: 8081, daddr: '::1', dport: 59220 }),
      '10.0.0.3,0123456789ab 2026-12-01T15:36:43.124414+00:00 accept pid=21201 comm=nc [::1]:8081 <- [::1]:59220\n'],
    ['a file change', CLUSTER, file(), '10.0.0.3,0123456789ab 2026-12-01T15:37:10Z file /tmp/new.txt Created,IsFile\n'],
    ['a file outside the UpperDir', CLUSTER, file({ path: null, hostPath: '/x y' }), '10.0.0.3,0123456789ab 2026-12-01T15:37:10Z file "/x y" Created,IsFile\n'],
    // -f FILE: the prefix is the inspect document's Name, whatever it holds: still one line
    ['a hostile container name (-f)', { ...LOCAL, prefix: 'evil\n10.0.0.9,ffffffffffff 2026-01-01T00:00:00Z exec' }, file(),
      '"evil\\n10.0.0.9,ffffffffffff 2026-01-01T00:00:00Z exec" 2026-12-01T15:37:10Z file /tmp/new.txt Created,IsFile\n'],
  ])('%s', (_n, label, ev, want) => expect(eventText(label, ev)).toBe(want));
});

describe('eventJson', () => {
  const json = (label: EventLabel, type: 'procmon' | 'tcptracer' | 'fswatch', ev: ProcmonEvent | TcpEvent | FswatchEvent) => {
    const line = eventJson(label, type, ev);
    expect(line.endsWith('\n')).toBe(true);
    expect(line.slice(0, -1)).not.toContain('\n');
    return JSON.parse(line) as Record<string, unknown>;
  };
  const LABEL_FIELDS = ['time', 'node', 'nodeIP', 'pod', 'namespace', 'container', 'id', 'type'];

  it('procmon: the issue\'s fields, in order, after where and when', () => {
    const o = json(CLUSTER, 'procmon', exec());
    expect(Object.keys(o)).toEqual([...LABEL_FIELDS, 'pid', 'ppid', 'uid', 'comm', 'ret', 'filename', 'args', 'upperLayer', 'layer']);
    expect(o).toEqual({
      time: '2026-12-01T15:36:41.650025+00:00', node: 'node-3', nodeIP: '10.0.0.3', pod: 'web-0', namespace: 'shop', container: 'web', id: '0123456789abcdef', type: 'procmon',
      pid: 20739, ppid: 20728, uid: 0, comm: 'ls', ret: 0, filename: '/bin/ls', args: ['ls', '-l', '/etc'], upperLayer: false, layer: 'lower',
    });
  });

  it('tcptracer and fswatch', () => {
    expect(json(CLUSTER, 'tcptracer', tcp())).toEqual({
      time: '2026-12-01T15:36:43.124414+00:00', node: 'node-3', nodeIP: '10.0.0.3', pod: 'web-0', namespace: 'shop', container: 'web', id: '0123456789abcdef', type: 'tcptracer',
      kind: 'connect', ip: 4, saddr: '127.0.0.1', sport: 56536, daddr: '127.0.0.1', dport: 8080, pid: 21201, comm: 'nc',
    });
    expect(json(LOCAL, 'fswatch', file())).toEqual({
      time: '2026-12-01T15:37:10Z', node: 'vm', nodeIP: null, pod: null, namespace: null, container: 'web', id: '0123456789abcdef', type: 'fswatch',
      path: '/tmp/new.txt', hostPath: '/var/lib/docker/overlay2/x/diff/tmp/new.txt', flags: ['Created', 'IsFile'],
    });
  });

  it('text that is not UTF-8: U+FFFD, and the bytes in <name>Bytes; valid UTF-8 as itself', () => {
    const o = json(LOCAL, 'procmon', exec({ comm: 'caf\udce9', filename: '/tmp/été', args: ['a\tb', '\udcff\udcc0z', ''] }));
    expect(o.comm).toBe('caf\ufffd');
    expect(Buffer.from(o.commBytes as string, 'base64')).toEqual(Buffer.from('caf\xe9', 'latin1'));
    expect(o.filename).toBe('/tmp/été');
    expect(o.filenameBytes).toBeUndefined();
    expect(o.args).toEqual(['a\tb', '\ufffd\ufffdz', '']);
    expect((o.argsBytes as string[]).map((b) => Buffer.from(b, 'base64').toString('latin1'))).toEqual(['a\tb', '\xff\xc0z', '']);
    const f = json(LOCAL, 'fswatch', file({ path: '/caf\udce9', hostPath: '/u/caf\udce9' }));
    expect([f.path, f.pathBytes, f.hostPath, f.hostPathBytes]).toEqual(['/caf\ufffd', Buffer.from('/caf\xe9', 'latin1').toString('base64'), '/u/caf\ufffd', Buffer.from('/u/caf\xe9', 'latin1').toString('base64')]);
    expect(json(LOCAL, 'procmon', exec()).argsBytes).toBeUndefined();
  });

  it('cut: argc and truncated; BCC without a date: time null, clock', () => {
    expect(json(LOCAL, 'procmon', exec({ argc: 20, truncated: { moreArgs: true } }))).toMatchObject({ argc: 20, truncated: { moreArgs: true } });
    const bcc = json(LOCAL, 'procmon', exec({ time: null, clock: '15:38:05', upperLayer: null, layer: undefined, argc: undefined }));
    expect(bcc).toMatchObject({ time: null, clock: '15:38:05', upperLayer: null });
    expect(bcc).not.toHaveProperty('layer');
  });
});
