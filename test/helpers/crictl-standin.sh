#!/bin/sh
# crictl-standin.sh: a stand-in for crictl in tests (crictl is not in Debian's archive).
# It answers the crictl calls sneakpeek makes from a live engine's real state:
# `crictl inspect [-o json] [--] ID` and `crictl ps -a -q [--id ID]`. The pid and state are the
# real ones, so sneakpeek's mountinfo layer discovery runs on real mounts. Two backends:
#   ctr     containerd's CRI, from `ctr` against a live containerd: status first, then info
#           with pid, snapshotKey, snapshotter, runtimeSpec (containerd's CRI order)
#   podman  CRI-O's shape (info: sandboxID, pid, runtimeSpec, privileged) from a podman
#           container: the same containers/storage overlay layout CRI-O uses
# As with both CRIs, a paused container reports CONTAINER_RUNNING, and a unique id prefix is
# resolved.
#
# Config (environment; test/helpers/crictl-standin.ts writes a wrapper that sets them):
#   SP_STANDIN_BACKEND    ctr (default) | podman
#   SP_STANDIN_ADDRESS    containerd socket (ctr)   SP_STANDIN_NAMESPACE  default k8s.io
#   SP_STANDIN_CTR        ctr binary, default ctr   SP_STANDIN_PODMAN     default podman
set -u
backend=${SP_STANDIN_BACKEND:-ctr}
ns=${SP_STANDIN_NAMESPACE:-k8s.io}
ctr_() { "${SP_STANDIN_CTR:-ctr}" -a "${SP_STANDIN_ADDRESS:?crictl stand-in: SP_STANDIN_ADDRESS not set}" -n "$ns" "$@"; }
podman_() { "${SP_STANDIN_PODMAN:-podman}" "$@" 2>/dev/null; }
fatal() { printf 'time="%s" level=fatal msg="%s"\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; exit 1; }
notfound() { fatal "getting the status of the container \\\"$1\\\": rpc error: code = NotFound desc = could not find container \\\"$1\\\""; }

ids() { if [ "$backend" = podman ]; then podman_ ps -a -q --no-trunc; else ctr_ containers ls -q; fi; }

# resolve ID: the one container whose id is ID or starts with it (as the CRI's id index does)
resolve() {
  case $1 in ''|*[!A-Za-z0-9._-]*) return 1 ;; esac
  r='' n=0
  for c in $(ids); do
    [ "$c" = "$1" ] && { printf '%s\n' "$c"; return 0; }
    case $c in "$1"*) r=$c; n=$((n + 1)) ;; esac
  done
  [ "$n" -eq 1 ] && printf '%s\n' "$r"
}

# topval KEY < ctr-json: the value of a top-level key of ctr's JSON (indented 4 spaces)
topval() {
  awk -v k="    \"$1\": " '
    index($0, k) == 1 {
      v = substr($0, length(k) + 1)
      if (v ~ /[[{]$/) { blk = 1; print v; next }
      sub(/,$/, "", v); print v; exit
    }
    blk { if ($0 ~ /^    []}],?$/) { sub(/,$/, ""); print; exit } print }'
}

