# events.sh — what `sneakpeek -t procmon|tcptracer|fswatch --events [--follow]` runs on a node:
# read back what the monitor units logged there, as records, each with the point to resume
# after it. Needs only journalctl (or the log files), awk, tail, tr, ls, sleep. Reads, never
# changes anything: no sp_lock.
#
# Sent after lib/node-script.sh (rec, lastline, $sp_tmp, the watchdog) and get_container_ns.sh
# (sp_cid: a container name → its 12-hex id). Steps:
#   sp_ev_name  KEY TOOL ENGINE NAME RESUME ENVDIR   a source whose container the engine names
#   sp_ev_id    KEY TOOL ID FULLID RESUME ENVDIR     a source whose container id is known
#   sp_events   [-f] [-s SINCE] [-i POLL] journal|file LOGDIR   read every source given above
# A source is one unit instance, TOOL@ID.service (TOOL execsnoop | tcptracer | fswatch); KEY is
# the operator's number for it. RESUME is `-` (start at SINCE, or at the beginning), or the POS
# of the last line the operator has used: a journal cursor, or INODE:OFFSET in the log file.
#   -f       follow: keep reading until the session ends (the watchdog ends the run then)
#   -s SINCE @EPOCH (seconds) or -SECONDS (back from this node's clock); for sources without a
#            RESUME. Journal: by entry time. Files: lines carry no time of their own, so a file
#            not modified since SINCE is skipped and the others are read whole (the operator
#            filters on the events' own times).
#   -i POLL  seconds between two looks at the log files when following (default 1)
#
# Records (fields in lib/wire.ts):
#   EVSRC KEY TOOL ID ENV     a source: its instance's 12-hex ID and its env file (ENVDIR/ID.env)
#                             as it is now, or empty when no instance is configured
#   EV KEY POS USEC MESSAGE   one line the unit logged. POS: where to resume just after it
#                             (journal cursor | INODE:OFFSET). USEC: the journal's
#                             __REALTIME_TIMESTAMP, empty for files. MESSAGE: the line's bytes,
#                             any but NUL (a NUL byte is sent as \001)
#   WARN KEY TEXT             e.g. a log file shrank or was replaced: read again from its start
#   ERR KEY|- TEXT            a source, or the whole read, failed
#   EVSINCE - EPOCH           SINCE on this node's clock (for the sessions after this one)
#   EVEND -                   the read is complete (none: the session was cut)
#
# EXACTNESS
#   journal: ONE journalctl for all sources, so one order. It matches the fields every instance
#     carries (LogExtraFields=SNEAKPEEK_TOOL=<tool> and SNEAKPEEK_ID=%i, lib/units.ts): journald
#     evaluates them per entry, so an instance started after the follower began is picked up (a
#     `-u 'tool@*'` glob is resolved once, at start, and would not be); and the unit names, for
#     entries logged before the units had those fields. An entry counts only when journald's own
#     _SYSTEMD_UNIT (which a process cannot forge) is one of the sources. Start: --after-cursor of
#     the oldest RESUME when every source has one, else --since; --no-tail always (with -f,
#     journalctl otherwise shows only 10 entries after a cursor, and a bare -f loses the first
#     entries of a new match). Each source drops the entries at or before its own RESUME by
#     sequence number (cursor i=, same s=).
#   file: a line is sent only when its newline lies within the size seen before the read (a
#     line still being written waits for the next look); POS counts bytes. A file that shrinks,
#     or whose inode is not the RESUME's, is read again from 0 with a WARN (copytruncate: lines
#     written between the last look and the truncation are lost; rename rotation: a unit keeps
#     appending to the renamed file until it restarts).
#
# Found on systemd 252 (Debian 12): -o json puts fields in any order; MESSAGE is an array of
# bytes when it is not valid or not printable UTF-8, null over 4096 bytes unless --all; journald
# splits a line at NUL and at LineMax (48 KiB); many lines share one __REALTIME_TIMESTAMP, so only
# the cursor can order and resume. --since takes @EPOCH and -SECONDS, not ISO 8601, and not with a
# cursor option. mawk reads a pipe a buffer at a time unless -W interactive.

# sp_ev_name KEY TOOL ENGINE NAME RESUME ENVDIR: the engine names NAME's id (sp_cid), then sp_ev_id.
sp_ev_name() {
  # one engine call per container, whatever the number of its types
  if [ "${sp_ev_named-}" != "$3/$4" ]; then
    sp_ev_named= sp_id=
    sp_cid "$1" "$3" "$4" || return 0
    # (the engine's full id; NAME itself when the engine no longer knows it and it is an id)
    sp_ev_named="$3/$4" sp_ev_full=${sp_id:-$4}
  fi
  sp_ev_id "$1" "$2" "$sp_cid" "$sp_ev_full" "$5" "$6"
}

