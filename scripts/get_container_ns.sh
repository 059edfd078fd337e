# get_container_ns.sh — what get_container_ns runs on a node: ask the container engine about
# one container, then stat its main process's mount namespace. sneakpeek's node scripts use
# the same functions (as the original sneakpeek.sh called get_container_ns.sh).
#
# Sent after lib/node-script.sh (rec, lastline, sp_q, $sp_tmp) and the config lines:
#   SP_DOCKER SP_PODMAN SP_CRICTL SP_CTR   the engine CLIs (config paths.*)
#   SP_CTR_ADDRESS SP_CTR_NAMESPACE        containerd's socket and namespace (config containerd.*)
# Records (fields in lib/wire.ts): FACTS, NS, CID, ERR.
# No jq on nodes: docker/podman answer through --format templates, ctr through its tables and
# its mount line, crictl's JSON is read with grep/sed, mount tables with awk.

# sp_facts ENGINE NAME: what the engine knows of container NAME (a name, an id or an id prefix).
#   ENGINE: docker | podman | ctr | crictl | containerd (crictl when this node has it, else ctr)
# Returns 0 and sets:
#   sp_id      the full container id
#   sp_state   running | paused | stopped | created | removing | unknown
#   sp_pid     host pid of its main process ('' or 0 unless running or paused)
#   sp_driver  overlay | overlay2 | another storage driver (the operator side refuses it)
#   sp_upper   UpperDir       sp_lower  LowerDirs, ':'-separated, topmost first
#   sp_merged  the merged root on the host ('' unless running or paused: not mounted)
#   sp_engine  the engine that answered (containerd: crictl or ctr)
#   sp_nolayers  why the layers are unknown (crictl, a container without a process whose
#              layers crictl does not name); '' otherwise. sp_inspect makes it an ERR.
# Returns 1 with the reason in $sp_why (one line) when the engine does not know NAME.
sp_facts() {
  sp_id= sp_state=unknown sp_pid= sp_driver= sp_upper= sp_lower= sp_merged= sp_why= sp_nolayers= sp_engine=$1
  case $1 in
    docker) sp_facts_inspect "$SP_DOCKER" "$2" ;;
    podman) sp_facts_podman "$2" ;;
    ctr) sp_facts_ctr "$2" ;;
    crictl) sp_facts_crictl "$2" ;;
    containerd)
      if command -v -- "$SP_CRICTL" >/dev/null 2>&1; then sp_engine=crictl; sp_facts_crictl "$2"
      else sp_engine=ctr; sp_facts_ctr "$2"; fi ;;
    *) sp_why="unknown engine '$1'"; return 1 ;;
  esac
}

# sp_fx_why TEXT: sp_why = TEXT on one line (names may hold tabs and newlines)
sp_fx_why() { sp_why=$(printf '%s' "$1" | tr -d '\000\r' | tr '\t\n' '  '); }

# sp_fx_fail LABEL: sp_why = "LABEL: <the engine's last stderr line>" (after sp_q); returns 1
sp_fx_fail() { sp_fx_e=$(sp_err); sp_fx_why "$1: ${sp_fx_e:-failed with no message}"; return 1; }

# ---- docker, podman: one `inspect` with a Go template ---------------------------------------

