// The operator host's schedule for --reconcile (pure: config in, unit text out):
//   sneakpeek-reconcile@<TYPE>.service   runs <repo>/bin/sneakpeek -t TYPE --reconcile -q --config FILE
//                                        over the selection in $SNEAKPEEK_SELECT (default -A; a site
//                                        sets it in <config dir>/sneakpeek-reconcile-<TYPE>.env)
//   sneakpeek-reconcile@<TYPE>.timer     starts it every minute (OnCalendar=minutely)
// TYPE = fswatch | procmon | tcptracer. A timer never starts its service again while a run is
// still going; runs from cron (or by hand) that overlap take turns on each node (sp_lock). The
// run's lines go where the type's logs go: the journal (SyslogIdentifier sneakpeek-reconcile@TYPE),
// or <log.dir>/reconcile-<TYPE>.log with log.target: file. systemd/ holds the rendering of the
// default config with the repository at /opt/sneakpeek (a unit test holds them equal).
import path from 'node:path';
import type { Config } from './config.ts';
import { checkUnitPath, trim } from './units.ts';

export const RECONCILE_UNIT = 'sneakpeek-reconcile';

export interface ReconcileUnitOptions {
  /** The sneakpeek checkout on the operator host: its bin/sneakpeek runs. */
  repo: string;
  /** The config file given to it (--config); sneakpeek-reconcile-<TYPE>.env is read from beside it. */
  config: string;
  /** The timer's OnCalendar= schedule. */
  onCalendar: string;
}

export const RECONCILE_DEFAULTS: ReconcileUnitOptions = {
  repo: '/opt/sneakpeek',
  config: '/etc/sneakpeek/sneakpeek.config.yaml',
  onCalendar: 'minutely',
};

const HEADER = '# managed by sneakpeek — shipped in systemd/, rendered from sneakpeek.config.yaml: install a copy, do not edit it';

/** The service: one --reconcile run of the instance's type. */
export function renderReconcileService(cfg: Config, o: ReconcileUnitOptions = RECONCILE_DEFAULTS): string {
  const repo = trim(checkUnitPath('repo', o.repo));
  const config = checkUnitPath('config', o.config);
  const envFile = `${path.posix.dirname(config)}/${RECONCILE_UNIT}-%i.env`;
  const log =
    cfg.log.target === 'file'
      ? [`StandardOutput=append:${trim(checkUnitPath('log.dir', cfg.log.dir))}/reconcile-%i.log`, 'StandardError=inherit']
      : ['StandardOutput=journal', 'StandardError=inherit', `SyslogIdentifier=${RECONCILE_UNIT}@%i`];
  return [
    HEADER,
    `# ${RECONCILE_UNIT}@<TYPE>.service, TYPE = fswatch | procmon | tcptracer: bin/sneakpeek -t TYPE --reconcile`,
    `# over the pods in SNEAKPEEK_SELECT (default -A: every namespace). Set it, and KUBECONFIG, in`,
    `# ${envFile.replace('%i', '<TYPE>')}, e.g. SNEAKPEEK_SELECT=--namespace web -e noisy-0`,
    `# Started every minute by ${RECONCILE_UNIT}@<TYPE>.timer; by hand: systemctl start ${RECONCILE_UNIT}@procmon`,
    '[Unit]',
    'Description=sneakpeek: reconcile the -t %i instances on the nodes with the cluster',
    `Documentation=file://${repo}/README.md`,
    'Wants=network-online.target',
    'After=network-online.target',
    '',
    '[Service]',
    'Type=oneshot',
    'Environment=SNEAKPEEK_SELECT=-A',
    `EnvironmentFile=-${envFile}`,
    `ExecStart=${repo}/bin/sneakpeek -t %i --reconcile -q --config ${config} $SNEAKPEEK_SELECT`,
    // sneakpeek ends every node at its own deadline (timeouts.units); this is the backstop.
    'TimeoutStartSec=30min',
    ...log,
    'Nice=10',
    // ssh, kubectl and (when this host is a node itself) the node's own work must keep working.
    'ProtectClock=yes',
    'ProtectHostname=yes',
    'ProtectKernelModules=yes',
    'RestrictRealtime=yes',
    'LockPersonality=yes',
    '',
  ].join('\n');
}

/** The timer: the service of the same instance, on the schedule. */
export function renderReconcileTimer(o: ReconcileUnitOptions = RECONCILE_DEFAULTS): string {
  if (!/^[A-Za-z0-9*:/.,~ -]+$/.test(o.onCalendar)) throw new Error(`bad OnCalendar ${JSON.stringify(o.onCalendar)}`);
  return [
    HEADER,
    `# ${RECONCILE_UNIT}@<TYPE>.timer: starts ${RECONCILE_UNIT}@<TYPE>.service (${o.onCalendar}).`,
    `# Enable: systemctl enable --now ${RECONCILE_UNIT}@procmon.timer`,
    '[Unit]',
    'Description=sneakpeek: reconcile the -t %i instances with the cluster, on a schedule',
    '',
    '[Timer]',
    `OnCalendar=${o.onCalendar}`,
    'AccuracySec=1s',
    'Persistent=false',
    '',
    '[Install]',
    'WantedBy=timers.target',
    '',
  ].join('\n');
}
