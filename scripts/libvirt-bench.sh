#!/usr/bin/env bash
# gangmig with libvirt against plain `virsh migrate`, all in one run on this machine: two
# libvirtd "hosts" (scripts/libvirt-hosts.sh), N TCG domains from the project's guest
# image, each way migrating all of them from host a to host b at once (then back, with
# plain virsh, unmeasured, to start the next way from the same place):
#
#   gangmig-libvirt  gangmig migrate --libvirt (gangmig starts each virsh migrate)
#   gangmig-proxy    gangmig proxy on a; plain `virsh migrate --migrateuri unix://...`
#                    for every domain at once, as an orchestrator would run them
#   virsh            plain virsh migrate --live --p2p over TCP (--migrateuri tcp://127.0.0.1)
#   virsh-parallel   the same with --parallel --parallel-connections 2 (multifd; Debian
#                    bookworm's libvirt 9.0 offers no zstd for multifd)
#
# Link bytes are what the loopback device carried during the way's migration
# (/proc/net/dev, lo, transmitted: every migration byte crosses lo once, gangmig's and
# QEMU's alike; headers included). Downtime is libvirt's own figure for each domain
# (domjobinfo --completed on b: source stop to destination resume). Time is from the
# first virsh start to the last domain running on b. Every way ends with --suspend, and
# each domain's RAM on b is compared with its source's final RAM (kept through a hard
# link) before it is resumed.
#
#   scripts/libvirt-bench.sh [--vms N] [--mem MIB] [--reps R] [--rate RATE] [--out DIR]
#
# --rate (e.g. 1gbit, 300mbit): a tbf on the loopback device for the run, so that every
# way meets the same link rate (without it the link is this machine's loopback, and the
# CPU is the limit). It shapes all of this machine's loopback traffic while it runs.
#
# Guests do not write during the migration (dirty rate 0): libvirt rounds RAM to whole
# MiB, which puts QEMU 7.2 under TCG on its dirty-tracking-loss path (docs/DESIGN.md), so
# a busy guest's RAM check would test QEMU's bug, not gangmig.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VMS=4 MEM=256 REPS=3 OUT=results/libvirt-bench RATE=
while [ $# -gt 0 ]; do
  case $1 in
    --vms) VMS=$2; shift 2 ;;
    --mem) MEM=$2; shift 2 ;;
    --reps) REPS=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --rate) RATE=$2; shift 2 ;;
    *) echo "usage: $0 [--vms N] [--mem MIB] [--reps R] [--rate RATE] [--out DIR]" >&2; exit 2 ;;
  esac
done
G=$ROOT/build/gangmig
S=$ROOT/scripts/libvirt-hosts.sh
[ -x "$G" ] || { echo "libvirt-bench: build first (scripts/setup.sh)" >&2; exit 1; }
mkdir -p "$OUT"
B=$(mktemp -d /dev/shm/gangmig-lvbench-XXXXXX)
PORT=$((47000 + $$ % 500))
cleanup() {
  [ -n "$RATE" ] && tc qdisc del dev lo root 2>/dev/null || true
  [ -n "${PROXY:-}" ] && kill "$PROXY" 2>/dev/null || true
  "$S" stop "$B" >/dev/null 2>&1 || true
  sleep 1
  rm -rf "$B"
}
trap cleanup EXIT

"$S" start "$B"
if [ -n "$RATE" ]; then
  tc qdisc replace dev lo root tbf rate "$RATE" burst 1mb latency 200ms
fi
for i in $(seq "$VMS"); do "$S" define "$B" a "vm$i" "$MEM" "$i" "$ROOT/guest/out" 0; done
for i in $(seq "$VMS"); do
  for _ in $(seq 480); do grep -q "gangmig-guest: ready" "$B/a/vm$i.serial" 2>/dev/null && break; sleep 0.5; done
