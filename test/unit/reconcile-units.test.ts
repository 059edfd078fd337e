// The operator host's sneakpeek-reconcile@.service / .timer: rendered from config; the shipped
// files are the rendering of the default config (systemd-analyze verify and a real systemd run
// them in test/integration/lifecycle.test.ts).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULTS, parseConfig } from '../../lib/config.ts';
import { RECONCILE_DEFAULTS, renderReconcileService, renderReconcileTimer } from '../../lib/reconcile-units.ts';
import { ROOT } from '../helpers/cli.ts';

describe('sneakpeek-reconcile@.service / .timer', () => {
  it('the shipped files are the rendering of the default config (repository /opt/sneakpeek)', () => {
    expect(readFileSync(path.join(ROOT, 'systemd/sneakpeek-reconcile@.service'), 'utf8')).toBe(renderReconcileService(DEFAULTS));
    expect(readFileSync(path.join(ROOT, 'systemd/sneakpeek-reconcile@.timer'), 'utf8')).toBe(renderReconcileTimer());
  });

  const service = renderReconcileService(DEFAULTS);
  it.each([
    ['the managed-by header first', /^# managed by sneakpeek /],
    ['bin/sneakpeek with the type, --reconcile and a config file; the selection from the environment', /\nExecStart=\/opt\/sneakpeek\/bin\/sneakpeek -t %i --reconcile -q --config \/etc\/sneakpeek\/sneakpeek\.config\.yaml \$SNEAKPEEK_SELECT\n/],
    ['every namespace unless the site says otherwise, beside its config', /\nEnvironment=SNEAKPEEK_SELECT=-A\nEnvironmentFile=-\/etc\/sneakpeek\/sneakpeek-reconcile-%i\.env\n/],
    ['one run, not a daemon; a backstop deadline', /\nType=oneshot\n[^]*\nTimeoutStartSec=30min\n/],
    ['logs to the journal, like the units of the type', /\nStandardOutput=journal\nStandardError=inherit\nSyslogIdentifier=sneakpeek-reconcile@%i\n/],
  ])('%s', (_what, re) => expect(service).toMatch(re));

  it('with log.target: file, to <log.dir>/reconcile-<TYPE>.log beside the units\' logs', () => {
    const cfg = parseConfig('log: {target: file, dir: /var/log/sp}', 'test');
    const text = renderReconcileService(cfg, { ...RECONCILE_DEFAULTS, repo: '/srv/sneakpeek/', config: '/srv/sp.yaml' });
    expect(text).toContain('\nStandardOutput=append:/var/log/sp/reconcile-%i.log\nStandardError=inherit\n');
    expect(text).toContain('\nExecStart=/srv/sneakpeek/bin/sneakpeek -t %i --reconcile -q --config /srv/sp.yaml $SNEAKPEEK_SELECT\n');
    expect(text).toContain('\nEnvironmentFile=-/srv/sneakpeek-reconcile-%i.env\n');
  });

  it('the timer: every minute to the second, no catch-up after downtime', () => {
    expect(renderReconcileTimer()).toMatch(/\n\[Timer\]\nOnCalendar=minutely\nAccuracySec=1s\nPersistent=false\n\n\[Install\]\nWantedBy=timers.target\n$/);
    expect(renderReconcileTimer({ ...RECONCILE_DEFAULTS, onCalendar: '*:*:0/5' })).toContain('\nOnCalendar=*:*:0/5\n');
  });

  it.each([
    [{ repo: 'opt/sneakpeek' }, /'repo' must be an absolute path/],
    [{ config: '/etc/my config.yaml' }, /'config' must be an absolute path/],
  ])('refuses %j', (o, re) => expect(() => renderReconcileService(DEFAULTS, { ...RECONCILE_DEFAULTS, ...o })).toThrow(re));
  it('refuses a schedule that is not one', () => expect(() => renderReconcileTimer({ ...RECONCILE_DEFAULTS, onCalendar: 'daily\nExecStart=/bin/x' })).toThrow(/OnCalendar/));
});
