# sneakpeek.sh — what sneakpeek runs on a node, by type. The node only lists, installs and
# starts; everything that needs thought (the diff, the checks) happens on the operator side.
#
# Sent after lib/node-script.sh (rec, lastline, sp_lock, $sp_tmp), get_container_ns.sh (the
# engine: sp_facts, sp_inspect, sp_ns, sp_cid, sp_short), for the unit types also
# bpftool_map_container_ns.sh (maps, templates, env files, start/stop), and the config lines.
# Records (fields in lib/wire.ts): FACTS ENGINE F X R M DONE (files), WATCH INOTIFY (fswatch),
# PROG (tracers).

# ---- -t files / -t merged_dir ---------------------------------------------------------------

# sp_ident DIR…: each DIR's device:inode, one per line: who the layers are, to compare after a walk.
sp_ident() { for d in "$@"; do stat -c '%d:%i' -- "$d" 2>/dev/null || echo gone; done; }

# sp_still KEY ENGINE NAME ID: after a listing, the engine must still have container NAME with
# the same ID and not be removing it; else the listing may be short: ERR.
sp_still() {
  if ! sp_facts "$2" "$3"; then rec ERR "$1" "the container went away during the listing ($sp_why)"; return 1; fi
  if [ "$sp_id" != "$4" ]; then rec ERR "$1" "container $3 was replaced during the listing (now $sp_id)"; return 1; fi
  if [ "$sp_state" = removing ]; then rec ERR "$1" "the container was being removed during the listing"; return 1; fi
}

# sp_xattrs KEY DIR…: X records, the xattrs find cannot print (whiteouts, opaque dirs, caps).
sp_xattrs() {
  k=$1; shift
  if ! command -v getfattr >/dev/null 2>&1; then
    rec WARN "$k" "getfattr not found on this node (install the attr package): opaque directories, xattr whiteouts and file capabilities cannot be seen"
    return 0
  fi
  n=0; for d in "$@"; do
    printf 'X\t%s\t%s\t' "$k" "$n"
    ( cd "$d" && getfattr -R -P -d -e hex -m '^(trusted|user)\.overlay\.(opaque|whiteout)$|^security\.capability$' . 2>/dev/null )
    printf '\0'; n=$((n+1))
  done
}

# sp_layers KEY UPPER LOWER [ENGINE NAME ID]: list every layer (0 = UPPER, 1.. = LOWER's
# ':'-separated dirs, topmost first) as F records sorted together in tree order ('/' is swapped
# with \001 before `sort -z`, so a directory's contents follow it directly), after the X and R
# records the diff needs first. The whole listing is made and checked here before any of it is
# sent: the layers must be the same directories after the walk as before (and, when ENGINE is
# given, the engine must still have the same container), else it is an ERR, never a short list.
sp_layers() {
  k=$1 up=$2 lowers=$3 eng=${4-} name=${5-} id=${6-}
  if [ ! -d "$up" ]; then rec ERR "$k" "UpperDir $up: not found on this node (container removed?)"; return 1; fi
  if ! ( cd "$up" && ls -A >/dev/null ) 2>/dev/null; then rec ERR "$k" "UpperDir $up: permission denied (run as root, or set sudo: true)"; return 1; fi
  set -- "$up"
  set -f; oldifs=$IFS; IFS=:; for l in $lowers; do set -- "$@" "$l"; done; IFS=$oldifs; set +f
  for l in "$@"; do
    if [ ! -d "$l" ]; then rec ERR "$k" "LowerDir $l: not found on this node (image layer removed?)"; return 1; fi
  done
  t="$sp_tmp/$k"; mkdir "$t" || { rec ERR "$k" "cannot create $t"; return 1; }
  before=$(sp_ident "$@")
  # One find per layer lists every entry (F) and notes its devices (whose numbers find cannot
  # print); the xattr walk runs beside it on another core. A failed walk or sort is an ERR; a
  # file the container deletes while we walk is not a failure (-ignore_readdir_race).
  { sp_xattrs "$k" "$@" > "$t/x" &
    n=0; for d in "$@"; do
      ( cd "$d" && find . -ignore_readdir_race -printf "F\t$k\t$n\t%y\t%m\t%U\t%G\t%s\t%T@\t%P\0" \( -type c -o -type b \) -fprint0 "$t/dev$n" ) 2>>"$t/err" || echo "find failed in $d" >>"$t/err"
      n=$((n+1))
    done
    wait
  } | tr '/\001' '\001/' | sort -z -t "$TAB" -k10 -k3,3n > "$t/f" 2>>"$t/err" || echo "sort failed (is $sp_tmp full?)" >>"$t/err"
  gone=
  [ "$(sp_ident "$@")" = "$before" ] || gone=1
  if [ -s "$t/err" ] && [ -z "$gone" ]; then rec ERR "$k" "listing the layers failed: $(lastline "$(cat "$t/err")")"; rm -rf "$t"; return 1; fi
  n=0; for d in "$@"; do
    [ -s "$t/dev$n" ] && ( cd "$d" && xargs -0 stat --printf "R\t$k\t$n\t%t\t%T\t%n\0" < "$t/dev$n" ) >> "$t/x"
    n=$((n+1))
  done
  if [ -n "$gone" ] || [ "$(sp_ident "$@")" != "$before" ]; then rec ERR "$k" "the container's layers went away during the listing (container removed?)"; rm -rf "$t"; return 1; fi
  if [ -n "$eng" ] && ! sp_still "$k" "$eng" "$name" "$id"; then rm -rf "$t"; return 1; fi
  cat "$t/x" "$t/f"
  rm -rf "$t"
}