# `index` (not .Data.LowerDir) so that a container whose layers are being removed gives empty
# fields instead of a template error.
sp_facts_inspect() { # CLI NAME
  if ! sp_q "$1" inspect --type container --format '{{.Id}}	{{.State.Status}}	{{.State.Pid}}	{{.GraphDriver.Name}}	{{index .GraphDriver.Data "UpperDir"}}	{{index .GraphDriver.Data "LowerDir"}}	{{index .GraphDriver.Data "MergedDir"}}' -- "$2"; then
    sp_fx_why "$(sp_err)"; [ -n "$sp_why" ] || sp_fx_why "$1 inspect $2 failed"; return 1
  fi
  # split the first line at its tabs (read would merge empty fields: a scratch image has no LowerDir)
  r=${out%%"
"*}
  sp_id=${r%%"$TAB"*}; r=${r#*"$TAB"}; sp_state=${r%%"$TAB"*}; r=${r#*"$TAB"}; sp_pid=${r%%"$TAB"*}; r=${r#*"$TAB"}
  sp_driver=${r%%"$TAB"*}; r=${r#*"$TAB"}; sp_upper=${r%%"$TAB"*}; r=${r#*"$TAB"}; sp_lower=${r%%"$TAB"*}; sp_merged=${r#*"$TAB"}
  # docker: created restarting running removing paused exited dead; podman also configured,
  # initialized, stopping, stopped
  case $sp_state in
    exited|stopped|stopping) sp_state=stopped ;; dead) sp_state=removing ;; restarting) sp_state=running ;;
    configured|initialized) sp_state=created ;; running|paused|created|removing) ;; *) sp_state=unknown ;;
  esac
  case $sp_upper in '<no value>') sp_upper= ;; esac
  case $sp_lower in '<no value>') sp_lower= ;; esac
  case $sp_merged in '<no value>') sp_merged= ;; esac
  # MergedDir is named whether or not it is mounted: only a running or paused container has it
  case $sp_state in running|paused) ;; *) sp_merged= ;; esac
  case $sp_id in ''|*[!0-9a-f]*) sp_fx_why "$1 inspect $2: no usable container id in its answer"; return 1 ;; esac
}

# podman as root only: a rootless podman (this script not running as root) keeps its layers in
# the user's home and mounts them in the user's own mount namespace; sneakpeek does not read
# those (README: Runtimes).
sp_facts_podman() { # NAME
  if [ "$(id -u)" != 0 ]; then
    sp_why="podman: rootless podman is not supported (this node script runs as uid $(id -u)): sneakpeek reads root's podman; set sudo: true or ssh as root"
    return 1
  fi
  sp_facts_inspect "$SP_PODMAN" "$1"
}

# ---- mount tables ---------------------------------------------------------------------------

# mountinfo fields: 1 id, 2 parent, 3 major:minor, 4 root, 5 mount point, 6 options, optional
# fields up to "-", then fstype, source, super options. Paths are escaped \ooo.
SP_FX_AWK_LIB='
function unesc(s,   o, i, c) {
  o = ""
  while ((i = index(s, "\\")) > 0) {
    c = substr(s, i + 1, 3)
    if (c ~ /^[0-7][0-7][0-7]$/) {
      o = o substr(s, 1, i - 1) sprintf("%c", substr(c, 1, 1) * 64 + substr(c, 2, 1) * 8 + substr(c, 3, 1))
      s = substr(s, i + 4)
    } else { o = o substr(s, 1, i); s = substr(s, i + 1) }
  }
  return o s
}
function sep(   i) { for (i = 7; i <= NF; i++) if ($i == "-") return i; return 0 }
'

# sp_fx_rootmount MOUNTINFO WHAT: of the root mount ("/") seen in MOUNTINFO (a process's), WHAT =
# dev (major:minor) | fstype | upper | lower (decoded; lower ':'-joined, topmost first)
sp_fx_rootmount() {
  SP_FX_WHAT=$2 awk "$SP_FX_AWK_LIB"'
    $5 == "/" { s = sep(); if (s) { dev = $3; fst = $(s + 1); opts = $(s + 3) } }
    END {
      w = ENVIRON["SP_FX_WHAT"]
      if (w == "dev") { print dev; exit }
      if (w == "fstype") { print fst; exit }
      n = split(opts, o, ","); r = ""
      for (j = 1; j <= n; j++) {
        if (w == "upper" && o[j] ~ /^upperdir=/) r = unesc(substr(o[j], 10))
        if (w == "lower" && o[j] ~ /^lowerdir=/) {
          m = split(substr(o[j], 10), l, ":")
          for (k = 1; k <= m; k++) if (l[k] != "") r = r (r == "" ? "" : ":") unesc(l[k])
        }
        if (w == "lower" && o[j] ~ /^lowerdir\+=/) r = r (r == "" ? "" : ":") unesc(substr(o[j], 11))
      }
      print r
    }' "$1" 2>/dev/null
}

