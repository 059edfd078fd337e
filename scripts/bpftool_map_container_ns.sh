# bpftool_map_container_ns.sh — what bpftool_map_container_ns runs on a node: pin a
# mount-namespace map for BCC's `--mntnsmap`, put a container's inode in it, install the unit
# template and start TYPE@NAME.service. sneakpeek -t procmon|tcptracer|fswatch set up and tear
# down their units with the same functions.
#
# Sent after lib/node-script.sh (rec, lastline, sp_lock, $sp_tmp) and the config lines:
#   SP_BPFTOOL   the bpftool binary (config paths.bpftool)
#   SP_HEADER    the "managed by sneakpeek" first line of every file it writes
# Records (fields in lib/wire.ts): MAP, MAPGONE, UNIT, RELOAD, OK, ERR, WARN.
#
# The map: a pinned hash map, key 8 bytes = the inode of /proc/PID/ns/mnt in this node's byte
# order, value 4 bytes of zero — BCC's "special filtering" protocol.

# sp_mapkey INODE → $sp_key ("1b 00 …", this node's byte order) and $sp_order. Returns 1 for
# anything but a positive decimal integer without leading zeros: never a key of 0.
sp_mapkey() {
  case $1 in ''|0*|*[!0-9]*) return 1 ;; esac
  # above 2^64-1: some shells' printf clamps silently instead of failing
  [ ${#1} -le 20 ] || return 1
  if [ ${#1} -eq 20 ] && [ "$(printf '%s\n' "$1" 18446744073709551615 | LC_ALL=C sort | tail -n1)" != 18446744073709551615 ]; then return 1; fi
  h=$(printf '%016x' "$1" 2>/dev/null) || return 1
  case $h in *[!0-9a-f]*) return 1 ;; esac
  [ ${#h} -eq 16 ] || return 1
  if [ "$(printf '\001\000' | od -An -tu2 | tr -d ' ')" = 1 ]; then sp_order=little; else sp_order=big; fi
  sp_key=$(printf '%s\n' "$h" | sed 's/../& /g; s/ $//')
  if [ "$sp_order" = little ]; then sp_key=$(printf '%s\n' $sp_key | awk '{ b[NR] = $0 } END { for (i = NR; i > 0; i--) printf "%s%s", b[i], (i > 1 ? " " : "") }'); fi
}

# sp_bpferr OUTPUT → $sp_bpferr: bpftool's last line, with a hint for the usual cause.
sp_bpferr() {
  sp_bpferr=$(lastline "$1")
  case $sp_bpferr in *"Operation not permitted"*|*"Permission denied"*) sp_bpferr="$sp_bpferr (needs root: CAP_BPF/CAP_SYS_ADMIN)" ;; esac
}

# sp_map KEY FILE NAME INODE PRUNE(0|1): make FILE hold INODE's key (create the map, or add the
# key), with PRUNE remove every other key; read it back → MAP record (the operator side decodes
# the dump and checks it). A map made here is removed again when its key cannot be added.
sp_map() {
  k=$1 f=$2 ino=$4 bt=$SP_BPFTOOL
  if ! command -v "$bt" >/dev/null 2>&1; then rec ERR "$k" "bpftool not found on this node ('$bt': install bpftool or set paths.bpftool)"; return 1; fi
  if ! sp_mapkey "$ino"; then rec ERR "$k" "refusing mount namespace inode '$ino': not a positive integer"; return 1; fi
  d=$(dirname -- "$f")
  if [ "$(stat -f -c %T -- "$d" 2>/dev/null)" != bpf_fs ]; then rec ERR "$k" "$d is not a mounted BPF file system (mount -t bpf bpf /sys/fs/bpf)"; return 1; fi
  state=present made=0
  if [ -e "$f" ]; then
    if ! out=$("$bt" map show pinned "$f" 2>&1); then sp_bpferr "$out"; rec ERR "$k" "$f: $sp_bpferr"; return 1; fi
    case $out in *" hash "*"key 8B"*"value 4B"*) ;;
      *) rec ERR "$k" "$f exists but is not a mount-namespace map (hash, key 8, value 4): $(printf '%s\n' "$out" | head -n1)"; return 1 ;; esac
  else
    if ! out=$("$bt" map create "$f" type hash key 8 value 4 entries 128 name "$3" flags 0 2>&1); then
      sp_bpferr "$out"; rec ERR "$k" "cannot create map $f: $sp_bpferr"; return 1
    fi
    state=created made=1
  fi
  # shellcheck disable=SC2086 # $sp_key is 8 separate hex bytes
  if ! "$bt" map lookup pinned "$f" key hex $sp_key >/dev/null 2>&1; then
    if ! out=$("$bt" map update pinned "$f" key hex $sp_key value hex 00 00 00 00 noexist 2>&1); then
      case $out in *"Argument list too long"*) sp_bpferr="map $f is full" ;; *) sp_bpferr "$out"; sp_bpferr="cannot add key to $f: $sp_bpferr" ;; esac
      [ $made = 1 ] && rm -f -- "$f"
      rec ERR "$k" "$sp_bpferr"; return 1
    fi
    [ $state = created ] || state=added
  fi
  pruned=0
  if [ "$5" = 1 ]; then
    for other in $("$bt" map dump pinned "$f" 2>/dev/null | awk '$1 == "key:" && NF >= 9 { print $2 "_" $3 "_" $4 "_" $5 "_" $6 "_" $7 "_" $8 "_" $9 }'); do
      other=$(printf '%s' "$other" | tr _ ' ')
      [ "$other" = "$sp_key" ] && continue
      # shellcheck disable=SC2086
      if out=$("$bt" map delete pinned "$f" key hex $other 2>&1); then pruned=$((pruned + 1)); else sp_bpferr "$out"; rec WARN "$k" "cannot remove stale key $other from $f: $sp_bpferr"; fi
    done
  fi
  if ! dump=$("$bt" -j map dump pinned "$f" 2>&1); then sp_bpferr "$dump"; rec ERR "$k" "cannot read back $f: $sp_bpferr"; return 1; fi
  rec MAP "$k" "$f" "$state" "$sp_order" "$pruned" "$(printf '%s' "$dump" | tr '\t\n' '  ')"
}