# sp_ev_id KEY TOOL ID FULLID RESUME ENVDIR: check and remember one source → EVSRC.
sp_ev_id() {
  case $1 in ''|*[!0-9]*) rec ERR - "bad source key '$1'"; return 0 ;; esac
  case $2 in execsnoop|tcptracer|fswatch) ;; *) rec ERR "$1" "bad tool '$2'"; return 0 ;; esac
  case $3 in [0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]) ;;
    *) rec ERR "$1" "bad instance id '$3'"; return 0 ;; esac
  case $5 in
    -) ;;
    *[!A-Za-z0-9=\;:]*|'') rec ERR "$1" "bad resume point '$5'"; return 0 ;;
  esac
  case " ${sp_ev_seen-} " in *" $2@$3 "*) rec ERR "$1" "$2@$3 given twice"; return 0 ;; esac
  sp_ev_seen="${sp_ev_seen-} $2@$3"
  sp_ev_n=$((${sp_ev_n:-0} + 1))
  eval "sp_k_$sp_ev_n=\$1 sp_t_$sp_ev_n=\$2 sp_i_$sp_ev_n=\$3 sp_r_$sp_ev_n=\$5"
  env=
  [ -r "$6/$3.env" ] && env=$(cat -- "$6/$3.env" 2>/dev/null)
  rec EVSRC "$1" "$2" "$4" "$env"
}

