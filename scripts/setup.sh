#!/usr/bin/env bash
# Installs everything gangmig needs on Debian bookworm (as root), builds it, and builds
# the guest image. Safe to run again: every step skips what is already done.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(build-essential cmake ninja-build pkg-config libssl-dev nlohmann-json3-dev
          libgtest-dev libgmock-dev libbenchmark-dev libxxhash-dev libzstd-dev libipsec-mb-dev qemu-system-x86 qemu-utils
          busybox-static cpio gzip iproute2 python3 xz-utils ca-certificates
          libvirt-daemon-system libvirt-clients)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: missing packages (${missing[*]}); run this script as root" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

BUILD_TYPE=${BUILD_TYPE:-RelWithDebInfo}
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE="$BUILD_TYPE" ${CMAKE_ARGS:-} >/dev/null
ninja -C build

guest/build-guest.sh