# sp_unmap KEY FILE ENVFILE…: remove the pinned map FILE unless one of the ENVFILEs (instances of
# other tools that read the same map) still exists → MAPGONE record.
sp_unmap() {
  k=$1 f=$2; shift 2
  for e in "$@"; do
    if [ -e "$e" ]; then rec MAPGONE "$k" "$f" kept; return 0; fi
  done
  if [ ! -e "$f" ]; then rec MAPGONE "$k" "$f" absent; return 0; fi
  if ! out=$(rm -f -- "$f" 2>&1); then rec ERR "$k" "cannot remove $f: $(lastline "$out")"; return 1; fi
  rec MAPGONE "$k" "$f" removed
}

# ---- unit files and instances ---------------------------------------------------------------
# Shell state: $sp_reload (1 when a daemon-reload is due), $sp_tpl_<tool> (why the template is
# unusable; empty = fine), $sp_tch_<tool> (1 when it changed), $sp_u_<KEY> ("UNIT CHANGED").
sp_reload=0 sp_reload_err= sp_started=0

# sp_put FILE CONTENT MODE: write FILE (CONTENT plus a newline) only when it differs, through a
# temp file of this run's own (two runs never share one) renamed into place.
# Sets $sp_put to created|updated|unchanged; on failure returns 1 with the reason in $sp_err.
sp_put() {
  if [ -f "$1" ] && [ "$(cat -- "$1" 2>/dev/null; printf x)" = "$2
x" ]; then sp_put=unchanged; return 0; fi
  if [ -e "$1" ]; then sp_put=updated; else sp_put=created; fi
  tmpf="$1.sp-new.$$"
  if ! sp_err=$( (umask 077; printf '%s\n' "$2" > "$tmpf" && chmod "$3" "$tmpf" && mv -f -- "$tmpf" "$1") 2>&1); then
    rm -f -- "$tmpf"; sp_err=$(lastline "$sp_err"); [ -n "$sp_err" ] || sp_err="cannot write $1"; return 1
  fi
}

# sp_template TOOL FILE TEXT LOGDIR BINARY…: check systemctl and the binaries, then install the
# template FILE (<unitDir>/<tool>@.service) when missing or changed → UNIT record. On failure
# every instance of TOOL on this node fails with the reason ($sp_tpl_<tool>).
sp_template() {
  t=$1 f=$2 text=$3 logdir=$4; shift 4
  case $t in *[!a-z0-9]*|'') rec ERR - "bad tool name '$t'"; return 1 ;; esac
  why= ch=0
  if ! command -v systemctl >/dev/null 2>&1; then why='systemctl not found on this node (systemd required)'; fi
  if [ -z "$why" ]; then for b in "$@"; do [ -x "$b" ] || { why="$b not found on this node (config paths)"; break; }; done; fi
  d=$(dirname -- "$f")
  if [ -z "$why" ] && ! mkdir -p -- "$d" 2>/dev/null; then why="cannot create $d"; fi
  if [ -z "$why" ] && [ -n "$logdir" ] && ! (umask 027; mkdir -p -- "$logdir") 2>/dev/null; then why="cannot create log dir $logdir"; fi
  if [ -z "$why" ]; then
    if sp_put "$f" "$text" 0644; then
      rec UNIT - "$f" "$sp_put"
      if [ "$sp_put" != unchanged ]; then sp_reload=1 ch=1; fi
    else why=$sp_err; fi
  fi
  eval "sp_tpl_$t=\$why sp_tch_$t=\$ch"
}

