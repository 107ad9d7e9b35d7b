#!/usr/bin/env bash
# Two libvirt "hosts" on this one machine, for tests of gangmig with libvirt (issue 12):
# each libvirtd runs in a private mount namespace with its own /run, /etc/libvirt,
# /var/lib/libvirt, /var/cache/libvirt and /var/log/libvirt (bind mounts of BASE/HOST/...)
# and its own host_uuid (libvirt refuses to migrate "to the same host" otherwise).
#
#   scripts/libvirt-hosts.sh start BASE     starts hosts a and b under BASE
#   scripts/libvirt-hosts.sh uri BASE HOST  prints the URI of HOST (a or b)
#   scripts/libvirt-hosts.sh define BASE HOST NAME MEM_MIB SEED GUEST_DIR [DIRTY_RATE]
#                                           defines and starts a TCG domain NAME from the
#                                           project's guest image, its RAM a file in
#                                           BASE/HOST/ram (memory_backing_dir); its
#                                           workload re-dirties DIRTY_RATE pages/s (200).
#                                           DISK_MIB=N in the environment: also a raw
#                                           disk of N MiB (half random), at
#                                           /var/lib/libvirt/images/NAME.img on HOST, and
#                                           an empty one of that size on the other host
#                                           (--copy-storage-all copies into it)
#   scripts/libvirt-hosts.sh stop BASE      stops both daemons (and their domains)
#
# Per host: BASE/HOST/run/gangmig is where migration sockets go (a domain migrated with
# --migrateuri unix:///run/gangmig/NAME.sock connects there on the source host and
# listens there on the destination host). QEMU runs as root in these test hosts; a real
# host runs it as libvirt-qemu, and that directory must then be root:libvirt-qemu 0770.
set -euo pipefail

cmd=${1:?usage: $0 start|uri|define|stop BASE ...}
base=${2:?BASE directory}

uri() { echo "qemu+unix:///system?socket=$base/$1/run/libvirt/libvirt-sock"; }

start_host() {
  local h=$1 uuid=$2 root="$base/$1"
  mkdir -p "$root"/{run,etc,lib,cache,log,ram} "$root/run/gangmig"
  if [ ! -d "$root/etc/libvirt" ]; then
    cp -a /etc/libvirt "$root/etc/libvirt"
    {
      echo "host_uuid = \"$uuid\""
      echo 'unix_sock_group = "root"'
      echo 'unix_sock_rw_perms = "0770"'
      echo 'auth_unix_rw = "none"'
    } >> "$root/etc/libvirt/libvirtd.conf"
    {
      echo 'cgroup_controllers = [ ]'
      echo "memory_backing_dir = \"$root/ram\""
      echo 'user = "root"'
      echo 'group = "root"'
      echo 'dynamic_ownership = 0'
      echo 'stdio_handler = "file"'
      echo 'security_driver = "none"'
      echo 'namespaces = [ ]'
    } >> "$root/etc/libvirt/qemu.conf"
  fi
  unshare --mount --propagation private -- bash -c "
    set -e
    mount --bind '$root/run' /run
    mount --bind '$root/etc/libvirt' /etc/libvirt
    mkdir -p /var/lib/libvirt /var/cache/libvirt /var/log/libvirt
    mount --bind '$root/lib' /var/lib/libvirt
    mount --bind '$root/cache' /var/cache/libvirt
    mount --bind '$root/log' /var/log/libvirt
    mkdir -p /var/lib/libvirt/qemu /var/cache/libvirt/qemu /var/log/libvirt/qemu /run/libvirt
    exec libvirtd --daemon --pid-file /run/libvirtd.pid
  "
  for _ in $(seq 100); do
    [ -S "$root/run/libvirt/libvirt-sock" ] && virsh -q -c "$(uri "$h")" version >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "libvirt-hosts: libvirtd of host $h did not come up (see $root/log)" >&2
  return 1
}

case $cmd in
  start)
    start_host a 11111111-2222-3333-4444-000000000001
    start_host b 11111111-2222-3333-4444-000000000002
    ;;
  uri)
    uri "${3:?HOST}"
    ;;
  define)
    h=${3:?HOST} name=${4:?NAME} mem=${5:?MEM_MIB} seed=${6:?SEED} guest=${7:?GUEST_DIR}
    dirty=${8:-200}
    # libvirt rounds guest RAM up to whole MiB, so the testbed's 8 KiB padding against
    # QEMU 7.2 TCG's dirty-tracking loss (docs/DESIGN.md) cannot apply here: RAM checks
    # need guests that do not write during the migration (DIRTY_RATE 0).
    kib=$((mem * 1024))
    disk_xml=""
    if [ -n "${DISK_MIB:-}" ]; then
      other=a; [ "$h" = a ] && other=b
      mkdir -p "$base/$h/lib/images" "$base/$other/lib/images"
      img="$base/$h/lib/images/$name.img"
      head -c $((DISK_MIB / 2 * 1048576)) /dev/urandom > "$img"
      truncate -s "${DISK_MIB}M" "$img"
      truncate -s "${DISK_MIB}M" "$base/$other/lib/images/$name.img"
      disk_xml="<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='/var/lib/libvirt/images/$name.img'/><target dev='vda' bus='virtio'/></disk>"
    fi
    xml="$base/$h/$name.xml"
    cat > "$xml" <<EOF
<domain type='qemu'>
  <name>$name</name>
  <memory unit='KiB'>$kib</memory>
  <vcpu>1</vcpu>
  <memoryBacking><source type='file'/><access mode='shared'/></memoryBacking>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    <kernel>$guest/vmlinux</kernel>
    <initrd>$guest/initrd.img</initrd>
    <cmdline>console=ttyS0 quiet panic=-1 cryptomgr.notests tsc=reliable no_timer_check gangmig.seed=$seed gangmig.mem_mib=64 gangmig.dirty_rate=$dirty</cmdline>
  </os>
  <on_poweroff>destroy</on_poweroff>
  <on_crash>destroy</on_crash>
  <devices>
    <serial type='file'><source path='$base/$h/$name.serial'/><target port='0'/></serial>
    <console type='file'><source path='$base/$h/$name.serial'/><target type='serial' port='0'/></console>
    <memballoon model='none'/>
    $disk_xml
  </devices>
</domain>
EOF
    virsh -q -c "$(uri "$h")" define "$xml" >/dev/null
    virsh -q -c "$(uri "$h")" start "$name" >/dev/null
    ;;
  stop)
    for h in a b; do
      pidfile="$base/$h/run/libvirtd.pid"
      [ -f "$pidfile" ] || continue
      for d in $(virsh -q -c "$(uri "$h")" list --name 2>/dev/null); do
        virsh -q -c "$(uri "$h")" destroy "$d" >/dev/null 2>&1 || true
      done
      kill "$(cat "$pidfile")" 2>/dev/null || true
    done
    ;;
  *)
    echo "usage: $0 start|uri|define|stop BASE ..." >&2
    exit 2
    ;;
esac