# sp_merged KEY MERGED [ENGINE NAME ID]: every path of the merged view (--all), checked the same way.
sp_merged() {
  k=$1 m=$2
  if [ -z "$m" ] || [ ! -d "$m" ]; then rec ERR "$k" "MergedDir ${m:-(none)}: not mounted (is the container running?)"; return 1; fi
  before=$(sp_ident "$m")
  if ! ( cd "$m" && find . -ignore_readdir_race -mindepth 1 -printf "M\t$k\t%P\0" ) 2>"$sp_tmp/err" | tr '/\001' '\001/' | sort -z -t "$TAB" -k3 > "$sp_tmp/m$k" || [ -s "$sp_tmp/err" ]; then
    rec ERR "$k" "listing $m failed: $(sp_err)"; return 1
  fi
  if [ "$(sp_ident "$m")" != "$before" ]; then rec ERR "$k" "the merged root went away during the listing (container stopped or removed?)"; return 1; fi
  if [ -n "${3-}" ] && ! sp_still "$k" "$3" "$4" "$5"; then return 1; fi
  cat "$sp_tmp/m$k"; rm -f "$sp_tmp/m$k"
}

# sp_podman_diff → $sp_pdiff: which diff this node's podman storage makes, native (containers/
# storage's overlay walk) or naive (a tree diff, as docker's); asked once per run.
sp_podman_diff() {
  [ -z "${sp_pdiff-}" ] || return 0
  sp_pdiff=native
  if sp_q "$SP_PODMAN" info --format '{{index .Store.GraphStatus "Native Overlay Diff"}}'; then
    case $out in false) sp_pdiff=naive ;; esac
  fi
}

# sp_mergedroot KEY ENGINE NAME: -t merged_dir: the engine's facts (FACTS) of a container whose
# root is mounted (running or paused); a stopped one has none: ERR.
sp_mergedroot() {
  if ! sp_facts "$2" "$3"; then rec ERR "$1" "$sp_why"; return 1; fi
  case $sp_state in running|paused) ;; *) rec ERR "$1" "container $3 is $sp_state: its root is not mounted"; return 1 ;; esac
  if [ ! -d "$sp_merged" ]; then rec ERR "$1" "container $3: its merged root ${sp_merged:-(none)} is not mounted"; return 1; fi
  sp_factsrec "$1" "$3"
}