# sp_tplok KEY TOOL: TOOL's template (and program) step went well; else ERR KEY with its reason.
# First in a container's setup, so a node that cannot run the units gets no map and no env file.
sp_tplok() {
  eval "sp_why=\${sp_tpl_$2-template step missing}"
  if [ -n "$sp_why" ]; then rec ERR "$1" "$sp_why"; return 1; fi
}

# sp_env KEY TOOL ID ENVDIR NAME=VALUE…: write ENVDIR/ID.env; sets $sp_u_KEY="UNIT CHANGED".
sp_env() {
  k=$1 tool=$2 id=$3 d=$4 f="$4/$3.env"; shift 4
  case $id in [0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]) ;;
    *) rec ERR "$k" "bad container id '$id' (want 12 hex characters)"; return 1 ;; esac
  sp_tplok "$k" "$tool" || return 1
  eval "ch=\${sp_tch_$tool-0}"
  body=$SP_HEADER
  bad='*[!A-Za-z0-9._+@:,=/ -]*'
  for kv in "$@"; do
    v=${kv#*=}
    case $v in $bad|' '*|*' ') rec ERR "$k" "refusing ${kv%%=*} '$v': only letters, digits, single blanks and ._+@:,=/- go into unit env files"; return 1 ;; esac
    body="$body
$kv"
  done
  if ! mkdir -p -- "$d" 2>/dev/null; then rec ERR "$k" "cannot create $d"; return 1; fi
  if ! sp_put "$f" "$body" 0600; then rec ERR "$k" "$sp_err"; return 1; fi
  [ "$sp_put" = unchanged ] || ch=1
  eval "sp_u_$k=\"\$tool@\$id.service \$ch\""
}

# sp_daemon_reload: once, and only when a template changed; a failure fails every pending start.
sp_daemon_reload() {
  [ "$sp_reload" = 1 ] || return 0
  if out=$(systemctl daemon-reload 2>&1); then sp_reload=0; rec RELOAD -
  else sp_reload_err="systemctl daemon-reload failed: $(lastline "$out")"; fi
}