inspect_ctr() {
  id=$(resolve "$1") || true
  [ -n "$id" ] || notfound "$1"
  info=$(ctr_ containers info -- "$id") || exit 1
  task=$(ctr_ tasks ls | awk -v id="$id" 'NR > 1 && $1 == id { print $2, $3; exit }')
  pid=0
  case ${task#* } in
    RUNNING|PAUSED|PAUSING) state=CONTAINER_RUNNING pid=${task%% *} ;;
    CREATED) state=CONTAINER_CREATED ;;
    *) state=CONTAINER_EXITED ;;
  esac
  labels=$(printf '%s\n' "$info" | topval Labels)
  spec=$(printf '%s\n' "$info" | topval Spec)
  [ -n "$labels" ] || labels='{}'
  printf '{\n  "status": {\n    "id": "%s",\n    "metadata": {\n      "attempt": 0,\n      "name": "%s"\n    },\n' "$id" "$id"
  printf '    "state": "%s",\n    "createdAt": %s,\n    "image": {\n      "image": %s\n    },\n' \
    "$state" "$(printf '%s\n' "$info" | topval CreatedAt)" "$(printf '%s\n' "$info" | topval Image)"
  printf '    "labels": %s,\n    "annotations": {},\n    "mounts": [],\n    "logPath": ""\n  },\n' "$labels"
  printf '  "info": {\n    "sandboxID": "",\n    "pid": %s,\n    "removing": false,\n' "$pid"
  printf '    "snapshotKey": %s,\n    "snapshotter": %s,\n' "$(printf '%s\n' "$info" | topval SnapshotKey)" "$(printf '%s\n' "$info" | topval Snapshotter)"
  printf '    "runtimeType": "io.containerd.runc.v2",\n    "runtimeSpec": %s\n  }\n}\n' "${spec:-null}"
}

inspect_podman() {
  id=$(resolve "$1") || true
  [ -n "$id" ] || notfound "$1"
  tab=$(printf '\t')
  f=$(podman_ container inspect --format '{{.State.Status}}{{"\t"}}{{.State.Pid}}{{"\t"}}{{.StaticDir}}' -- "$id") || notfound "$1"
  st=${f%%"$tab"*} f=${f#*"$tab"} pid=${f%%"$tab"*} dir=${f#*"$tab"}
  case $st in
    running|paused) state=CONTAINER_RUNNING ;;
    created|configured|initialized) state=CONTAINER_CREATED ;;
    *) state=CONTAINER_EXITED ;;
  esac
  spec=$(cat -- "$dir/config.json" 2>/dev/null)
  printf '{\n  "status": {\n    "id": "%s",\n    "metadata": {\n      "attempt": 0,\n      "name": "%s"\n    },\n' "$id" "$id"
  printf '    "state": "%s",\n    "labels": {},\n    "annotations": {},\n    "mounts": [],\n    "logPath": ""\n  },\n' "$state"
  printf '  "info": {\n    "sandboxID": "",\n    "pid": %s,\n    "runtimeSpec": %s,\n    "privileged": false\n  }\n}\n' "${pid:-0}" "${spec:-null}"
}

cmd=${1:-}
[ $# -eq 0 ] || shift
case $cmd in
  inspect)
    want=''
    while [ $# -gt 0 ]; do
      case $1 in
        -o|--output) [ "${2:-}" = json ] || fatal "stand-in: only -o json"; shift 2 ;;
        -o=json|--output=json) shift ;;
        --) shift; want=${1:-}; break ;;
        -*) fatal "stand-in: inspect option $1 is not implemented" ;;
        *) want=$1; break ;;
      esac
    done
    [ -n "$want" ] || fatal "ID cannot be empty"
    "inspect_$backend" "$want"
    ;;
  ps)
    all='' quiet='' idp=''
    while [ $# -gt 0 ]; do
      case $1 in
        -a|--all) all=1; shift ;;
        -q|--quiet) quiet=1; shift ;;
        --id) idp=${2:-}; shift 2 ;;
        *) fatal "stand-in: ps option $1 is not implemented" ;;
      esac
    done
    [ -n "$quiet" ] || fatal "stand-in: ps without -q is not implemented"
    if [ "$backend" = podman ]; then running=$(podman_ ps -q --no-trunc); else running=$(ctr_ tasks ls | awk 'NR > 1 && $3 == "RUNNING" { print $1 }'); fi
    for c in $(ids); do
      case $c in "$idp"*) ;; *) continue ;; esac
      [ -n "$all" ] || printf '%s\n' "$running" | grep -qx -- "$c" || continue
      printf '%s\n' "$c"
    done
    ;;
  *) fatal "stand-in: crictl $cmd is not implemented" ;;
esac
