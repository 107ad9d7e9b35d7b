#!/usr/bin/env bash
# Boot N gangmig test guests at once under QEMU TCG, report the seconds from
# launch until each prints "gangmig-guest: ready", optionally count identical
# pages across their RAM files, then stop them and remove their files.
#
# Usage: guest/boot-test.sh [OPTIONS]
#   -n N              number of VMs started together (default 1)
#   --seed-base B     VM i (1..N) gets gangmig.seed=B+i-1 (default 1)
#   --out DIR         guest build dir (default guest/out next to this script)
#   --kernel FILE     default DIR/vmlinux (PVH, fast); DIR/vmlinuz also works
#   --initrd FILE     default DIR/initrd.img
#   --ram MIB         guest RAM (default 256)
#   --mem-mib M       gangmig.mem_mib (default 64)
#   --dirty-rate R    gangmig.dirty_rate (default 200)
#   --shared-pct P    gangmig.shared_pct (default 50)
#   --cmdline STR     base kernel cmdline (default: the recommended one)
#   --timeout S       give up after S seconds (default 180)
#   --share           after all are ready, count identical pages (needs python3)
#   --keep            leave the VMs running (prints their pids and files)
set -euo pipefail
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
N=1; SEED0=1; OUT=$SCRIPT_DIR/out; KERNEL=""; INITRD=""; RAM=256; MEM=64; RATE=200; PCT=50
CMDLINE="console=ttyS0 quiet panic=-1 cryptomgr.notests tsc=reliable no_timer_check"
TIMEOUT=180; SHARE=0; KEEP=0
while [ $# -gt 0 ]; do
    case "$1" in
        -n) N=$2; shift 2 ;;
        --seed-base) SEED0=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        --kernel) KERNEL=$2; shift 2 ;;
        --initrd) INITRD=$2; shift 2 ;;
        --ram) RAM=$2; shift 2 ;;
        --mem-mib) MEM=$2; shift 2 ;;
        --dirty-rate) RATE=$2; shift 2 ;;
        --shared-pct) PCT=$2; shift 2 ;;
        --cmdline) CMDLINE=$2; shift 2 ;;
        --timeout) TIMEOUT=$2; shift 2 ;;
        --share) SHARE=1; shift ;;
        --keep) KEEP=1; shift ;;
        -h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "boot-test: unknown argument $1" >&2; exit 2 ;;
    esac
done
KERNEL=${KERNEL:-$OUT/vmlinux}; INITRD=${INITRD:-$OUT/initrd.img}
[ -f "$KERNEL" ] && [ -f "$INITRD" ] || { echo "boot-test: build the guest first (guest/build-guest.sh)" >&2; exit 1; }

TAG=gg-boottest-$$
PIDS=(); LOGS=(); RAMS=()
cleanup() {
    [ "$KEEP" = 1 ] && return 0
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -f "${RAMS[@]}" "${LOGS[@]}" /tmp/$TAG-*.qmp
}
trap cleanup EXIT

start=$EPOCHREALTIME
for i in $(seq 1 "$N"); do
    ram=/dev/shm/$TAG-$i.ram; log=/tmp/$TAG-$i.log; qmp=/tmp/$TAG-$i.qmp
    RAMS+=("$ram"); LOGS+=("$log"); : >"$log"
    qemu-system-x86_64 -machine q35,accel=tcg,memory-backend=ram0 -m "${RAM}M" \
        -object "memory-backend-file,id=ram0,size=${RAM}M,mem-path=$ram,share=on" \
        -smp 1 -nodefaults -display none -serial file:"$log" \
        -kernel "$KERNEL" -initrd "$INITRD" \
        -append "$CMDLINE gangmig.seed=$((SEED0 + i - 1)) gangmig.mem_mib=$MEM gangmig.dirty_rate=$RATE gangmig.shared_pct=$PCT" \
        -qmp unix:"$qmp",server=on,wait=off 2>/dev/null &
    PIDS+=($!)
done

declare -a BOOTED READY
left=$N
while [ "$left" -gt 0 ]; do
    now=$EPOCHREALTIME
    for i in $(seq 1 "$N"); do
        [ -n "${READY[$i]:-}" ] && continue
        mapfile -t lines <"${LOGS[$((i - 1))]}"
        for l in "${lines[@]}"; do
            l=${l%$'\r'}
            if [ -z "${BOOTED[$i]:-}" ] && [ "$l" = "gangmig-guest: booted" ]; then BOOTED[$i]=$now; fi
            if [ "$l" = "gangmig-guest: ready" ]; then READY[$i]=$now; left=$((left - 1)); fi
            case "$l" in "gangmig-guest: workload exited"*|"gangmig-guest: error"*)
                echo "boot-test: VM $i failed:" >&2; tail -n 8 "${LOGS[$((i - 1))]}" >&2; exit 1 ;;
            esac
        done
        kill -0 "${PIDS[$((i - 1))]}" 2>/dev/null || { echo "boot-test: VM $i exited" >&2; cat "${LOGS[$((i - 1))]}" >&2; exit 1; }
    done
    el=$(( (${now/./} - ${start/./}) / 1000000 ))
    if [ "$el" -ge "$TIMEOUT" ]; then
        echo "boot-test: timeout after ${TIMEOUT}s ($left VM(s) not ready)" >&2
        for l in "${LOGS[@]}"; do echo "--- $l"; tail -n 5 "$l"; done >&2
        exit 1
    fi
    sleep 0.1
done
secs() { local d=$(( ${1/./} - ${start/./} )); printf '%d.%02d' $((d / 1000000)) $((d % 1000000 / 10000)); }
max=0
for i in $(seq 1 "$N"); do
    cpu=$(awk '{printf "%.1f", ($14 + $15) / 100}' /proc/"${PIDS[$((i - 1))]}"/stat)
    echo "vm$i booted=$(secs "${BOOTED[$i]}")s ready=$(secs "${READY[$i]}")s qemu_cpu=${cpu}s  $(grep -m1 'gangmig-guest: params' "${LOGS[$((i - 1))]}" | tr -d '\r' | sed 's/.*params //')"
    d=$(( ${READY[$i]/./} - ${start/./} )); [ "$d" -gt "$max" ] && max=$d
done
echo "all $N ready after $(printf '%d.%02d' $((max / 1000000)) $((max % 1000000 / 10000)))s"

if [ "$SHARE" = 1 ]; then
    sleep 2   # let the re-dirty loop run a little
    python3 "$SCRIPT_DIR/page-share.py" "${RAMS[@]}"
fi
if [ "$KEEP" = 1 ]; then
    for i in $(seq 1 "$N"); do echo "kept vm$i pid=${PIDS[$((i - 1))]} ram=${RAMS[$((i - 1))]} log=${LOGS[$((i - 1))]} qmp=/tmp/$TAG-$i.qmp"; done
fi