# sp_list KEY ENGINE NAME ALL(0|1): ask the engine, then list its layers (or, with ALL, the
# merged view) → FACTS, ENGINE (whose diff the lines follow), the listing, DONE.
sp_list() {
  sp_inspect "$1" "$2" "$3" || return 1
  sp_pdiff_of=
  if [ "$sp_engine" = podman ]; then sp_podman_diff; sp_pdiff_of=$sp_pdiff; fi
  rec ENGINE "$1" "$sp_engine" "$sp_pdiff_of"
  case $sp_driver in overlay|overlay2) ;; *) return 0 ;; esac   # the operator side names the driver
  if [ "$4" = 1 ]; then sp_merged "$1" "$sp_merged" "$2" "$3" "$sp_id" && rec DONE "$1"
  else sp_layers "$1" "$sp_upper" "$sp_lower" "$2" "$3" "$sp_id" && rec DONE "$1"; fi
}

# ---- -t fswatch ----------------------------------------------------------------------------

# sp_inotify: the node's inotify limits (fswatch instances share root's) → INOTIFY record.
sp_inotify() {
  rec INOTIFY - "$(cat /proc/sys/fs/inotify/max_user_watches 2>/dev/null)" "$(cat /proc/sys/fs/inotify/max_user_instances 2>/dev/null)"
}