# sp_fx_hostmount dev MAJ:MIN | upper DIR [MOUNTINFO]: where the host mounts that overlay (its
# merged root); MOUNTINFO defaults to init's (the host's mount namespace)
sp_fx_hostmount() {
  sp_fx_mi=${3:-/proc/1/mountinfo}
  [ -r "$sp_fx_mi" ] || sp_fx_mi=/proc/self/mountinfo
  SP_FX_BY=$1 SP_FX_WANT=$2 awk "$SP_FX_AWK_LIB"'
    { s = sep(); if (!s || $(s + 1) != "overlay" || $4 != "/") next }
    ENVIRON["SP_FX_BY"] == "dev" { if ($3 == ENVIRON["SP_FX_WANT"]) { print unesc($5); exit } next }
    { n = split($(s + 3), o, ",")
      for (j = 1; j <= n; j++) if (o[j] ~ /^upperdir=/ && unesc(substr(o[j], 10)) == ENVIRON["SP_FX_WANT"]) { print unesc($5); exit } }' "$sp_fx_mi" 2>/dev/null
}

# sp_fx_canon PATH [BASE]: PATH made absolute against BASE, symlinks resolved (containers/
# storage's l/ links, relative mount paths), when it exists; else PATH as it was
sp_fx_canon() {
  case $1 in /*) sp_fx_p=$1 ;; *) sp_fx_p=${2:-}/$1 ;; esac
  (cd -P -- "$sp_fx_p" 2>/dev/null && pwd -P) || printf '%s\n' "$sp_fx_p"
}

# sp_fx_canon_list LIST BASE: each ':'-separated entry through sp_fx_canon, rejoined with ':'
sp_fx_canon_list() {
  sp_fx_l=$1 sp_fx_acc=''
  while [ -n "$sp_fx_l" ]; do
    case $sp_fx_l in *:*) sp_fx_one=${sp_fx_l%%:*}; sp_fx_l=${sp_fx_l#*:} ;; *) sp_fx_one=$sp_fx_l; sp_fx_l='' ;; esac
    [ -n "$sp_fx_one" ] || continue
    sp_fx_one=$(sp_fx_canon "$sp_fx_one" "$2")
    sp_fx_acc=${sp_fx_acc:+$sp_fx_acc:}$sp_fx_one
  done
  printf '%s\n' "$sp_fx_acc"
}

# sp_fx_merged: $sp_merged from the host's mounts: the overlay the process has as its root
# (same device), else the overlay mounted with $sp_upper; else, while a process runs,
# /proc/PID/root; '' when none
sp_fx_merged() {
  sp_merged=''
  if [ "${sp_pid:-0}" -gt 0 ] 2>/dev/null; then
    sp_fx_dev=$(sp_fx_rootmount "/proc/$sp_pid/mountinfo" dev)
    [ -z "$sp_fx_dev" ] || sp_merged=$(sp_fx_hostmount dev "$sp_fx_dev")
  fi
  [ -n "$sp_merged" ] || [ -z "$sp_upper" ] || sp_merged=$(sp_fx_hostmount upper "$sp_upper")
  [ -n "$sp_merged" ] || [ "${sp_pid:-0}" -eq 0 ] || [ ! -d "/proc/$sp_pid/root" ] || sp_merged=/proc/$sp_pid/root
}

# sp_fx_frozen PID: true when the process's cgroup is frozen (paused; the CRI reports it running)
sp_fx_frozen() {
  [ -r "/proc/$1/cgroup" ] || return 1
  while IFS= read -r sp_fx_cg; do
    case $sp_fx_cg in
      0::/*) grep -qx 'frozen 1' "/sys/fs/cgroup${sp_fx_cg#0::}/cgroup.events" 2>/dev/null && return 0 ;;
      *:freezer:/*) grep -qxE 'FROZEN|FREEZING' "/sys/fs/cgroup/freezer${sp_fx_cg#*:freezer:}/freezer.state" 2>/dev/null && return 0 ;;
    esac
  done <"/proc/$1/cgroup"
  return 1
}

# sp_fx_state ENGINE-STATE → $sp_state; sp_pid is kept only while a process exists
sp_fx_state() {
  case $1 in
    RUNNING|CONTAINER_RUNNING) sp_state=running ;;
    PAUSED|PAUSING) sp_state=paused ;;
    STOPPED|CONTAINER_EXITED) sp_state=stopped ;;
    CREATED|CONTAINER_CREATED) sp_state=created ;;
    *) sp_state=unknown ;;
  esac
  case $sp_pid in ''|*[!0-9]*) sp_pid=0 ;; esac
  case $sp_state in running|paused) ;; *) sp_pid=0 ;; esac
}

# ---- containerd through ctr ------------------------------------------------------------------

sp_fx_ctr() { "$SP_CTR" -a "$SP_CTR_ADDRESS" -n "$SP_CTR_NAMESPACE" "$@"; }

# sp_fx_ctr_layers SNAPSHOTTER KEY: the snapshot's mount, as ctr prints it
# ("mount -t overlay overlay TARGET -o index=off,workdir=…,upperdir=…,lowerdir=A:B"), → sp_driver
# sp_upper sp_lower; works while the container exists, with or without a task
sp_fx_ctr_layers() {
  if ! sp_q sp_fx_ctr snapshots --snapshotter "$1" mounts -- /sp-root "$2"; then sp_fx_fail "ctr snapshots mounts"; return 1; fi
  sp_fx_m=$(printf '%s\n' "$out" | sed -n 's/^mount -t \([^ ]*\) .* -o \(.*\)$/\1 \2/p' | head -n1)
  case $1 in overlayfs) sp_driver=overlay ;; *) sp_driver=$1 ;; esac
  [ "${sp_fx_m%% *}" = overlay ] || return 0 # not overlay: the operator side names the driver
  sp_fx_o=${sp_fx_m#* }
  sp_upper=$(printf '%s\n' "$sp_fx_o" | tr ',' '\n' | sed -n 's/^upperdir=//p' | head -n1)
  sp_lower=$(printf '%s\n' "$sp_fx_o" | tr ',' '\n' | sed -n 's/^lowerdir=//p' | head -n1)
}

# NAME: an id, or a unique id prefix of 12+ characters. State and pid from `ctr tasks ls` (no
# task: never started, or its task was deleted after it exited); the layers from the container's
# snapshot, so a stopped container's layers are found too.
sp_facts_ctr() {
  # without a socket ctr waits 10 s before it fails
  if [ ! -S "$SP_CTR_ADDRESS" ]; then sp_fx_why "ctr: no containerd socket at $SP_CTR_ADDRESS"; return 1; fi
  # containerd ids are [A-Za-z0-9][A-Za-z0-9._-]*: anything else names no container
  case $1 in
    ''|[!A-Za-z0-9]*|*[!A-Za-z0-9._-]*) sp_fx_why "ctr: no container '$1' in namespace $SP_CTR_NAMESPACE"; return 1 ;;
  esac
  if ! sp_q sp_fx_ctr containers ls -q; then sp_fx_fail ctr; return 1; fi
  # one id a line (ids hold no blanks or glob characters); whatever IFS the caller has set
  sp_fx_ids=$out sp_fx_n=0 sp_fx_ifs=$IFS
  IFS='
'
  for sp_fx_c in $sp_fx_ids; do
    if [ "$sp_fx_c" = "$1" ]; then sp_id=$1 sp_fx_n=1; break; fi
    case $sp_fx_c in "$1"*) [ ${#1} -lt 12 ] || { sp_id=$sp_fx_c; sp_fx_n=$((sp_fx_n + 1)); } ;; esac
  done
  IFS=$sp_fx_ifs
  if [ "$sp_fx_n" -eq 0 ]; then sp_fx_why "ctr: no container '$1' in namespace $SP_CTR_NAMESPACE"; sp_id=; return 1; fi
  if [ "$sp_fx_n" -gt 1 ]; then sp_fx_why "ctr: '$1' matches $sp_fx_n containers in namespace $SP_CTR_NAMESPACE; give more of the id"; sp_id=; return 1; fi
  # TASK PID STATUS
  if ! sp_q sp_fx_ctr tasks ls; then sp_fx_fail ctr; return 1; fi
  sp_fx_t=$(printf '%s\n' "$out" | SP_FX_WANT=$sp_id awk 'NR > 1 && $1 == ENVIRON["SP_FX_WANT"] { print $2, $3; exit }')
  if [ -n "$sp_fx_t" ]; then sp_pid=${sp_fx_t%% *}; sp_fx_state "${sp_fx_t#* }"; else sp_fx_state STOPPED; fi
  # SnapshotKey/Snapshotter are top-level keys of ctr's JSON: exactly four spaces deep
  if ! sp_q sp_fx_ctr containers info -- "$sp_id"; then sp_fx_fail ctr; return 1; fi
  sp_fx_key=$(printf '%s\n' "$out" | sed -n 's/^    "SnapshotKey": "\(.*\)",$/\1/p' | head -n1)
  sp_fx_sn=$(printf '%s\n' "$out" | sed -n 's/^    "Snapshotter": "\(.*\)",$/\1/p' | head -n1)
  if [ -z "$sp_fx_key" ] || [ -z "$sp_fx_sn" ]; then sp_fx_why "ctr: container $sp_id has no snapshot"; return 1; fi
  sp_fx_ctr_layers "$sp_fx_sn" "$sp_fx_key" || return 1
  sp_fx_merged
}

# ---- containerd, CRI-O through crictl --------------------------------------------------------

# sp_fx_json_str KEY / sp_fx_json_num KEY: the first "KEY": value in $sp_fx_json. Inside a
# JSON string a quote is \" so no label or env value can fake a "key": pair; crictl prints
# status (id, state) first and info.pid before the runtime spec.
sp_fx_json_str() { printf '%s\n' "$sp_fx_json" | grep -o "\"$1\": *\"[^\"]*\"" | head -n1 | sed 's/^"[^"]*": *"//; s/"$//'; }
sp_fx_json_num() { printf '%s\n' "$sp_fx_json" | grep -o "\"$1\": *[0-9][0-9]*" | head -n1 | sed 's/^.*: *//'; }

# sp_fx_cs_layers LAYERDIR: containers/storage's overlay layout (CRI-O, podman): LAYERDIR/diff
# is the upper dir; LAYERDIR/lower lists the lower layers as l/<short> links, relative to the
# driver home, topmost first
sp_fx_cs_layers() {
  sp_fx_home=$(dirname -- "$1")
  [ -d "$1/diff" ] || return 1
  sp_driver=overlay sp_upper=$(sp_fx_canon "$1/diff") sp_lower=''
  [ ! -r "$1/lower" ] || sp_lower=$(sp_fx_canon_list "$(cat -- "$1/lower")" "$sp_fx_home")
}

# NAME: an id or an id prefix (crictl resolves prefixes). A running container's layers are its
# root mount in /proc/PID/mountinfo (relative layer paths — a mount too long for a page, made
# from the driver's home — resolved against that home); a stopped one's: containerd names its
# snapshot (asked through ctr), CRI-O its layer dir. Paused is read from the cgroup freezer:
# the CRI reports a paused container as running.
sp_facts_crictl() {
  if ! sp_q "$SP_CRICTL" inspect -o json -- "$1"; then sp_fx_fail "crictl inspect"; return 1; fi
  sp_fx_json=$out
  sp_id=$(sp_fx_json_str id)
  sp_pid=$(sp_fx_json_num pid)
  sp_fx_st=$(sp_fx_json_str state)
  case $sp_id in ''|*[!A-Za-z0-9._-]*) sp_fx_why "crictl inspect $1: no container id in its answer"; sp_id=; return 1 ;; esac
  sp_fx_state "$sp_fx_st"
  # CRI-O can report the pid of a process that has exited
  if [ "$sp_pid" -gt 0 ] && ! [ -r "/proc/$sp_pid/mountinfo" ]; then sp_state=unknown sp_pid=0; fi
  if [ "$sp_state" = running ] && sp_fx_frozen "$sp_pid"; then sp_state=paused; fi
  if [ "$sp_pid" -gt 0 ]; then
    sp_driver=$(sp_fx_rootmount "/proc/$sp_pid/mountinfo" fstype)
    [ -n "$sp_driver" ] || sp_driver=none
    if [ "$sp_driver" = overlay ]; then
      sp_upper=$(sp_fx_rootmount "/proc/$sp_pid/mountinfo" upper)
      sp_lower=$(sp_fx_rootmount "/proc/$sp_pid/mountinfo" lower)
      case $sp_upper in
        /*) sp_fx_home=$(dirname -- "$(dirname -- "$sp_upper")") ;;
        *) sp_fx_root=$(sp_fx_json_str path); sp_fx_home=$(dirname -- "$(dirname -- "$sp_fx_root")") ;;
      esac
      sp_upper=$(sp_fx_canon "$sp_upper" "$sp_fx_home")
      sp_lower=$(sp_fx_canon_list "$sp_lower" "$sp_fx_home")
    fi
  else
    sp_fx_key=$(sp_fx_json_str snapshotKey) sp_fx_sn=$(sp_fx_json_str snapshotter)
    sp_fx_root=$(sp_fx_json_str path)
    if [ -n "$sp_fx_key" ] && [ -n "$sp_fx_sn" ] && [ -S "$SP_CTR_ADDRESS" ]; then
      sp_fx_ctr_layers "$sp_fx_sn" "$sp_fx_key" || return 1
    elif case $sp_fx_root in /*/merged) sp_fx_cs_layers "$(dirname -- "$sp_fx_root")" ;; *) false ;; esac; then
      :
    else
      sp_nolayers="crictl: container $sp_id is $sp_state and crictl names no layers for it (containerd: set containerd.address)"
      return 0
    fi
  fi
  sp_fx_merged
}

