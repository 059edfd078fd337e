import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULTS, parseConfig, type Config } from '../../lib/config.ts';
import { FSWATCH_EVENTS, fswatchSpec, inotifyWarnings, parseFswatchLine, upperDirOfHeader } from '../../lib/fswatch-unit.ts';
import { renderTemplate } from '../../lib/units.ts';
import { fswatchScript } from '../../scripts/sneakpeek/fswatch.ts';
import { stepsOf } from '../helpers/node-sh.ts';
import { ROOT } from '../helpers/cli.ts';

const cfgOf = (yaml: string): Config => parseConfig(yaml, 'test config');

describe('fswatch@.service', () => {
  const text = renderTemplate(DEFAULTS, fswatchSpec(DEFAULTS));

  it('the shipped systemd/fswatch@.service is the template rendered from the default config', () => {
    expect(readFileSync(path.join(ROOT, 'systemd/fswatch@.service'), 'utf8')).toBe(text);
  });

  it.each([
    ['watches UpperDir plus image dirs', '-- ${SNEAKPEEK_WATCH_DIR} $SNEAKPEEK_IMAGE_DIRS\n'],
    ['one --event per low-noise event', '--event Created --event Updated --event Removed --event MovedFrom --event MovedTo --event AttributeModified '],
    ['timestamps, % escaped for systemd', '--timestamp --utc-time --format-time %%FT%%TZ '],
    ['survives queue overflows', '--allow-overflow'],
    ['restarts on failure', '\nRestart=on-failure\n'],
    ['names its UpperDir first in the log', '\nExecStartPre=/bin/echo "sneakpeek fswatch: container ${SNEAKPEEK_CONTAINER} UpperDir ${SNEAKPEEK_WATCH_DIR}"\n'],
    ['reads only', '\nProtectSystem=strict\n'],
  ])('%s', (_what, piece) => {
    expect(text).toContain(piece);
  });

  it('follows config: binary, flags, events, log target', () => {
    const t = renderTemplate(
      cfgOf('paths: {fswatch: /opt/fsw/bin/fswatch}\nfswatch: {events: [Created], flags: [-r, --latency, "0.5"]}\nlog: {target: file, dir: /srv/log}'),
      fswatchSpec(cfgOf('paths: {fswatch: /opt/fsw/bin/fswatch}\nfswatch: {events: [Created], flags: [-r, --latency, "0.5"]}\nlog: {target: file, dir: /srv/log}')),
    );
    expect(t).toContain('\nExecStart=/opt/fsw/bin/fswatch -r --latency 0.5 --event Created -- ${SNEAKPEEK_WATCH_DIR} $SNEAKPEEK_IMAGE_DIRS\n');
    expect(t).toContain('\nStandardOutput=append:/srv/log/fswatch-%i.log\n');
  });

  it.each([
    ['fswatch: {events: [Created, Opened]}', /'fswatch.events' entry 'Opened' is not an fswatch event/],
    ['fswatch: {events: []}', /'fswatch.events' is empty/],
    ['fswatch: {imageDirs: -1}', /'fswatch.imageDirs'/],
    ['fswatch: {flags: ["--latency\\n1"]}', /'fswatch\.flags' entries must be one line/],
    ['paths: {fswatch: fswatch}', /absolute path/],
    ['paths: {fswatch: "/usr/bin/fswatch; touch /tmp/canary"}', /absolute path/],
  ])('bad config is refused, naming the key: %s', (yaml, re) => {
    expect(() => renderTemplate(cfgOf(yaml), fswatchSpec(cfgOf(yaml)))).toThrow(re);
  });

  it('hostile flags become single, literal systemd words', () => {
    const t = renderTemplate(DEFAULTS, fswatchSpec(cfgOf('fswatch: {flags: ["$(touch /tmp/canary)", ";", "%n", "a b"]}')));
    expect(t).toContain('ExecStart=/usr/bin/fswatch "$$(touch /tmp/canary)" \\; %%n "a b" --event');
  });

  it('knows fswatch 1.14 event names', () => {
    expect(FSWATCH_EVENTS).toEqual(expect.arrayContaining(['Created', 'Updated', 'Removed', 'MovedFrom', 'MovedTo', 'AttributeModified', 'PlatformSpecific']));
  });
});

describe('inotifyWarnings', () => {
  it.each([
    [{ watches: 8192, instances: 128 }, 100, 1, []],
    [{ watches: 8192, instances: 128 }, 8192, 1, []],
    [{ watches: 8192, instances: 128 }, 8193, 1, ['max_user_watches is 8192, below the 8193 directories']],
    [{ watches: 8192, instances: 2 }, 10, 3, ['max_user_instances is 2, below the 3 fswatch instances']],
    [{ watches: NaN, instances: NaN }, 10 ** 9, 10 ** 6, []],
    [undefined, 10 ** 9, 1, []],
  ])('%j, %i dirs, %i instances', (limits, dirs, n, want) => {
    const got = inotifyWarnings(limits, dirs, n);
    expect(got).toHaveLength(want.length);
    want.forEach((w, i) => expect(got[i]).toContain(w));
  });
});

