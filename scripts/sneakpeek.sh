# sneakpeek.sh — what sneakpeek runs on a node, by type. The node only lists, installs and
# starts; everything that needs thought (the diff, the checks) happens on the operator side.
#
# Sent after lib/node-script.sh (rec, lastline, sp_lock, $sp_tmp), get_container_ns.sh (the
# engine: sp_facts, sp_inspect, sp_ns, sp_cid, sp_short), for the unit types also
# bpftool_map_container_ns.sh (maps, templates, env files, start/stop), and the config lines.
# Records (fields in lib/wire.ts): FACTS ENGINE F X R M DONE (files), WATCH INOTIFY (fswatch),
# PROG (tracers), INST GONE MAPKEYS LASTLOG (--status, --reconcile).

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

# The xattrs the diff needs and find cannot print: whiteouts, opaque directories, capabilities.
sp_xre='^(trusted|user)\.overlay\.(opaque|whiteout)$|^security\.capability$'

# sp_layers KEY UPPER LOWER [ENGINE NAME ID]: what the diff needs of the container's layers, as
# records: X (xattrs) and R (device numbers) first, then F (entries) sorted together in tree order
# ('/' is swapped with \001 before `sort -z`, so a directory's contents follow it directly).
# Every path on the wire is NNN/PATH, PATH in layer NNN (000 = UPPER, 001.. = LOWER's
# ':'-separated dirs, topmost first), read through a link $t/l/NNN to the layer.
#
# The cost follows the container's changes, not its image. The UPPER dir is listed whole; of the
# lower layers only the directories that the UPPER dir has too (those the container wrote in, and
# their parents), one level deep each: what decides A, C or D for every UPPER entry, and which
# image entries an opaque directory hides. They are walked level by level from the layer roots,
# each level's directories, of every layer, batched into one find: a directory is entered only when
# the level above listed it as a directory of the same layer (not a symlink, a file or a
# whiteout), so the walk never leaves the layer. `--all` (sp_merged) still lists everything.
#
# The whole listing is made and checked here before any of it is sent: the layers must be the
# same directories after the walk as before (and, when ENGINE is given, the engine must still have
# the same container), else it is an ERR, never a short list.
sp_layers() {
  k=$1 up=$2 lowers=$3 eng=${4-} name=${5-} id=${6-}
  if [ ! -d "$up" ]; then rec ERR "$k" "UpperDir $up: not found on this node (container removed?)"; return 1; fi
  if ! ( cd "$up" && ls -A >/dev/null ) 2>/dev/null; then rec ERR "$k" "UpperDir $up: permission denied (run as root, or set sudo: true)"; return 1; fi
  set -- "$up"
  set -f; oldifs=$IFS; IFS=:; for l in $lowers; do set -- "$@" "$l"; done; IFS=$oldifs; set +f
  for l in "$@"; do
    if [ ! -d "$l" ]; then rec ERR "$k" "LowerDir $l: not found on this node (image layer removed?)"; return 1; fi
  done
  if [ $# -gt 1000 ]; then rec ERR "$k" "$# layers: more than sneakpeek lists (1000)"; return 1; fi
  t="$sp_tmp/$k"; mkdir "$t" "$t/l" || { rec ERR "$k" "cannot create $t"; return 1; }
  # The layer links; the lower roots, where the walk starts ($t/s0); a sed program that makes the
  # walk's candidates: each UPPER directory as a directory of every lower layer ($t/c).
  n=0; cand=; : > "$t/s0"
  for d in "$@"; do
    case $d in /*) ;; *) d=$PWD/$d ;; esac
    l=00$n; l=${l#"${l%???}"}   # 3 digits
    ln -s -- "$d" "$t/l/$l" || { rec ERR "$k" "cannot create $t/l/$l"; rm -rf "$t"; return 1; }
    if [ "$n" -gt 0 ]; then printf '%s/\0' "$l" >> "$t/s0"; cand="${cand}g;s|^|$l/|p;"; fi
    n=$((n+1))
  done
  before=$(sp_ident "$@")
  fmt="F\t$k\t%y\t%m\t%U\t%G\t%s\t%T@\t%p\0"
  sp_gf=; command -v getfattr >/dev/null 2>&1 && sp_gf=1
  # A failed walk, candidates or sort is an ERR; a file the container deletes while we walk is
  # not a failure (-ignore_readdir_race).
  ( cd "$t/l" || exit 1
    # The UPPER dir, whole: entries (F), directories, devices, empty files (maybe xattr whiteouts).
    find 000/ -ignore_readdir_race -printf "$fmt" \( -type d -fprint0 "$t/ud" -o \( -type c -o -type b \) -fprint0 "$t/v.u" -o -type f -size 0 -fprint0 "$t/a.e" \) > "$t/f.u" || echo "find failed in $up" >&2
    if [ -n "$cand" ]; then
      sed -z -n "s|^000/||;/^\$/d;h;$cand" "$t/ud" | sort -z > "$t/c" || echo "listing the upper directories failed" >&2
      # Level by level: list this level's directories (the roots: themselves too), then keep
      # those of their subdirectories that are candidates. Per batch of directories, one find
      # writes entries (stdout), subdirectories (.d), devices (.v) and what getfattr reads (.a).
      lv=0 min=0
      while [ -s "$t/s$lv" ]; do
        xargs -0 sh -c 'm=$1 f=$2 o=$3.$$; shift 3; exec find "$@" -ignore_readdir_race -mindepth "$m" -maxdepth 1 -printf "$f" \( -type d -fprint0 "$o.d" -o \( -type c -o -type b \) -fprint0 "$o.v" \) , \( -type d -o -type f \) -fprint0 "$o.a"' \
          sh "$min" "$fmt" "$t/o$lv" < "$t/s$lv" >> "$t/f.l" || echo "find failed in a lower layer" >&2
        sort -z "$t/o$lv".*.d | comm -z -12 - "$t/c" > "$t/s$((lv+1))" || echo "comm failed" >&2
        lv=$((lv+1)) min=1
      done
    fi
    # xattrs: of every lower entry listed, of the UPPER entry of the same path (all the UPPER
    # xattrs that can matter: opaque where the image has a directory, capabilities where it has
    # a file; an UPPER path that is not there is skipped), and of the UPPER's empty files.
    if [ -n "$sp_gf" ]; then
      { printf 'X\t%s\t' "$k"
        { cat "$t/a.e" "$t"/o*.a; sed -z 's|^[0-9]*/|000/|' "$t"/o*.a; } 2>/dev/null |
          xargs -0 -r getfattr -P -d -e hex -m "$sp_xre" -- 2>/dev/null
        printf '\0'; } > "$t/x"
    fi
    cat "$t/v.u" "$t"/o*.v 2>/dev/null | xargs -0 -r stat --printf "R\t$k\t%t\t%T\t%n\0" > "$t/r" || echo "stat failed" >&2
    cat "$t/f.u" "$t/f.l" 2>/dev/null | tr '/\001' '\001/' | sort -z -t "$TAB" -k9.5 -k9.1,9.3 > "$t/f" || echo "sort failed (is $sp_tmp full?)" >&2
  ) 2>>"$t/err"
  # Layers that went away mid-walk, or a container the engine is removing, explain a failed
  # find: say that, not the find's complaint.
  if [ "$(sp_ident "$@")" != "$before" ]; then rec ERR "$k" "the container's layers went away during the listing (container removed?)"; rm -rf "$t"; return 1; fi
  if [ -s "$t/err" ]; then
    if [ -z "$eng" ] || sp_still "$k" "$eng" "$name" "$id"; then rec ERR "$k" "listing the layers failed: $(lastline "$(cat "$t/err")")"; fi
    rm -rf "$t"; return 1
  fi
  if [ -z "$sp_gf" ]; then
    rec WARN "$k" "getfattr not found on this node (install the attr package): opaque directories, xattr whiteouts and file capabilities cannot be seen"
  fi
  if [ -n "$eng" ] && ! sp_still "$k" "$eng" "$name" "$id"; then rm -rf "$t"; return 1; fi
  cat "$t/x" "$t/r" "$t/f" 2>/dev/null
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