# JSON lines of `journalctl -o json --output-fields=MESSAGE,_SYSTEMD_UNIT` → EV records.
# Fields come in any order; MESSAGE is a string, an array of byte values (not valid or not
# printable UTF-8), null (over 4096 bytes without --all), or an array of values (a field set
# twice: the first is used). Variables: map="UNIT KEY …", res="KEY CURSOR|- …", since=USEC|'',
# follow=0|1. Needs LC_ALL=C (bytes, not characters).
SP_EV_JOURNAL_AWK='
function hexval(h,   i, v) { v = 0; for (i = 1; i <= length(h); i++) v = v * 16 + index("0123456789abcdef", substr(h, i, 1)) - 1; return v }
function curf(c, k,   n, i, a) { n = split(c, a, ";"); for (i = 1; i <= n; i++) if (substr(a[i], 1, 2) == k "=") return substr(a[i], 3); return "" }
function utf8(cp) {
  if (cp == 0) return sprintf("%c", 1)
  if (cp < 128) return sprintf("%c", cp)
  if (cp < 2048) return sprintf("%c%c", 192 + int(cp / 64), 128 + cp % 64)
  if (cp < 65536) return sprintf("%c%c%c", 224 + int(cp / 4096), 128 + int(cp / 64) % 64, 128 + cp % 64)
  return sprintf("%c%c%c%c", 240 + int(cp / 262144), 128 + int(cp / 4096) % 64, 128 + int(cp / 64) % 64, 128 + cp % 64)
}
# The JSON string starting at s[p] (a quote): decoded bytes; P = index just past it; 0 if cut.
function jstr(s, p,   out, q, c, rest, n, cp, lo) {
  out = ""; p++
  for (;;) {
    rest = substr(s, p); q = index(rest, "\""); n = index(rest, "\\")
    if (q == 0) return ok = 0
    if (n == 0 || q < n) { P = p + q; return out substr(rest, 1, q - 1) }
    out = out substr(rest, 1, n - 1); p += n; c = substr(s, p, 1)
    if (c == "u") {
      cp = hexval(tolower(substr(s, p + 1, 4))); p += 5
      if (cp >= 55296 && cp < 56320 && substr(s, p, 2) == "\\u") { lo = hexval(tolower(substr(s, p + 2, 4))); if (lo >= 56320 && lo < 57344) { cp = 65536 + (cp - 55296) * 1024 + (lo - 56320); p += 6 } }
      out = out utf8(cp); continue
    }
    if (c == "n") out = out "\n"; else if (c == "t") out = out "\t"; else if (c == "r") out = out "\r"
    else if (c == "b") out = out "\b"; else if (c == "f") out = out "\f"; else out = out c
    p++
  }
}
# The JSON value at s[p]: a string, a byte array, or the first of an array of values. Sets P past it.
function jval(s, p,   c, v, w, first, m, r, n, i, b) {
  c = substr(s, p, 1)
  if (c == "\"") return jstr(s, p)
  if (c == "[") {
    p++; c = substr(s, p, 1)
    if (c == "]") { P = p + 1; return "" }
    if (c ~ /[0-9]/) {
      # bytes: split once, join in chunks (busybox awk copies a string on every concatenation)
      m = index(substr(s, p), "]"); if (m == 0) return ok = 0
      n = split(substr(s, p, m - 1), b, ","); v = ""; w = ""
      for (i = 1; i <= n; i++) {
        if (b[i] !~ /^[0-9]+$/ || b[i] + 0 > 255) return ok = 0
        w = w sprintf("%c", b[i] + 0 == 0 ? 1 : b[i] + 0)
        if (i % 256 == 0) { v = v w; w = "" }
      }
      P = p + m; return v w
    }
    first = jval(s, p); if (!ok) return ""
    while (substr(s, P, 1) == ",") { r = jval(s, P + 1); if (!ok) return "" }
    if (substr(s, P, 1) != "]") return ok = 0
    P++; return first
  }
  if (match(substr(s, p), /^(null|true|false|-?[0-9][0-9.eE+-]*)/)) { P = p + RLENGTH; return "" }
  return ok = 0
}
BEGIN {
  n = split(map, a, " "); for (i = 1; i + 1 <= n; i += 2) keyof[a[i]] = a[i + 1]
  n = split(res, a, " ")
  for (i = 1; i + 1 <= n; i += 2) if (a[i + 1] != "-") { rs[a[i]] = curf(a[i + 1], "s"); ri[a[i]] = hexval(curf(a[i + 1], "i")); rt[a[i]] = hexval(curf(a[i + 1], "t")); hasres[a[i]] = 1 }
}
{
  s = $0; ok = 1; p = 2; cur = ""; usec = ""; msg = ""; unit = ""; got = 0
  if (substr(s, 1, 1) != "{") next
  while (ok && p <= length(s)) {
    if (substr(s, p, 1) != "\"") { ok = 0; break }
    k = jstr(s, p); if (!ok || substr(s, P, 1) != ":") { ok = 0; break }
    v = jval(s, P + 1); if (!ok) break
    if (k == "__CURSOR") cur = v; else if (k == "__REALTIME_TIMESTAMP") usec = v
    else if (k == "MESSAGE") { msg = v; got = 1 } else if (k == "_SYSTEMD_UNIT") unit = v
    c = substr(s, P, 1)
    if (c == ",") p = P + 1; else if (c == "}" && P == length(s)) break; else ok = 0
  }
  if (!ok || cur == "" || !(unit in keyof) || !got) next
  key = keyof[unit]
  if (key in hasres) {
    if (curf(cur, "s") == rs[key]) { if (hexval(curf(cur, "i")) <= ri[key]) next }
    else if (usec + 0 <= rt[key]) next
  } else if (since != "" && usec + 0 < since + 0) next
  printf "EV\t%s\t%s\t%s\t%s%c", key, cur, usec, msg, 0
  if (follow) fflush()
}'

# One look at one log file: complete lines of bytes [off, size) → EV records (POS INODE:OFFSET,
# the offset just past the line); the new offset goes to the file named by `state`.
SP_EV_FILE_AWK='
{ n = length($0) + 1; if (off + n > size) exit; off += n; printf "EV\t%s\t%s:%.0f\t\t%s%c", key, ino, off, $0, 0 }
END { print sprintf("%.0f", off) > state }'

# sp_events [-f] [-s SINCE] [-i POLL] journal|file LOGDIR: read every source given by sp_ev_name /
# sp_ev_id → EV records, then EVEND (a follow only ends with its session).
sp_events() {
  sp_f=0 sp_since= sp_poll=1 OPTIND=1
  while getopts fs:i: sp_o; do
    case $sp_o in
      f) sp_f=1 ;; s) sp_since=$OPTARG ;; i) sp_poll=$OPTARG ;;
      *) rec ERR - 'usage: sp_events [-f] [-s SINCE] [-i POLL] journal|file LOGDIR'; return 0 ;;
    esac
  done
  shift $((OPTIND - 1))
  case $sp_since in
    '') ;;
    @*[!0-9]*|@) rec ERR - "bad since '$sp_since' (@EPOCH or -SECONDS)"; return 0 ;;
    @*) sp_since=${sp_since#@} ;;
    -*[!0-9]*|-) rec ERR - "bad since '$sp_since' (@EPOCH or -SECONDS)"; return 0 ;;
    # (a duration longer than this clock has run since 1970, e.g. 999999999d: from the epoch)
    -*) sp_since=$(( $(date +%s) - ${sp_since#-} )); [ "$sp_since" -ge 0 ] || sp_since=0 ;;
    *) rec ERR - "bad since '$sp_since' (@EPOCH or -SECONDS)"; return 0 ;;
  esac
  case $sp_poll in ''|*[!0-9.]*) rec ERR - "bad poll interval '$sp_poll'"; return 0 ;; esac
  # the instant SINCE is on this node's clock: a session started again must use the same one
  [ -z "$sp_since" ] || rec EVSINCE - "$sp_since"
  sp_n=${sp_ev_n:-0}
  if [ "$sp_n" -eq 0 ]; then rec EVEND -; return 0; fi
  case ${1-} in
    journal) sp_ev_journal ;;
    file) sp_ev_files "${2-}" ;;
    *) rec ERR - "bad log target '${1-}' (journal or file)" ;;
  esac
}