# sp_start KEY: start the instance prepared by sp_env (restart it if running and changed).
sp_start() {
  eval "st=\${sp_u_$1-}"
  [ -n "$st" ] || return 0
  u=${st% *} ch=${st#* } out= rc=0
  if [ -n "$sp_reload_err" ]; then rec ERR "$1" "$sp_reload_err"; eval "sp_u_$1="; return 1; fi
  # A (re)start asked for is no crash loop: reset-failed also clears the unit's start rate limit
  # (StartLimitBurst), which a container restarted several times a minute would otherwise hit.
  if systemctl is-active --quiet "$u"; then
    act=running
    if [ "$ch" = 1 ]; then act=restarted; systemctl reset-failed "$u" >/dev/null 2>&1; out=$(systemctl restart "$u" 2>&1) || rc=1; fi
  else
    systemctl reset-failed "$u" >/dev/null 2>&1
    act=started; out=$(systemctl start "$u" 2>&1) || rc=1
  fi
  # systemctl's first line says why ("Job for … failed because …"); the rest is advice.
  if [ $rc -ne 0 ]; then rec ERR "$1" "$u: $(printf '%s\n' "$out" | awk 'NF { print; exit }')"; eval "sp_u_$1="; return 1; fi
  eval "sp_a_$1=$act"
  [ "$act" = running ] || sp_started=1
}

# sp_settle KEY…: after one short wait, every instance started here must still be active → OK.
sp_settle() {
  [ "$sp_started" = 1 ] && sleep 1
  for k in "$@"; do
    eval "st=\${sp_u_$k-} act=\${sp_a_$k-}"
    [ -n "$st" ] && [ -n "$act" ] || continue
    u=${st% *}
    if systemctl is-active --quiet "$u"; then rec OK "$k" "$u" "$act"
    else rec ERR "$k" "$u did not stay up: $(systemctl status --no-pager -n 3 "$u" 2>&1 | tr '\n' ' ' | tr -s ' ' | cut -c1-400)"
    fi
  done
}

# sp_stop KEY TOOL ID ENVDIR: stop the instance, forget its failures, remove ENVDIR/ID.env → OK.
sp_stop() {
  k=$1 u="$2@$3.service" f="$4/$3.env"
  case $3 in [0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]) ;;
    *) rec ERR "$k" "bad container id '$3' (want 12 hex characters)"; return 1 ;; esac
  act=absent
  if systemctl is-active --quiet "$u" || systemctl is-failed --quiet "$u"; then
    if ! out=$(systemctl stop "$u" 2>&1); then rec ERR "$k" "$u: $(lastline "$out")"; return 1; fi
    act=stopped
  fi
  systemctl reset-failed "$u" >/dev/null 2>&1
  if [ -e "$f" ]; then
    if ! out=$(rm -f -- "$f" 2>&1); then rec ERR "$k" "$(lastline "$out")"; return 1; fi
    act=stopped
  fi
  rmdir -- "$4" 2>/dev/null
  rec OK "$k" "$u" "$act"
}

# sp_purge TOOL FILE ENVDIR ENVROOT: remove the template FILE unless other instances still use it
# (env files remain, or some are still loaded) → UNIT - FILE removed | kept | absent.
sp_purge() {
  t=$1 f=$2
  others=$(ls -- "$3" 2>/dev/null | grep -c '[.]env$')
  busy=$(systemctl list-units --all --plain --no-legend "$t@*.service" 2>/dev/null | awk '$3 == "active" || $3 == "activating" || $3 == "reloading" { n++ } END { print n + 0 }')
  if [ ! -e "$f" ]; then rec UNIT - "$f" absent
  elif [ "$others" -gt 0 ] || [ "$busy" -gt 0 ]; then
    rec UNIT - "$f" kept
    rec WARN - "template $f kept: $others other instance(s) still configured, $busy running"
  elif out=$(rm -f -- "$f" 2>&1); then rec UNIT - "$f" removed; sp_reload=1
  else rec WARN - "cannot remove $f: $(lastline "$out")"
  fi
  rmdir -- "$3" 2>/dev/null
  rmdir -- "$4" 2>/dev/null
  :
}

# sp_start_unit KEY UNIT: start a template of the site's own (not sneakpeek's) → OK or ERR.
sp_start_unit() {
  if systemctl is-active --quiet "$2"; then rec OK "$1" "$2" running
  elif out=$(systemctl start "$2" 2>&1); then rec OK "$1" "$2" started
  else rec ERR "$1" "$2: $(lastline "$out")"; fi
}