# sp_fswatch_dirs KEY MAX: after sp_facts, check the UpperDir and collect what fswatch watches:
# the UpperDir, plus up to MAX image directories (shallowest first) mapped into it as extra
# roots (fswatch starts watching a copied-up directory only through them; lib/fswatch-unit.ts)
# → $sp_imgdirs, WATCH record. Returns 1 after ERR.
sp_fswatch_dirs() {
  case $sp_driver in overlay|overlay2) ;; *) rec ERR "$1" "storage driver '$sp_driver' is not overlay/overlay2: no UpperDir to watch"; return 1 ;; esac
  case $sp_upper in /*) ;; *) rec ERR "$1" "engine gave no UpperDir"; return 1 ;; esac
  case $sp_upper in *[!A-Za-z0-9._+@:,=/-]*) rec ERR "$1" "UpperDir '$sp_upper' has characters a unit env file cannot hold"; return 1 ;; esac
  # the unit runs with PrivateTmp=yes: there, /tmp and /var/tmp are empty, and fswatch would watch nothing
  case $sp_upper in /tmp/*|/var/tmp/*) rec ERR "$1" "UpperDir $sp_upper is under /tmp or /var/tmp, which fswatch@.service cannot see (PrivateTmp=yes)"; return 1 ;; esac
  if [ ! -d "$sp_upper" ]; then rec ERR "$1" "UpperDir $sp_upper: not found on this node (container removed?)"; return 1; fi
  dirs=$(find "$sp_upper" -xdev -type d 2>/dev/null | wc -l | tr -d ' ')
  sp_imgdirs=
  n=0
  if [ "$2" -gt 0 ]; then
    sp_imgdirs=$(
      oldifs=$IFS; IFS=:; set -f
      for l in $sp_lower; do [ -d "$l" ] && find "$l" -mindepth 1 -xdev -type d -printf '%d %P\n' 2>/dev/null; done
      IFS=$oldifs
    )
    sp_imgdirs=$(printf '%s\n' "$sp_imgdirs" | grep -E '^[0-9]+ [A-Za-z0-9._+@:,=/-]+$' | sort -n -k1,1 -k2 | awk '!seen[$2]++ { print $2 }' | head -n "$2" | sed "s|^|$sp_upper/|" | tr '\n' ' ' | sed 's/ $//')
    n=$(printf '%s' "$sp_imgdirs" | wc -w | tr -d ' ')
  fi
  rec WATCH "$1" "$sp_upper" "$dirs" "$n"
}

# sp_fswatch KEY ENGINE NAME MAX ENVDIR: one container's fswatch@<ID> env file.
sp_fswatch() {
  sp_tplok "$1" fswatch || return 1
  sp_inspect "$1" "$2" "$3" && sp_fswatch_env "$@"
}

# sp_fswatch_env KEY ENGINE NAME MAX ENVDIR: the same once sp_facts has answered (--reconcile
# asks the engine itself). The env file names the engine, for --status and --reconcile later.
sp_fswatch_env() {
  sp_short "$1" "$sp_id" && sp_fswatch_dirs "$1" "$4" &&
    sp_env "$1" fswatch "$sp_cid" "$5" "SNEAKPEEK_CONTAINER=$sp_cid" "SNEAKPEEK_WATCH_DIR=$sp_upper" "SNEAKPEEK_IMAGE_DIRS=$sp_imgdirs" "SNEAKPEEK_ENGINE=$2"
}

# sp_fswatch_known KEY ID UPPER LOWER DRIVER MAX ENVDIR: the same from an inspect file (-f).
sp_fswatch_known() {
  sp_tplok "$1" fswatch || return 1
  sp_cid=$2 sp_upper=$3 sp_lower=$4 sp_driver=$5
  sp_fswatch_dirs "$1" "$6" &&
    sp_env "$1" fswatch "$sp_cid" "$7" "SNEAKPEEK_CONTAINER=$sp_cid" "SNEAKPEEK_WATCH_DIR=$sp_upper" "SNEAKPEEK_IMAGE_DIRS=$sp_imgdirs"
}

# ---- -t procmon / -t tcptracer --------------------------------------------------------------

# sp_program TOOL FILE TEXT: install the bpftrace program when missing or changed → PROG record;
# a change restarts the instances set up in this run, like a template change.
sp_program() {
  eval "why=\${sp_tpl_$1-}"
  [ -z "$why" ] || return 0
  d=$(dirname -- "$2")
  if ! mkdir -p -- "$d" 2>/dev/null; then eval "sp_tpl_$1=\"cannot create \$d\""; return 0; fi
  if ! sp_put "$2" "$3" 0644; then eval "sp_tpl_$1=\"cannot install \$2: \$sp_err\""; return 0; fi
  rec PROG - "$2" "$sp_put"
  [ "$sp_put" = unchanged ] || eval "sp_tch_$1=1"
}

# sp_program_purge TOOL FILE TEMPLATE ENVROOT: the program goes with its template.
sp_program_purge() {
  if [ ! -e "$3" ] && [ -e "$2" ]; then
    if out=$(rm -f -- "$2" 2>&1); then rec PROG - "$2" removed; else rec WARN - "cannot remove $2: $(lastline "$out")"; fi
  fi
  rmdir -- "$(dirname -- "$2")" 2>/dev/null
  rmdir -- "$4" 2>/dev/null
  :
}

# sp_tracer KEY ENGINE NAME TOOL BACKEND MAPDIR ENVDIR: one container's tracer instance: its
# template is usable, its mount namespace (NS), its map holding exactly that inode (MAP), the
# env file of TOOL@<ID>. The map <MAPDIR>/mnt_ns_<ID> is named ns_<ID> (the kernel's 15 chars).
sp_tracer() {
  sp_tplok "$1" "$4" || return 1
  sp_ns "$1" "$2" "$3" || return 1
  sp_tracer_env "$@"
}

# sp_tracer_env KEY ENGINE NAME TOOL BACKEND MAPDIR ENVDIR: the same once sp_ns has answered
# ($sp_id, $sp_ino): the new key is added to the map before any other is removed. The env file
# names the engine, for --status and --reconcile later.
sp_tracer_env() {
  sp_short "$1" "$sp_id" || return 1
  sp_mapf="$6/mnt_ns_$sp_cid"
  sp_map "$1" "$sp_mapf" "ns_$sp_cid" "$sp_ino" 1 &&
    sp_env "$1" "$4" "$sp_cid" "$7" "SNEAKPEEK_CONTAINER=$sp_cid" "SNEAKPEEK_BACKEND=$5" "SNEAKPEEK_MNTNS_MAP=$sp_mapf" "SNEAKPEEK_MNTNS_INODE=$sp_ino" "SNEAKPEEK_ENGINE=$2"
}

# sp_tracer_stop KEY ENGINE NAME TOOL MAPDIR ENVDIR OTHERENVDIR: stop TOOL@<ID>, remove its env
# file, and its map unless the other tool's instance of the same container is still configured.
sp_tracer_stop() {
  sp_cid "$1" "$2" "$3" || return 1
  sp_stop "$1" "$4" "$sp_cid" "$6" && sp_unmap "$1" "$5/mnt_ns_$sp_cid" "$7/$sp_cid.env"
}