sp_ev_journal() {
  if ! command -v journalctl >/dev/null 2>&1; then rec ERR - 'journalctl not found on this node'; return 0; fi
  map= res= all=0 tools=
  j=1
  while [ $j -le $sp_n ]; do
    eval "k=\$sp_k_$j t=\$sp_t_$j i=\$sp_i_$j r=\$sp_r_$j"
    map="$map $t@$i.service $k"
    res="$res $k $r"
    case " $tools " in *" $t "*) ;; *) tools="$tools $t" ;; esac
    [ "$r" = - ] && [ -z "$sp_since" ] && all=1
    j=$((j + 1))
  done
  # The matches: per tool, its field and the instances' ids (one field's values are
  # alternatives, two fields must both hold); `+` between groups; last, the unit names.
  set --
  for t in $tools; do
    set -- "$@" "SNEAKPEEK_TOOL=$t"
    j=1
    while [ $j -le $sp_n ]; do
      eval "[ \"\$sp_t_$j\" = \"\$t\" ] && set -- \"\$@\" \"SNEAKPEEK_ID=\$sp_i_$j\""
      j=$((j + 1))
    done
    set -- "$@" +
  done
  j=1
  while [ $j -le $sp_n ]; do
    eval "set -- \"\$@\" \"_SYSTEMD_UNIT=\$sp_t_$j@\$sp_i_$j.service\""
    j=$((j + 1))
  done
  # Where journalctl starts: the oldest RESUME (by sequence number) when all sources have one
  # from the same journal sequence; else the oldest time among SINCE and the RESUMEs' t=.
  start=$(printf '%s\n' "$res" | awk -v all="$all" -v since="$sp_since" '
    function hexval(h,   i, v) { v = 0; for (i = 1; i <= length(h); i++) v = v * 16 + index("0123456789abcdef", substr(h, i, 1)) - 1; return v }
    function curf(c, k,   n, i, a) { n = split(c, a, ";"); for (i = 1; i <= n; i++) if (substr(a[i], 1, 2) == k "=") return substr(a[i], 3); return "" }
    { n = split($0, a, " ") }
    END {
      if (all) { print "all"; exit }
      same = 1; none = 0; sid = ""; mint = since != "" ? since * 1000000 : -1; mini = -1
      for (x = 2; x <= n; x += 2) {
        c = a[x]
        if (c == "-") { none = 1; continue }
        s = curf(c, "s"); i = hexval(curf(c, "i")); t = hexval(curf(c, "t"))
        if (sid == "") sid = s; else if (s != sid) same = 0
        if (mini < 0 || i < mini) { mini = i; minc = c }
        if (mint < 0 || t < mint) mint = t
      }
      if (!none && same) print "cursor " minc
      else printf "since @%.0f\n", int(mint / 1000000)
    }')
  case $start in
    all) set -- --no-tail "$@" ;;
    cursor\ *) set -- "--after-cursor=${start#cursor }" --no-tail "$@" ;;
    since\ *) set -- "--since=${start#since }" --no-tail "$@" ;;
  esac
  [ "$sp_f" = 1 ] && set -- -f "$@"
  sinceus=
  [ -n "$sp_since" ] && sinceus=$(awk -v s="$sp_since" 'BEGIN { printf "%.0f", s * 1000000 }')
  # mawk fills its whole input buffer before it hands a line over, unless -W interactive:
  # a follower would sit on the last events. (busybox awk and gawk read as lines come.)
  sp_awkw=
  if [ "$sp_f" = 1 ]; then case $(awk -W version 2>/dev/null </dev/null | head -n 1) in mawk*) sp_awkw='-W interactive' ;; esac; fi
  : > "$sp_tmp/ev-jerr"
  rm -f "$sp_tmp/ev-jrc"
  # shellcheck disable=SC2086 # $sp_awkw is an option or nothing
  { journalctl -q -o json --all --output-fields=MESSAGE,_SYSTEMD_UNIT "$@" 2>"$sp_tmp/ev-jerr"; echo $? > "$sp_tmp/ev-jrc"; } |
    awk $sp_awkw -v map="$map" -v res="$res" -v since="$sinceus" -v follow="$sp_f" "$SP_EV_JOURNAL_AWK"
  rc=$(cat "$sp_tmp/ev-jrc" 2>/dev/null)
  if [ "${rc:-1}" != 0 ]; then
    rec ERR - "journalctl failed (exit ${rc:-?}): $(lastline "$(cat "$sp_tmp/ev-jerr")")"
    return 0
  fi
  rec EVEND -
}

