import { describe, expect, it } from 'vitest';
import { OpError, UsageError } from '../../lib/errors.ts';
import { parseInspect } from '../../lib/inspect.ts';

const docker = {
  Id: '0123456789ab'.padEnd(64, 'c'), Name: '/web', State: { Pid: 4242 },
  GraphDriver: { Name: 'overlay2', Data: { UpperDir: '/u/diff', LowerDir: '/l1/diff:/l2/diff', MergedDir: '/u/merged', WorkDir: '/u/work' } },
};
const podman = {
  Id: 'feedface'.padEnd(64, '0'), Name: 'db', State: { Pid: 7 },
  GraphDriver: { Name: 'overlay', Data: { UpperDir: '/p/diff', LowerDir: '/p/l', MergedDir: '/p/merged' } },
};

describe('parseInspect', () => {
  it.each([
    ['a docker array', JSON.stringify([docker]), undefined, { name: 'web', pid: 4242, driver: 'overlay2', upperDir: '/u/diff', lowerDirs: ['/l1/diff', '/l2/diff'], mergedDir: '/u/merged' }],
    ['a bare object', JSON.stringify(docker), undefined, { name: 'web' }],
    ['podman', JSON.stringify([podman]), undefined, { name: 'db', driver: 'overlay', lowerDirs: ['/p/l'] }],
    ['chosen by name', JSON.stringify([docker, podman]), 'db', { name: 'db' }],
    ['chosen by /name', JSON.stringify([docker, podman]), '/web', { name: 'web' }],
    ['chosen by id prefix', JSON.stringify([docker, podman]), '0123456789ab', { name: 'web' }],
    ['pretty-printed, as docker prints it', JSON.stringify([docker], null, 4), undefined, { upperDir: '/u/diff' }],
  ])('%s', (_l, text, want, expected) => {
    expect(parseInspect(text, want)).toMatchObject(expected);
  });

  it.each([
    ['', UsageError, /empty/],
    ['nope', UsageError, /not JSON/],
    ['[]', UsageError, /empty list/],
    ['{}', UsageError, /not a container inspect document/],
    ['[1,2]', UsageError, /not a container inspect document/],
    ['\u0000\u0001', UsageError, /binary/],
    [JSON.stringify([docker, podman]), UsageError, /holds 2 containers \(web, db\)/],
    [JSON.stringify({ ...docker, GraphDriver: { Name: 'devicemapper', Data: {} } }), OpError, /'devicemapper'/],
    [JSON.stringify({ ...docker, GraphDriver: { Name: 'overlay2', Data: {} } }), OpError, /no GraphDriver\.Data\.UpperDir/],
  ])('%j is refused', (text, type, msg) => {
    expect(() => parseInspect(text)).toThrow(type);
    expect(() => parseInspect(text)).toThrow(msg);
  });

  it('an ambiguous id prefix asks for more', () => {
    const twin = { ...docker, Id: '0123456789ab'.padEnd(64, 'd'), Name: '/web2' };
    expect(() => parseInspect(JSON.stringify([docker, twin]), '0123')).toThrow(/matches 2 containers/);
  });
});