# ---- --status / --reconcile (-t fswatch|procmon|tcptracer) ------------------------------------
# Every instance of ours on this node is found here, from its env file AND from systemd (a unit
# left loaded without its env file, or an env file whose unit is not loaded, both show), and
# held against what the engine says of its container NOW: the mount-namespace inode of its main
# process (a stopped container has none; a started one gets a new one, and inodes are recycled:
# another container may hold its old one), or its UpperDir. Nothing here decides: the records go
# back and the operator side judges (lib/lifecycle.ts). An instance's records have the key
# i<ID>; a selected container's, its number in this run, as in every other type.
# Records: INST, UNITSTART, GONE, MAPKEYS, LASTLOG (and FACTS, NS; with --reconcile the setup's too).
# Shell state: $sp_lc_units (systemd's view), $sp_lc_seen (ids already dealt with), $sp_lc_only
# (ids sp_lc_saw left to sp_lc_rest), $sp_lc_keys (instances sp_lc_rest set up, to start).
sp_lc_units= sp_lc_seen= sp_lc_only= sp_lc_keys=

# sp_lc_units TOOL: what systemd has loaded of TOOL@*.service, once → $sp_lc_units, a line
# "ID LOAD ACTIVE SUB" per instance.
sp_lc_units() {
  sp_lc_units=$(systemctl list-units --all --plain --no-legend --full "$1@*.service" 2>/dev/null |
    awk -v p="$1@" '{ u = ($1 ~ /@/) ? $1 : $2; o = ($1 ~ /@/) ? 0 : 1
      if (index(u, p) != 1 || length(u) != length(p) + 20 || substr(u, length(p) + 13) != ".service") next
      id = substr(u, length(p) + 1, 12); if (id ~ /[^0-9a-f]/) next
      print id, $(2 + o), $(3 + o), $(4 + o) }')
}

