# get_container_ns.sh — what get_container_ns runs on a node: ask the container engine about
# one container, then stat its main process's mount namespace. sneakpeek's node scripts use
# the same functions (as the original sneakpeek.sh called get_container_ns.sh).
#
# Sent after lib/node-script.sh (rec, lastline, sp_q, $sp_tmp) and the config lines:
#   SP_DOCKER SP_PODMAN SP_CRICTL   the engine CLIs (config paths.*)
# Records (fields in lib/wire.ts): FACTS, NS, CID, ERR.

# sp_facts ENGINE NAME: what the engine knows of container NAME (a name, an id or an id prefix).
# Returns 0 and sets:
#   sp_id      the full container id
#   sp_state   running | paused | stopped | created | removing | unknown
#   sp_pid     host pid of its main process ('' or 0 when it has none)
#   sp_driver  overlay | overlay2 | another storage driver
#   sp_upper   UpperDir       sp_lower  LowerDirs, ':'-separated, topmost first
#   sp_merged  the merged root on the host ('' when not mounted)
# Returns 1 with the reason in $sp_why (one line) when the engine does not know NAME.
sp_facts() {
  sp_id= sp_state=unknown sp_pid= sp_driver= sp_upper= sp_lower= sp_merged= sp_why=
  case $1 in
    docker) sp_facts_inspect "$SP_DOCKER" "$2" ;;
    podman) sp_facts_inspect "$SP_PODMAN" "$2" ;;
    crictl) sp_facts_crictl "$2" ;;
    *) sp_why="unknown engine '$1'"; return 1 ;;
  esac
}

# docker and podman: one `inspect` with a Go template. `index` (not .Data.LowerDir) so that a
# container whose layers are being removed gives empty fields instead of a template error.
sp_facts_inspect() { # CLI NAME
  if ! sp_q "$1" inspect --type container --format '{{.Id}}	{{.State.Status}}	{{.State.Pid}}	{{.GraphDriver.Name}}	{{index .GraphDriver.Data "UpperDir"}}	{{index .GraphDriver.Data "LowerDir"}}	{{index .GraphDriver.Data "MergedDir"}}' -- "$2"; then
    sp_why=$(sp_err); [ -n "$sp_why" ] || sp_why="$1 inspect $2 failed"; return 1
  fi
  # split the first line at its tabs (read would merge empty fields: a scratch image has no LowerDir)
  r=${out%%"
"*}
  sp_id=${r%%"$TAB"*}; r=${r#*"$TAB"}; sp_state=${r%%"$TAB"*}; r=${r#*"$TAB"}; sp_pid=${r%%"$TAB"*}; r=${r#*"$TAB"}
  sp_driver=${r%%"$TAB"*}; r=${r#*"$TAB"}; sp_upper=${r%%"$TAB"*}; r=${r#*"$TAB"}; sp_lower=${r%%"$TAB"*}; sp_merged=${r#*"$TAB"}
  case $sp_state in exited) sp_state=stopped ;; dead) sp_state=removing ;; restarting) sp_state=running ;; running|paused|created|removing) ;; *) sp_state=unknown ;; esac
  case $sp_upper in '<no value>') sp_upper= ;; esac
  case $sp_lower in '<no value>') sp_lower= ;; esac
  case $sp_merged in '<no value>') sp_merged= ;; esac
  [ -n "$sp_id" ] || { sp_why="$1 inspect $2: no container id in its answer"; return 1; }
}

# crictl (containerd, CRI-O): `crictl inspect` gives the id, state and .info.pid (picked from its
# JSON with grep: nodes have no jq); the overlay layers come from the container's root mount in
# /proc/PID/mountinfo, the merged dir from the host's mount of the same upperdir.
sp_facts_crictl() { # NAME
  if ! sp_q "$SP_CRICTL" inspect -o json -- "$1"; then
    sp_why=$(sp_err); [ -n "$sp_why" ] || sp_why="crictl inspect $1 failed"; return 1
  fi
  sp_id=$(printf '%s\n' "$out" | grep -o '"id": *"[^"]*"' | head -n1 | cut -d'"' -f4)
  sp_pid=$(printf '%s\n' "$out" | grep -o '"pid": *[0-9][0-9]*' | head -n1 | tr -cd '0-9')
  case $(printf '%s\n' "$out" | grep -o '"state": *"[A-Z_]*"' | head -n1 | cut -d'"' -f4) in
    CONTAINER_RUNNING) sp_state=running ;; CONTAINER_EXITED) sp_state=stopped ;; CONTAINER_CREATED) sp_state=created ;; *) sp_state=unknown ;;
  esac
  [ -n "$sp_id" ] || { sp_why="crictl inspect $1: no container id in its answer"; return 1; }
  case $sp_pid in ''|0|*[!0-9]*) return 0 ;; esac
  sp_overlay_dirs "/proc/$sp_pid/mountinfo" || { sp_driver=none; return 0; }
  sp_merged=$(sp_mountpoint_of /proc/1/mountinfo "$sp_upper")
  [ -n "$sp_merged" ] || sp_merged=/proc/$sp_pid/root
}

# sp_overlay_dirs MOUNTINFO: the root mount's overlay layers → $sp_driver $sp_upper $sp_lower
sp_overlay_dirs() {
  sp_opts=$(awk '$5 == "/" { for (i = 7; i <= NF; i++) if ($i == "-") { if ($(i+1) == "overlay") print $(i+3); exit } }' "$1" 2>/dev/null | tail -n1)
  [ -n "$sp_opts" ] || return 1
  sp_driver=overlay
  sp_upper=$(printf '%s\n' "$sp_opts" | tr ',' '\n' | sed -n 's/^upperdir=//p' | head -n1)
  sp_lower=$(printf '%s\n' "$sp_opts" | tr ',' '\n' | sed -n 's/^lowerdir+*=//p' | tr '\n' ':' | tr -s ':' | sed 's/^://; s/:$//')
  [ -n "$sp_upper" ]
}

# sp_mountpoint_of MOUNTINFO UPPER: where the host mounts the overlay with that upperdir
sp_mountpoint_of() {
  awk -v want="upperdir=$2" '{ for (i = 7; i <= NF; i++) if ($i == "-") { n = split($(i+3), o, ","); for (j = 1; j <= n; j++) if (o[j] == want) { print $5; exit } } }' "$1" 2>/dev/null
}

# sp_inspect KEY ENGINE NAME → FACTS record (or ERR; returns 1). Leaves sp_facts' variables set.
sp_inspect() {
  if ! sp_facts "$2" "$3"; then rec ERR "$1" "$sp_why"; return 1; fi
  rec FACTS "$1" "$sp_id" "$sp_state" "$sp_pid" "$sp_driver" "$sp_upper" "$sp_lower" "$sp_merged"
}

# sp_ns KEY ENGINE NAME → NS record: the full id, the main process, the inode of
# /proc/PID/ns/mnt (followed, like stat -L). Sets $sp_id $sp_pid $sp_ino. A container that is
# not running, or a pid or inode that is not a positive integer, is an ERR: an empty inode
# must never become map key 0.
sp_ns() {
  if ! sp_facts "$2" "$3"; then rec ERR "$1" "$sp_why"; return 1; fi
  if [ "$sp_state" != running ]; then rec ERR "$1" "container $3 is not running ($sp_state)"; return 1; fi
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
  case $sp_cid in *[!0-9a-f]*|'') rec ERR "$1" "engine gave no usable id: '$2'"; return 1 ;; esac
  if [ ${#sp_cid} -ne 12 ]; then rec ERR "$1" "engine gave no usable id: '$2'"; return 1; fi
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