done
"$G" keygen "$B/key" >/dev/null
UA=$("$S" uri "$B" a) UB=$("$S" uri "$B" b)
NA=/proc/$(cat "$B/a/run/libvirtd.pid")/ns/mnt NB=/proc/$(cat "$B/b/run/libvirtd.pid")/ns/mnt
mkdir -p "$B/b/run/gangmig/b" "$B/reports"
DOMS=$(seq -f "vm%g" "$VMS")

lo_tx() { awk '$1 == "lo:" { print $10 }' /proc/net/dev; }
now() { date +%s.%N; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
TCK=$(getconf CLK_TCK)

keep_ram() {
  for d in $DOMS; do ln "$(ls "$B"/a/ram/libvirt/qemu/*-"$d"/*)" "$B/kept-$d.ram"; done
}
# Compares, resumes on b, sends every domain back to a (unmeasured); prints the count of
# domains whose RAM differs.
check_and_return() {
  local bad=0
  for d in $DOMS; do
    cmp -s "$B/kept-$d.ram" "$(ls "$B"/b/ram/libvirt/qemu/*-"$d"/*)" || bad=$((bad + 1))
    rm -f "$B/kept-$d.ram"
    virsh -q -c "$UB" resume "$d" >/dev/null
  done
  local pids=()
  for d in $DOMS; do
    virsh -q -c "$UB" migrate --live --p2p --persistent --undefinesource "$d" "$UA" \
      --migrateuri tcp://127.0.0.1 >/dev/null & pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p"; done
  echo "$bad"
}
# Longest libvirt downtime (ms) of the domains now on b.
max_downtime() {
  local m=0 v
  for d in $DOMS; do
    v=$(virsh -c "$UB" domjobinfo --completed "$d" | awk '/Total downtime/ { print $3 }')
    [ -n "$v" ] && [ "$v" -gt "$m" ] && m=$v
  done
  echo "$m"
}
# virsh migrate of every domain a -> b at once: extra flags, migration URI (one ending in
# "/" is a socket directory: DOMAIN.sock is appended).
virsh_all() {
  local flags=$1 uri=$2 pids=() rc=0 u
  for d in $DOMS; do
    u=$uri
    [ "${uri: -1}" = / ] && u="$uri$d.sock"
    virsh -q -c "$UA" migrate --live --p2p --persistent --undefinesource --suspend $flags "$d" "$UB" \
      --migrateuri "$u" >/dev/null & pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || rc=1; done
  return $rc
}

CSV=$OUT/runs.csv
[ -f "$CSV" ] || echo "rep,way,vms,mem_mib,rate,ok,time_s,link_bytes,max_downtime_ms,gangmig_cpu_s,ram_differs" > "$CSV"
for rep in $(seq "$REPS"); do
  for way in gangmig-libvirt gangmig-proxy virsh virsh-parallel; do
    keep_ram
    cpu=0 ok=1
    case $way in
      gangmig-libvirt)
        nsenter --mount="$NB" /usr/bin/time -f "%U %S" -o "$B/recv.cpu" "$G" receive --listen 127.0.0.1:$PORT \
          --key-file "$B/key" --dest-dir /run/gangmig --dest-wait 60 --once >"$B/recv.log" 2>&1 &
        RECV=$!
        sleep 0.5
        tx0=$(lo_tx) t0=$(now)
        vmargs=()
        for d in $DOMS; do vmargs+=(--vm "name=$d"); done
        # Its own CPU from its report (time(1) would add the virsh children it runs).
        nsenter --mount="$NA" "$G" migrate --libvirt --dest-uri "$UB" --report "$B/send.json" \
          --to 127.0.0.1:$PORT --key-file "$B/key" --quiet --libvirt-flag --persistent \
          --libvirt-flag --undefinesource --libvirt-flag --suspend "${vmargs[@]}" \
          >"$B/send.log" 2>&1 || ok=0
        t1=$(now) tx1=$(lo_tx)
        wait "$RECV" || ok=0
        send_cpu=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['total']['cpu_seconds'])" "$B/send.json")
        cpu=$(awk -v c="$send_cpu" '{ s += $1 + $2 } END { print s + c }' "$B/recv.cpu")
        ;;
      gangmig-proxy)
        nsenter --mount="$NB" /usr/bin/time -f "%U %S" -o "$B/recv.cpu" "$G" receive --listen 127.0.0.1:$PORT \
          --key-file "$B/key" --dest-dir /run/gangmig/b --dest-wait 60 --once >"$B/recv.log" 2>&1 &
        RECV=$!
        nsenter --mount="$NA" "$G" proxy --peer "b=127.0.0.1:$PORT" --key-file "$B/key" \
          --report-dir "$B/reports" --linger 1 >"$B/proxy.log" 2>&1 &
        PROXY=$!
        for _ in $(seq 100); do grep -q "ready:" "$B/proxy.log" 2>/dev/null && break; sleep 0.1; done
        c0=$(cpu_ticks "$PROXY")
        tx0=$(lo_tx) t0=$(now)
        virsh_all "" "unix:///run/gangmig/b/" || ok=0
        t1=$(now) tx1=$(lo_tx)
        wait "$RECV" || ok=0
        c1=$(cpu_ticks "$PROXY")
        kill "$PROXY"; wait "$PROXY" || true; PROXY=
        cpu=$(awk -v a="$c0" -v b="$c1" -v t="$TCK" '{ s += $1 + $2 } END { print s + (b - a) / t }' "$B/recv.cpu")
        ;;
      virsh)
        tx0=$(lo_tx) t0=$(now)
        virsh_all "" "tcp://127.0.0.1" || ok=0
        t1=$(now) tx1=$(lo_tx)
        ;;
      virsh-parallel)
        tx0=$(lo_tx) t0=$(now)
        virsh_all "--parallel --parallel-connections 2" "tcp://127.0.0.1" || ok=0
        t1=$(now) tx1=$(lo_tx)
        ;;
    esac
    down=$(max_downtime)
    bad=$(check_and_return)
    time_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
    echo "$rep,$way,$VMS,$MEM,${RATE:-none},$ok,$time_s,$((tx1 - tx0)),$down,$cpu,$bad" | tee -a "$CSV"
    [ "$ok" = 1 ] || { echo "libvirt-bench: $way failed in rep $rep (logs in $B)" >&2; tail -5 "$B"/*.log >&2 || true; }
  done
done

python3 - "$CSV" <<'EOF' | tee "$OUT/summary.md"
import csv, statistics, sys
rows = [r for r in csv.DictReader(open(sys.argv[1])) if r["ok"] == "1"]
ways = ["gangmig-libvirt", "gangmig-proxy", "virsh", "virsh-parallel"]
med = lambda xs: statistics.median(xs) if xs else float("nan")
print("| way | runs | link MiB | time s | longest downtime ms | gangmig CPU s | RAM differs |")
print("|---|---|---|---|---|---|---|")
base = {}
for w in ways:
    rs = [r for r in rows if r["way"] == w]
    link = med([int(r["link_bytes"]) / 2**20 for r in rs])
    base[w] = link
    print(f"| {w} | {len(rs)} | {link:.1f} | {med([float(r['time_s']) for r in rs]):.2f} | "
          f"{med([float(r['max_downtime_ms']) for r in rs]):.0f} | "
          f"{med([float(r['gangmig_cpu_s']) for r in rs]):.2f} | {sum(int(r['ram_differs']) for r in rs)} |")
for w in ["gangmig-libvirt", "gangmig-proxy"]:
    print(f"\n{w}: {base[w] / base['virsh']:.2f}x plain virsh's link bytes, "
          f"{base[w] / base['virsh-parallel']:.2f}x virsh --parallel's (medians)")
EOF