# sp_lc_ours FILE: FILE is an env file sneakpeek wrote: a regular file (not a symbolic link) whose
# first line is $SP_HEADER. Anything else in the env dir is not ours: never read as an instance's,
# never removed (sp_lc_alien says why).
sp_lc_ours() { [ -f "$1" ] && [ ! -L "$1" ] && [ "$(head -c 512 -- "$1" 2>/dev/null | head -n 1)" = "$SP_HEADER" ]; }
sp_lc_alien() {
  if [ -L "$1" ]; then echo 'a symbolic link'; elif [ ! -f "$1" ]; then echo 'not a regular file'; else echo 'no managed-by first line'; fi
}

# sp_lc_aliens ENVDIR: a WARN for each *.env there that sneakpeek did not write.
sp_lc_aliens() {
  for sp_lc_f in "$1"/*.env; do
    { [ -e "$sp_lc_f" ] || [ -L "$sp_lc_f" ]; } || continue
    sp_lc_ours "$sp_lc_f" || rec WARN - "$sp_lc_f: not written by sneakpeek ($(sp_lc_alien "$sp_lc_f")): left alone"
  done
}

# sp_lc_ids TOOL ENVDIR: TOOL's instance ids on this node, one a line: env files of ours, and units
# that are not inactive (a stopped unit systemd still has loaded, with no env file, is nothing).
sp_lc_ids() {
  { for sp_lc_f in "$2"/*.env; do sp_lc_ours "$sp_lc_f" && basename -- "$sp_lc_f" .env; done
    printf '%s\n' "$sp_lc_units" | awk 'NF && $3 != "inactive" { print $1 }'
  } | grep -xE '[0-9a-f]{12}' | sort -u
}

# sp_lc_envval FILE NAME: NAME's value in env FILE ('' when it has none: env files written before
# a key existed stay readable; '' for a file that is not ours).
sp_lc_envval() { sp_lc_ours "$1" && sed -n "s/^$2=//p" "$1" 2>/dev/null | tail -n 1; }

# sp_lc_inst KEY TOOL ID ENVDIR: instance ID as systemd and its env file have it → INST (its env
# file's text last, its first 64 KiB; HASENV 0 and no text when there is none, or it is not ours).
# Sets $sp_lc_active.
sp_lc_inst() {
  sp_lc_st=$(printf '%s\n' "$sp_lc_units" | awk -v id="$3" '$1 == id { print $2, $3, $4; exit }')
  [ -n "$sp_lc_st" ] || sp_lc_st='- inactive dead'
  sp_lc_load=${sp_lc_st%% *} sp_lc_sub=${sp_lc_st##* }
  sp_lc_active=${sp_lc_st#* }; sp_lc_active=${sp_lc_active%% *}
  if sp_lc_ours "$4/$3.env"; then
    rec INST "$1" "$2" "$3" "$sp_lc_load" "$sp_lc_active" "$sp_lc_sub" 1 "$(head -c 65536 -- "$4/$3.env" 2>/dev/null)"
    [ "$sp_lc_active" != active ] || rec UNITSTART "$1" "$(sp_lc_started "$2@$3.service")" "$(sp_lc_mtime "$4/$3.env")"
  else
    rec INST "$1" "$2" "$3" "$sp_lc_load" "$sp_lc_active" "$sp_lc_sub" 0 ''
  fi
}

# sp_lc_started UNIT / sp_lc_mtime FILE: when UNIT's main process started / FILE was last
# written, in microseconds since the epoch ('' when unknown).
sp_lc_started() {
  sp_lc_t=$(systemctl show -p ExecMainStartTimestamp --value --timestamp=us+utc "$1" 2>/dev/null)
  [ -z "$sp_lc_t" ] || date -u -d "$sp_lc_t" +%s%6N 2>/dev/null
}
sp_lc_mtime() { stat -c %.6Y -- "$1" 2>/dev/null | tr -d .; }

# sp_lc_fresh KEY ENVDIR (--reconcile, after a setup step): an instance that runs, whose env file
# this run did not change but that was written after the unit started (a run that wrote it was
# ended, by its deadline or Ctrl-C, before it restarted the unit), is restarted too: a running
# bpftrace or fswatch has its inode or UpperDir from the env file it started with.
sp_lc_fresh() {
  eval "sp_lc_u=\${sp_u_$1-}"
  [ -n "$sp_lc_u" ] && [ "${sp_lc_u#* }" = 0 ] || return 0
  sp_lc_u=${sp_lc_u% *}
  systemctl is-active --quiet "$sp_lc_u" || return 0
  sp_lc_i=${sp_lc_u#*@}; sp_lc_i=${sp_lc_i%.service}
  sp_lc_s=$(sp_lc_started "$sp_lc_u") sp_lc_m=$(sp_lc_mtime "$2/$sp_lc_i.env")
  case $sp_lc_s$sp_lc_m in ''|*[!0-9]*) return 0 ;; esac
  [ -n "$sp_lc_s" ] && [ -n "$sp_lc_m" ] && [ "$sp_lc_m" -gt "$sp_lc_s" ] || return 0
  eval "sp_u_$1=\"\$sp_lc_u 1\""
}

# sp_lc_gone WHY: the engine's answer says there is no such container. Only that: a daemon that is
# down or a CLI that is missing ('docker: not found') must never make an instance an orphan.
sp_lc_gone() {
  case $1 in
    *'No such container'*|*'no such container'*|*'code = NotFound'*|*'container "'*'": not found'*) return 0 ;;
    "ctr: no container '"*"' in namespace "*) return 0 ;;   # sp_facts_ctr's own words
  esac
  return 1
}

# sp_lc_ctr KEY ENGINE NAME: the container now → FACTS and, while it runs, NS (sets $sp_ino); or
# GONE (GONE 1: the engine says there is no such container; 0: it did not answer) and return 1.
sp_lc_ctr() {
  sp_ino=
  if ! sp_facts "$2" "$3"; then
    if sp_lc_gone "$sp_why"; then rec GONE "$1" "$2" 1 "$sp_why"; else rec GONE "$1" "$2" 0 "$sp_why"; fi
    return 1
  fi
  rec FACTS "$1" "$sp_id" "$sp_state" "$sp_pid" "$sp_driver" "$sp_upper" "$sp_lower" "$sp_merged"
  [ "$sp_state" = running ] || return 0
  case $sp_pid in ''|0|*[!0-9]*) return 0 ;; esac
  sp_ino=$(stat -Lc %i "/proc/$sp_pid/ns/mnt" 2>/dev/null) || { sp_ino=; return 0; }
  rec NS "$1" "$sp_id" "$sp_pid" "$sp_ino"
}

# sp_lc_map KEY FILE: the keys of the pinned map FILE, read only → MAPKEYS (present | absent |
# error; bpftool -j's dump, decoded on the operator side in this node's byte order).
sp_lc_map() {
  if [ ! -e "$2" ]; then rec MAPKEYS "$1" "$2" absent - ''; return 0; fi
  if [ "$(printf '\001\000' | od -An -tu2 | tr -d ' ')" = 1 ]; then sp_lc_o=little; else sp_lc_o=big; fi
  if out=$("$SP_BPFTOOL" -j map dump pinned "$2" 2>&1); then
    rec MAPKEYS "$1" "$2" present "$sp_lc_o" "$(printf '%s' "$out" | tr '\t\n' '  ')"
  else
    sp_bpferr "$out"; rec MAPKEYS "$1" "$2" error "$sp_lc_o" "$sp_bpferr"
  fi
}

# sp_lc_lastlog KEY UNIT LOGFILE: the unit's last log line (LOGFILE with log.target file, else the
# journal's) → LASTLOG.
sp_lc_lastlog() {
  if [ -n "$3" ]; then out=$(tail -n 20 -- "$3" 2>/dev/null)
  else out=$(journalctl -u "$2" -n 20 -o cat --no-pager -q 2>/dev/null); fi
  rec LASTLOG "$1" "$(lastline "$out" | cut -c1-400)"
}

# sp_lc_look KEY TOOL ID ENVDIR MAPDIR LOGDIR: instance ID → INST; for a tracer (MAPDIR given) its
# map's keys; when its unit is not active, its last log line.
sp_lc_look() {
  sp_lc_inst "$1" "$2" "$3" "$4"
  [ -z "$5" ] || sp_lc_map "$1" "$5/mnt_ns_$3"
  if [ "$sp_lc_active" != active ]; then
    if [ -n "$6" ]; then sp_lc_lastlog "$1" "$2@$3.service" "$6/$2-$3.log"; else sp_lc_lastlog "$1" "$2@$3.service" ''; fi
  fi
}

# sp_lc_status KEY ENGINE NAME TOOL ENVDIR MAPDIR LOGDIR (--status): a selected container (FACTS,
# NS; GONE when the engine does not know it) and its instance, if it has one (key i<ID>).
sp_lc_status() {
  sp_lc_ctr "$1" "$2" "$3" || return 1
  sp_short "$1" "$sp_id" || return 1
  sp_lc_seen="$sp_lc_seen $sp_cid"
  sp_lc_look "i$sp_cid" "$4" "$sp_cid" "$5" "$6" "$7"
}

# sp_lc_others TOOL ENVDIR MAPDIR LOGDIR ENGINE (--status): every other instance on this node,
# its container asked of the engine its env file names (else ENGINE).
sp_lc_others() {
  sp_lc_aliens "$2"
  for sp_lc_id in $(sp_lc_ids "$1" "$2"); do
    case " $sp_lc_seen " in *" $sp_lc_id "*) continue ;; esac
    sp_lc_eng=$(sp_lc_envval "$2/$sp_lc_id.env" SNEAKPEEK_ENGINE); [ -n "$sp_lc_eng" ] || sp_lc_eng=$5
    sp_lc_ctr "i$sp_lc_id" "$sp_lc_eng" "$sp_lc_id"
    sp_lc_look "i$sp_lc_id" "$1" "$sp_lc_id" "$2" "$3" "$4"
  done
}

# sp_lc_before TOOL ENVDIR (--reconcile): every instance as it is before this run changes
# anything → INST i<ID>.
sp_lc_before() {
  for sp_lc_id in $(sp_lc_ids "$1" "$2"); do sp_lc_inst "i$sp_lc_id" "$1" "$sp_lc_id" "$2"; done
}

# sp_lc_saw (--reconcile, after a selected container's setup step, which began with
# `sp_cid= sp_id=`): its instance is dealt with. One the engine knows but that could not be set up
# (a tracer's container that is not running) is left to sp_lc_rest, which removes it.
sp_lc_saw() {
  if [ -n "$sp_cid" ]; then sp_lc_seen="$sp_lc_seen $sp_cid"
  elif [ -n "$sp_id" ]; then sp_lc_only="$sp_lc_only $(printf '%s' "$sp_id" | cut -c1-12)"; fi
}

# sp_lc_drop KEY TOOL ID MAPDIR ENVDIR OTHERENVDIR: stop instance ID and remove its env file, and
# for a tracer (MAPDIR given) its map unless the other tool's instance still uses it → OK, MAPGONE.
sp_lc_drop() {
  sp_stop "$1" "$2" "$3" "$5" || return 1
  [ -z "$4" ] || sp_unmap "$1" "$4/mnt_ns_$3" "$6/$3.env"
}

# sp_lc_rest MODE TOOL ENVDIR ENGINE BACKEND|MAX MAPDIR OTHERENVDIR (--reconcile): the node's other
# instances (MODE all: every one no selected container has; only: those sp_lc_saw left), each by
# what its engine says now. No such container → stopped and removed. A tracer whose container is
# not running → the same: its namespace is gone, and its inode may soon name another container.
# Running → set up again like a selected container (the new key added to the map before the old
# one is removed; sp_lc_start restarts it when anything changed). An engine that does not answer
# → ERR, left alone. Keys i<ID>. TOOL fswatch takes MAX (fswatch.imageDirs) and no MAPDIR.
sp_lc_rest() {
  sp_lc_all=$(sp_lc_ids "$2" "$3")
  if [ "$1" = all ]; then sp_lc_todo=$sp_lc_all; sp_lc_aliens "$3"; else sp_lc_todo=$sp_lc_only; fi
  for sp_lc_id in $sp_lc_todo; do
    case " $sp_lc_seen " in *" $sp_lc_id "*) continue ;; esac
    case " $(printf '%s' "$sp_lc_all" | tr '\n' ' ') " in *" $sp_lc_id "*) ;; *) continue ;; esac
    sp_lc_seen="$sp_lc_seen $sp_lc_id"
    sp_lc_k=i$sp_lc_id
    # (a unit still running whose env file is not ours: neither is removed nor rewritten)
    if { [ -e "$3/$sp_lc_id.env" ] || [ -L "$3/$sp_lc_id.env" ]; } && ! sp_lc_ours "$3/$sp_lc_id.env"; then
      rec ERR "$sp_lc_k" "left as it is: $3/$sp_lc_id.env was not written by sneakpeek ($(sp_lc_alien "$3/$sp_lc_id.env"))"; continue
    fi
    sp_lc_eng=$(sp_lc_envval "$3/$sp_lc_id.env" SNEAKPEEK_ENGINE); [ -n "$sp_lc_eng" ] || sp_lc_eng=$4
    if ! sp_lc_ctr "$sp_lc_k" "$sp_lc_eng" "$sp_lc_id"; then
      if sp_lc_gone "$sp_why"; then sp_lc_drop "$sp_lc_k" "$2" "$sp_lc_id" "$6" "$3" "$7"
      else rec ERR "$sp_lc_k" "left as it is: $sp_lc_eng did not answer: $sp_why"; fi
      continue
    fi
    if [ -n "$6" ] && [ "$sp_state" != running ]; then
      sp_lc_drop "$sp_lc_k" "$2" "$sp_lc_id" "$6" "$3" "$7"
      continue
    fi
    if [ -n "$6" ] && [ -z "$sp_ino" ]; then rec ERR "$sp_lc_k" "cannot read the mount namespace of container $sp_lc_id (pid '$sp_pid')"; continue; fi
    sp_tplok "$sp_lc_k" "$2" || continue
    if [ -n "$6" ]; then
      sp_tracer_env "$sp_lc_k" "$sp_lc_eng" "$sp_lc_id" "$2" "$5" "$6" "$3" || continue
    else
      sp_fswatch_env "$sp_lc_k" "$sp_lc_eng" "$sp_lc_id" "$5" "$3" || continue
    fi
    sp_lc_fresh "$sp_lc_k" "$3"
    sp_lc_keys="$sp_lc_keys $sp_lc_k"
  done
}

# sp_lc_start / sp_lc_settle KEY… (--reconcile): sp_start / sp_settle for what sp_lc_rest set up too.
sp_lc_start() { for sp_lc_k in $sp_lc_keys; do sp_start "$sp_lc_k"; done; }
sp_lc_settle() { sp_settle "$@" $sp_lc_keys; }
