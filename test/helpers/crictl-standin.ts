// The crictl stand-in (crictl-standin.sh) as an executable named `crictl` in DIR, bound to
// one engine: the wrapper carries its settings, so it works wherever the node script runs it
// (sh -s here, or over ssh) without any environment of ours.
//
//   writeCrictlStandin(dir, { backend: 'ctr', address: ctd.address })   // containerd's CRI
//   writeCrictlStandin(dir, { backend: 'podman' })                      // CRI-O's shape
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { shQuote } from '../../lib/quote.ts';

export const STANDIN = path.resolve(import.meta.dirname, 'crictl-standin.sh');

export type StandinOptions = { backend: 'ctr'; address: string; namespace?: string } | { backend: 'podman' };

export function writeCrictlStandin(dir: string, opts: StandinOptions): string {
  mkdirSync(dir, { recursive: true });
  const bin = path.join(dir, 'crictl');
  const env =
    opts.backend === 'ctr'
      ? `SP_STANDIN_BACKEND=ctr SP_STANDIN_ADDRESS=${shQuote(opts.address)} SP_STANDIN_NAMESPACE=${shQuote(opts.namespace ?? 'k8s.io')}`
      : 'SP_STANDIN_BACKEND=podman';
  writeFileSync(bin, `#!/bin/sh\n# crictl stand-in for sneakpeek's tests (${opts.backend})\n${env} exec /bin/sh ${shQuote(STANDIN)} "$@"\n`);
  chmodSync(bin, 0o755);
  return bin;
}