# sp_ev_files LOGDIR: each source's <LOGDIR>/<TOOL>-<ID>.log from its RESUME (or SINCE, or 0).
sp_ev_files() {
  sp_dir=$1
  case $sp_dir in /*) ;; *) rec ERR - "the file target needs an absolute log dir (got '$sp_dir')"; return 0 ;; esac
  ref=
  if [ -n "$sp_since" ]; then
    # a reference file stamped SINCE: a log not modified after it has nothing since then
    ref="$sp_tmp/ev-since"
    stamp=$(date -u -d "@$sp_since" +%Y%m%d%H%M.%S 2>/dev/null) && TZ=UTC0 touch -t "$stamp" "$ref" 2>/dev/null || ref=
  fi
  j=1
  while [ $j -le $sp_n ]; do
    eval "r=\$sp_r_$j"
    # RESUME: INODE:OFFSET (as EV sends it); fresh = no RESUME (start at SINCE, or at 0)
    case $r in
      -) eval "sp_o_$j=0 sp_ino_$j= sp_fresh_$j=1" ;;
      *:*) eval "sp_o_$j=\${r#*:} sp_ino_$j=\${r%%:*} sp_fresh_$j=0" ;;
      *) eval "sp_o_$j=\$r sp_ino_$j= sp_fresh_$j=0" ;;
    esac
    eval "o=\$sp_o_$j ino=\$sp_ino_$j"
    case $o:$ino in *[!0-9:]*|:*) rec ERR - "bad resume point '$r' for a log file (INODE:OFFSET)"; return 0 ;; esac
    j=$((j + 1))
  done
  while :; do
    j=0
    while [ $j -lt $sp_n ]; do
      j=$((j + 1))
      eval "k=\$sp_k_$j t=\$sp_t_$j i=\$sp_i_$j off=\$sp_o_$j ino0=\$sp_ino_$j fresh=\$sp_fresh_$j"
      sp_lf="$sp_dir/$t-$i.log"
      # ls -lni: inode, mode, links, uid, gid, size, … (no file yet: nothing to read yet)
      # shellcheck disable=SC2046
      set -- $(ls -lni -- "$sp_lf" 2>/dev/null)
      [ $# -ge 6 ] || continue
      ino=$1 size=$6
      if [ "$fresh" = 1 ]; then
        eval "sp_fresh_$j=0"
        if [ -n "$ref" ] && [ -z "$(find "$sp_lf" -newer "$ref" 2>/dev/null)" ]; then off=$size; fi
      elif [ -n "$ino0" ] && [ "$ino" != "$ino0" ]; then
        rec WARN "$k" "$sp_lf was replaced (inode $ino0 -> $ino): reading the new file from its start"; off=0
      elif [ "$size" -lt "$off" ]; then
        rec WARN "$k" "$sp_lf shrank to $size bytes (was read to $off): truncated, reading from its start"; off=0
      fi
      if [ "$size" -gt "$off" ]; then
        tail -c +$((off + 1)) -- "$sp_lf" | tr '\000' '\001' |
          awk -v key="$k" -v ino="$ino" -v off="$off" -v size="$size" -v state="$sp_tmp/ev-off" "$SP_EV_FILE_AWK"
        new=$(cat "$sp_tmp/ev-off" 2>/dev/null)
        case $new in ''|*[!0-9]*) ;; *) off=$new ;; esac
      fi
      eval "sp_o_$j=\$off sp_ino_$j=\$ino"
    done
    [ "$sp_f" = 1 ] || break
    sleep "$sp_poll"
  done
  rec EVEND -
}