# ---- records ---------------------------------------------------------------------------------

# sp_inspect KEY ENGINE NAME → FACTS record (or ERR; returns 1). Leaves sp_facts' variables set.
sp_inspect() {
  if ! sp_facts "$2" "$3"; then rec ERR "$1" "$sp_why"; return 1; fi
  sp_factsrec "$1" "$3"
}

# sp_factsrec KEY NAME: the FACTS record of what sp_facts set (or ERR; returns 1)
sp_factsrec() {
  if [ -n "$sp_nolayers" ]; then rec ERR "$1" "$sp_nolayers"; return 1; fi
  # FACTS fields are TAB-separated, and the diff reads LowerDirs ':'-separated, one a line
  case $sp_upper$sp_lower$sp_merged in *"$TAB"*|*'
'*) rec ERR "$1" "a layer path of container $2 holds a tab or a newline: not supported"; return 1 ;; esac
  rec FACTS "$1" "$sp_id" "$sp_state" "$sp_pid" "$sp_driver" "$sp_upper" "$sp_lower" "$sp_merged"
}

# sp_ns KEY ENGINE NAME → NS record: the full id, the main process, the inode of
# /proc/PID/ns/mnt (followed, like stat -L). Sets $sp_id $sp_pid $sp_ino. A paused container
# still has its process and namespace; one that is not running or paused, or a pid or inode
# that is not a positive integer, is an ERR: an empty inode must never become map key 0.
sp_ns() {
  if ! sp_facts "$2" "$3"; then rec ERR "$1" "$sp_why"; return 1; fi
  case $sp_state in running|paused) ;; *) rec ERR "$1" "container $3 is not running ($sp_state)"; return 1 ;; esac
  case $sp_pid in ''|0|*[!0-9]*) rec ERR "$1" "container $3 has no main process (pid '$sp_pid')"; return 1 ;; esac
  if ! sp_ino=$(stat -Lc %i "/proc/$sp_pid/ns/mnt" 2>&1); then
    rec ERR "$1" "cannot read /proc/$sp_pid/ns/mnt: $(lastline "$sp_ino")"; return 1
  fi
  case $sp_ino in ''|0|*[!0-9]*) rec ERR "$1" "bad mount namespace inode '$sp_ino' for pid $sp_pid"; return 1 ;; esac
  rec NS "$1" "$sp_id" "$sp_pid" "$sp_ino"
}

# sp_short KEY ID → $sp_cid: ID's first 12 characters, which must be hex (a unit instance id).
sp_short() {
  sp_cid=$(printf '%s' "$2" | cut -c1-12)
  case $sp_cid in *[!0-9a-f]*|'') rec ERR "$1" "engine gave no usable id: '$2' (unit instances are named by a hex container id)"; return 1 ;; esac
  if [ ${#sp_cid} -ne 12 ]; then rec ERR "$1" "engine gave no usable id: '$2' (unit instances are named by a hex container id)"; return 1; fi
}

# sp_cid KEY ENGINE NAME → $sp_cid, the 12-hex id (unit instance ids). When the engine no longer
# knows NAME (container removed) and NAME itself is an id of 12+ hex characters, its first 12
# are taken, so teardown still finds the instance.
sp_cid() {
  if sp_facts "$2" "$3"; then sp_short "$1" "$sp_id"; return; fi
  case $3 in *[!0-9a-f]*|'') rec ERR "$1" "$sp_why"; return 1 ;; esac
  if [ ${#3} -lt 12 ]; then rec ERR "$1" "$sp_why"; return 1; fi
  sp_short "$1" "$3"
}