describe('log lines', () => {
  const up = '/var/lib/docker/overlay2/abc/diff';
  it.each([
    [`2026-11-29T04:40:30Z ${up}/tmp/a.txt Created`, { path: '/tmp/a.txt', flags: ['Created'] }],
    [`2026-11-29T04:40:30Z ${up}/tmp/with space.txt Updated`, { path: '/tmp/with space.txt', flags: ['Updated'] }],
    [`2026-11-29T04:40:30Z ${up}/etc Created MovedTo IsDir`, { path: '/etc', flags: ['Created', 'MovedTo', 'IsDir'] }],
    [`2026-11-29T04:40:30Z ${up} AttributeModified`, { path: '/', flags: ['AttributeModified'] }],
    [`2026-11-29T04:40:30Z /elsewhere/x Removed`, { path: undefined, flags: ['Removed'] }],
  ])('%s', (line, want) => {
    expect(parseFswatchLine(line, up)).toMatchObject(want);
  });
  it.each(['', 'sneakpeek fswatch: container web UpperDir /x', '2026 /x NotAnEvent'])('not an event: %j', (line) => {
    expect(parseFswatchLine(line, up)).toBeUndefined();
  });
  it('the first line names the UpperDir', () => {
    expect(upperDirOfHeader(`sneakpeek fswatch: container web UpperDir ${up}`)).toBe(up);
    expect(upperDirOfHeader('2026 /x Created')).toBeUndefined();
  });
});

describe('fswatchScript', () => {
  const hostile = '$(touch /tmp/sp-canary)';
  it.each([false, true])('is valid sh with every value quoted (stop: %s)', (stop) => {
    const s = fswatchScript([{ node: undefined, name: hostile, key: 0 }, { node: undefined, name: 'web', key: 1 }], DEFAULTS, { stop, purge: stop });
    execFileSync('sh', ['-n'], { input: s });
    expect(s).toContain(`'${hostile}'`);
    expect(s.replaceAll(`'${hostile}'`, '')).not.toContain(hostile);
  });

  it('setup: lock, template once, then every container, one reload, every start, one settle', () => {
    const s = fswatchScript([{ node: undefined, name: 'a', key: 0 }, { node: undefined, name: 'b', key: 1 }], DEFAULTS, { stop: false, purge: false });
    const words = stepsOf(s).filter((l) => /^sp_\w+/.test(l)).map((l) => l.split(' ').slice(0, 2).join(' '));
    expect(words).toEqual(['sp_lock', 'sp_inotify', 'sp_template fswatch', 'sp_fswatch 0', 'sp_fswatch 1', 'sp_daemon_reload', 'sp_start 0', 'sp_start 1', 'sp_settle 0']);
  });

  it('setup asks the engine about each container once (the id comes with the inspect)', () => {
    const s = fswatchScript([{ node: undefined, name: 'a', key: 0 }, { node: undefined, name: 'b', key: 1 }], DEFAULTS, { stop: false, purge: false });
    expect(stepsOf(s).filter((l) => l.startsWith('sp_fswatch '))).toEqual([
      'sp_fswatch 0 docker a 2048 /etc/sneakpeek/fswatch',
      'sp_fswatch 1 docker b 2048 /etc/sneakpeek/fswatch',
    ]);
    // …and sp_fswatch itself inspects once: sp_inspect, then (sp_fswatch_env) sp_short of the id it gave.
    expect(s).toContain('sp_fswatch() {\n  sp_tplok "$1" fswatch || return 1\n  sp_inspect "$1" "$2" "$3" && sp_fswatch_env "$@"\n}');
    expect(s).toContain('sp_fswatch_env() {\n  sp_short "$1" "$sp_id" && sp_fswatch_dirs');
  });

  it('teardown with --purge removes the template after the instances', () => {
    const s = fswatchScript([{ node: undefined, name: 'a', key: 0 }], DEFAULTS, { stop: true, purge: true });
    expect(stepsOf(s)).toEqual([
      'sp_lock',
      'sp_cid 0 docker a && sp_stop 0 fswatch "$sp_cid" /etc/sneakpeek/fswatch',
      'sp_purge fswatch /etc/systemd/system/fswatch@.service /etc/sneakpeek/fswatch /etc/sneakpeek',
      'sp_daemon_reload',
    ]);
    expect(stepsOf(fswatchScript([{ node: undefined, name: 'a', key: 0 }], DEFAULTS, { stop: true, purge: false }))).not.toContain('sp_daemon_reload');
  });
});
