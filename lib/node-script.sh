# sneakpeek node script — what every script that sneakpeek runs on a node starts with.
# The operator side (lib/node-script.ts) sends, on stdin of `timeout … sh -s` (over ssh, or
# on this host): this file, the tool's own functions (scripts/<tool>.sh), one line per config
# value (SP_DOCKER='docker' …, quoted by lib/quote.ts), then the steps: calls of those
# functions with quoted values. POSIX sh: dash, bash and busybox sh all run it.
#
# Results go back on stdout as records (lib/wire.ts says what each one holds):
#   TAG <TAB> KEY <TAB> FIELD … <NUL>     KEY = the container's number in this run, '-' = the node
export LC_ALL=C
PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
TAB=$(printf '\t')

# rec TAG KEY FIELD…: one record. The last field may hold any byte but NUL.
rec() { printf '%s' "$1"; shift; for sp_rf in "$@"; do printf '\t%s' "$sp_rf"; done; printf '\0'; }

# lastline TEXT: the last non-blank line, for one-line ERR records.
lastline() { printf '%s' "$1" | tr -d '\000' | awk 'NF { l = $0 } END { print l }'; }

# A private scratch dir for this run (engine stderr, sorted listings), removed however the run
# ends: normally, by a signal, or by the watchdog.
sp_tmp=$(mktemp -d "${TMPDIR:-/tmp}/sneakpeek.XXXXXX") || { echo 'cannot create a temporary directory' >&2; exit 1; }

# The watchdog: the session that started us (ssh, kubectl exec, or a local pipe) reads our
# stderr. Once a second it gets a blank line (the operator side drops blank lines); when that
# write fails, the session is gone (the operator was interrupted, or the connection dropped)
# and the whole run — this shell and everything it started (find, sort, systemctl …) — ends at
# once instead of running on unseen. It signals its process group: `timeout`, which the runner
# always puts first on the node's command line, made one for this run. When this shell is gone
# (however it ended) the watchdog removes the scratch dir too and ends. Started before any trap
# is set, so that it has none of them (a subshell that inherits a caught TERM can miss the kill
# that ends it).
sp_main=$$
( trap '' PIPE
  while sleep 1 </dev/null >/dev/null 2>&1 && kill -0 "$sp_main" 2>/dev/null; do
    printf '\n' >&2 2>/dev/null && continue
    trap '' TERM
    kill -TERM 0 2>/dev/null
    sleep 1 </dev/null >/dev/null 2>&1
    break
  done
  rm -rf "$sp_tmp" ) &
sp_watchdog=$!

sp_cleanup() {
  # A run being ended gets the signal more than once (the watchdog signals the whole group,
  # `timeout` passes it on): ignore the rest, or a second one would cut the cleanup short.
  trap '' HUP INT TERM PIPE
  rm -rf "$sp_tmp"
  kill "$sp_watchdog" 2>/dev/null
}
trap sp_cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 141' PIPE   # our reader is gone (the shell's own "Terminated" notice can raise it)

# sp_q CMD…: CMD's stdout into $out, its stderr kept apart (engines warn there); sp_err: its last line.
sp_q() { out=$("$@" 2>"$sp_tmp/err"); }
sp_err() { lastline "$(cat "$sp_tmp/err" 2>/dev/null)"; }

# sp_lock: serialise sneakpeek's changes on this node. Two runs at once (overlapping cron jobs,
# two operators) take turns: the second waits up to $SP_LOCK_WAIT seconds, then gives up with
# a BUSY record and exit 75. The lock is held until this script ends, however it ends.
sp_lock() {
  if ! command -v flock >/dev/null 2>&1; then
    rec BUSY - "flock not found on this node (util-linux): cannot serialise changes"; exit 75
  fi
  mkdir -p -- "$(dirname -- "$SP_LOCK")" 2>/dev/null
  [ -e "$SP_LOCK" ] || ( umask 022; : >>"$SP_LOCK" ) 2>/dev/null
  # flock needs only a descriptor: read-only, so that a run without root can take it too.
  if [ ! -r "$SP_LOCK" ]; then rec BUSY - "cannot open the lock file $SP_LOCK"; exit 75; fi
  exec 9<"$SP_LOCK"
  if ! flock -w "$SP_LOCK_WAIT" 9; then
    rec BUSY - "another sneakpeek run holds $SP_LOCK (waited ${SP_LOCK_WAIT} s)"; exit 75
  fi
}
