#!/usr/bin/env bash
# Build the gangmig test guest: a Debian kernel + a busybox initramfs that
# carries a deterministic userland payload and the gangmig workload.
#
# Usage: guest/build-guest.sh [OPTIONS] [OUTDIR]
#   OUTDIR               default: guest/out next to this script
#   --payload-mib N      payload size budget in MiB (default 40)
#   --flavour NAME       payload selection: std (default, written to OUTDIR)
#                        or alt (mostly different files, written to OUTDIR/alt)
#   --kernel K           Debian kernel build: default (linux-image-amd64) or
#                        cloud (linux-image-cloud-amd64); default: default for
#                        std, cloud for alt (a hetero gang mixes two kernels)
#   --compress C         initrd compression: lz4 (default), gzip (-1), zstd, none
#   --force              rebuild everything that is not a download cache
#   -h, --help
#
# Produces OUTDIR[/NAME]/{vmlinuz,vmlinux,initrd.img,manifest.txt,payload.list}
# (vmlinux = the kernel's uncompressed ELF, boots much faster under TCG).
# Downloads (kernel and payload .debs) are cached in OUTDIR/.cache.
# Needs root on a machine that lacks the build packages or the cached .debs
# (apt-get install / apt-get download); nothing is installed into /boot.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SCRIPT_PATH="$SCRIPT_DIR/$(basename "${BASH_SOURCE[0]}")"

PAYLOAD_MIB=40
FLAVOUR=std
COMPRESS=lz4
COMPRESS_SET=0
KERNEL=""
FORCE=0
OUTDIR=""

usage() { sed -n '2,21p' "$SCRIPT_PATH" | sed 's/^# \{0,1\}//'; }
die() { echo "build-guest: error: $*" >&2; exit 1; }
log() { echo "build-guest: $*" >&2; }

while [ $# -gt 0 ]; do
    case "$1" in
        --payload-mib) PAYLOAD_MIB=${2:?}; shift 2 ;;
        --payload-mib=*) PAYLOAD_MIB=${1#*=}; shift ;;
        --flavour|--flavor) FLAVOUR=${2:?}; shift 2 ;;
        --flavour=*|--flavor=*) FLAVOUR=${1#*=}; shift ;;
        --compress) COMPRESS=${2:?}; COMPRESS_SET=1; shift 2 ;;
        --compress=*) COMPRESS=${1#*=}; COMPRESS_SET=1; shift ;;
        --kernel) KERNEL=${2:?}; shift 2 ;;
        --kernel=*) KERNEL=${1#*=}; shift ;;
        --force) FORCE=1; shift ;;
        -h|--help) usage; exit 0 ;;
        -*) die "unknown option $1 (see --help)" ;;
        *) [ -z "$OUTDIR" ] || die "more than one OUTDIR"; OUTDIR=$1; shift ;;
    esac
done
[[ "$PAYLOAD_MIB" =~ ^[0-9]+$ ]] || die "--payload-mib wants a whole number of MiB"
case "$COMPRESS" in gzip|zstd|lz4|none) ;; *) die "--compress: gzip|zstd|lz4|none" ;; esac

# ---------------------------------------------------------------------------
# Payload package lists (order matters: files are taken package by package,
# then by sorted path, while they fit in the budget).  The two flavours share
# only a small base (libgcc-s1, zlib1g, libstdc++6).
PAYLOAD_STD=(
    libgcc-s1 zlib1g libstdc++6 libc6 libssl3 libzstd1 liblzma5 libbz2-1.0 liblz4-1
    libcrypt1 libselinux1 libpcre2-8-0 libcap2 libacl1 libattr1 libtinfo6
    libncursesw6 libreadline8 libsystemd0 libudev1 libmount1 libblkid1
    libffi8 libexpat1 libsqlite3-0 bash coreutils
    python3.11-minimal libpython3.11-minimal libpython3.11 libpython3.11-stdlib
    openssl util-linux systemd libapt-pkg6.0 apt dpkg findutils grep sed tar gzip
    libgnutls30 libp11-kit0 libunistring2 libidn2-0 libgmp10 libnettle8 libhogweed6
    libkrb5-3 libk5crypto3 libkrb5support0 libgssapi-krb5-2 libkeyutils1 libcom-err2
    libcurl4 libnghttp2-14 libbrotli1 libssh2-1 libldap-2.5-0 libsasl2-2
    libgcrypt20 libdb5.3 libext2fs2 e2fsprogs vim vim-runtime libz3-4
    libqt5core5a libboost-regex1.74.0
)
PAYLOAD_ALT=(
    libgcc-s1 zlib1g libstdc++6 libxml2 libglib2.0-0 libx11-6 libxcb1 libxau6
    libxdmcp6 libbsd0 libmd0 libmpfr6 libisl23 libbinutils libctf0 libgprofng0
    binutils libjansson4 perl-base libperl5.36 perl-modules-5.36 libicu72
    libgtk-3-0 libcairo2 libpango-1.0-0 libharfbuzz0b libfreetype6 libpixman-1-0
    libpng16-16 libjpeg62-turbo libavcodec59 libgl1-mesa-dri
)
# Packages the build itself needs on the host.
BUILD_PKGS=(busybox-static cpio gcc libc6-dev binutils xz-utils gzip)
case "$COMPRESS" in zstd) BUILD_PKGS+=(zstd) ;; lz4) BUILD_PKGS+=(lz4) ;; esac

case "$FLAVOUR" in
    std) PAYLOAD_PKGS=("${PAYLOAD_STD[@]}"); KERNEL=${KERNEL:-default} ;;
    alt) PAYLOAD_PKGS=("${PAYLOAD_ALT[@]}"); KERNEL=${KERNEL:-cloud} ;;
    *) die "unknown flavour '$FLAVOUR' (std, alt)" ;;
esac
# Kernel builds: the metapackage to resolve, and the shape of the versioned
# package it depends on (linux-image-6.1.0-56-amd64, ...-56-cloud-amd64).
case "$KERNEL" in
    default) KMETA=linux-image-amd64 ;;
    cloud)   KMETA=linux-image-cloud-amd64
             # Its bzImage payload is lz4-compressed: lz4 unpacks vmlinux.
             [[ " ${BUILD_PKGS[*]} " == *" lz4 "* ]] || BUILD_PKGS+=(lz4) ;;
    *) die "--kernel: default|cloud" ;;
esac
kpkg_filter() { # stdin: package (or .deb file) names; stdout: those of $KERNEL
    if [ "$KERNEL" = default ]; then
        grep -E '^linux-image-[0-9][^_]*-amd64(_|$)' | grep -Ev -- '-(cloud|rt)-amd64(_|$)'
    else
        grep -E '^linux-image-[0-9][^_]*-cloud-amd64(_|$)'
    fi
}

# Kernel command line the guest is tested with (gangmig.* parameters added).
RECOMMENDED_CMDLINE="console=ttyS0 quiet panic=-1 cryptomgr.notests tsc=reliable no_timer_check"

# Paths excluded from the payload (documentation, translations, glibc's
# charset-conversion modules, which a running system rarely has cached).
EXCLUDE_RE='^[.]/usr/(share/(doc|man|info|locale|lintian|bug|bash-completion)|lib/x86_64-linux-gnu/gconv)/'

BASE_OUT=${OUTDIR:-$SCRIPT_DIR/out}
mkdir -p "$BASE_OUT"
BASE_OUT=$(cd "$BASE_OUT" && pwd)
if [ "$FLAVOUR" = std ]; then OUT=$BASE_OUT; else OUT=$BASE_OUT/$FLAVOUR; fi
CACHE=$BASE_OUT/.cache
mkdir -p "$OUT" "$CACHE/debs" "$CACHE/x"
export LC_ALL=C
T_START=$(date +%s)

# ---------------------------------------------------------------------------
# apt helpers
APT_UPDATED=0
apt_lists_present() { compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; }
apt_update() {
    [ "$APT_UPDATED" = 1 ] && return 0
    [ "$(id -u)" = 0 ] || die "apt-get update needed but not root"
    log "apt-get update"
    apt-get update -qq >&2 || die "apt-get update failed"
    APT_UPDATED=1
}
apt_update_if_needed() {
    if ! apt_lists_present || [ -z "$(apt-cache policy "$KMETA" 2>/dev/null | awk '/Candidate:/{print $2}' | grep -v '(none)')" ]; then
        apt_update
    fi
}
ensure_build_pkgs() {
    local missing=() p
    local -A ok=()
    while read -r p st; do
        [ "$st" = "install ok installed" ] && ok[$p]=1
    done < <(dpkg-query -W -f='${Package} ${Status}\n' "${BUILD_PKGS[@]}" 2>/dev/null || true)
    for p in "${BUILD_PKGS[@]}"; do [ -n "${ok[$p]:-}" ] || missing+=("$p"); done
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$(id -u)" = 0 ] || die "missing packages (${missing[*]}); run as root"
    apt_update_if_needed
    log "apt-get install ${missing[*]}"
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2; then
        apt_update
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 ||
            die "apt-get install ${missing[*]} failed"
    fi
}

# deb_fetch PKG... : fills DEB[pkg]=path of the cached .deb of the archive's
# candidate version, downloading the missing ones in one apt-get call.
# Offline fallback: the newest cached .deb of that package.
declare -A DEB=()
deb_fetch() {
    local uris pkg file size need=() f s n
    local -A want_file=() want_size=() have_size=()
    uris=$(apt-get download --print-uris "$@" 2>/dev/null || true)
    n=0; while read -r _ file _; do [ -n "$file" ] && n=$((n + 1)); done <<<"$uris"
    if [ "$n" -lt $# ]; then
        apt_update_if_needed
        uris=$(apt-get download --print-uris "$@" 2>/dev/null || true)
    fi
    # Lines: 'URI' NAME_VERSION_ARCH.deb SIZE HASH
    while read -r _ file size _; do
        [ -n "$file" ] || continue
        want_file[${file%%_*}]=$file; want_size[${file%%_*}]=$size
    done <<<"$uris"
    while read -r f s; do
        [ -n "$f" ] && have_size[${f##*/}]=$s
    done < <(find "$CACHE/debs" -maxdepth 1 -name '*.deb' -printf '%p %s\n')
    for pkg in "$@"; do
        file=${want_file[$pkg]:-}
        if [ -z "$file" ]; then
            file=$(ls -1 "$CACHE/debs/${pkg}"_*.deb 2>/dev/null | sort -V | tail -n1 || true)
            [ -n "$file" ] || die "cannot resolve package $pkg (apt-get update? offline?)"
            log "warning: using cached ${file##*/} (apt cannot resolve $pkg)"
            DEB[$pkg]=$file
            continue
        fi
        DEB[$pkg]=$CACHE/debs/$file
        [ "${have_size[$file]:-}" = "${want_size[$pkg]}" ] || need+=("$pkg")
    done
    [ ${#need[@]} -eq 0 ] && return 0
    [ "$(id -u)" = 0 ] || die "need to download ${need[*]} but not root"
    log "downloading ${#need[@]} package(s): ${need[*]}"
    if ! (cd "$CACHE/debs" && apt-get download -qq -o APT::Sandbox::User=root "${need[@]}" >&2); then
        apt_update
        (cd "$CACHE/debs" && apt-get download -qq -o APT::Sandbox::User=root "${need[@]}" >&2) ||
            die "apt-get download ${need[*]} failed"
        deb_fetch "$@"   # re-resolve file names after the update
    fi
}
# deb_extract DEB [PATTERN] -> prints dir with its extracted contents (cached);
# PATTERN limits extraction to matching members (e.g. './boot/*').
deb_extract() {
    local deb=$1 pat=${2:-} dir
    dir=${deb##*/}; dir=$CACHE/x/${dir%.deb}
    if [ ! -f "$dir/.done" ]; then
        rm -rf "$dir"; mkdir -p "$dir"
        if [ -n "$pat" ]; then
            dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$dir" --wildcards "$pat"
        else
            dpkg-deb -x "$deb" "$dir"
        fi
        touch "$dir/.done"
    fi
    echo "$dir"
}
newer() { # newer OUT IN... : true if OUT exists and is newer than every IN
    local out=$1; shift
    [ -e "$out" ] || return 1
    local i; for i in "$@"; do [ "$out" -nt "$i" ] || return 1; done
}

ensure_build_pkgs

# ---------------------------------------------------------------------------
# 1. Kernel
KPKG=$(apt-cache depends "$KMETA" 2>/dev/null | awk '/Depends:/{gsub(/[<>]/,"",$2); print $2}' | kpkg_filter | head -n1 || true)
if [ -z "$KPKG" ]; then
    apt_update_if_needed
    KPKG=$(apt-cache depends "$KMETA" 2>/dev/null | awk '/Depends:/{gsub(/[<>]/,"",$2); print $2}' | kpkg_filter | head -n1 || true)
fi
if [ -z "$KPKG" ]; then
    # Offline: fall back to a cached kernel .deb of the same build.
    KDEB=$( (cd "$CACHE/debs" && ls -1 linux-image-[0-9]*-amd64_*.deb 2>/dev/null) | kpkg_filter | sort -V | tail -n1 || true)
    [ -n "$KDEB" ] || die "cannot resolve the package behind $KMETA"
    KDEB=$CACHE/debs/$KDEB
    KPKG=${KDEB##*/}; KPKG=${KPKG%%_*}
else
    deb_fetch "$KPKG" "${PAYLOAD_PKGS[@]}"   # one apt-get call resolves all
    KDEB=${DEB[$KPKG]}
fi
KVER_DEB=$(dpkg-deb -f "$KDEB" Version)
KDIR=$(deb_extract "$KDEB" './boot/*')
KIMG=$(ls -1 "$KDIR"/boot/vmlinuz-* | head -n1)
[ -f "$KIMG" ] || die "no boot/vmlinuz-* in $KDEB"
KREL=${KIMG##*/vmlinuz-}
# Built-in features we rely on (no modules are shipped in the initrd): the
# ttyS0 console (8250 + its console), devtmpfs/proc/sysfs/tmpfs for /init, the
# initramfs and its compression, PVH boot of vmlinux.  The testbed's QEMU
# command line adds no other device (-nodefaults, no disk, no NIC).
KCONFIG="$KDIR/boot/config-$KREL"
[ -f "$KCONFIG" ] || die "no boot/config-$KREL in $KDEB"
rd_opt() {
    case "$1" in
        gzip) echo CONFIG_RD_GZIP ;; zstd) echo CONFIG_RD_ZSTD ;; lz4) echo CONFIG_RD_LZ4 ;; none) echo ;;
    esac
}
kernel_lacks() { # kernel_lacks OPT... : prints those not =y in $KCONFIG
    awk -v want="$*" '
    BEGIN { n = split(want, w, " "); for (i = 1; i <= n; i++) need[w[i]] = 1 }
    /=y$/ { split($0, kv, "="); delete need[kv[1]] }
    END { for (k in need) printf "%s ", k }' "$KCONFIG"
}
rdopt=$(rd_opt "$COMPRESS")
if [ -n "$rdopt" ] && [ -n "$(kernel_lacks "$rdopt")" ] && [ "$COMPRESS_SET" = 0 ] &&
   [ -z "$(kernel_lacks CONFIG_RD_GZIP)" ]; then
    log "warning: kernel $KREL cannot unpack a $COMPRESS initrd; using gzip"
    COMPRESS=gzip; rdopt=CONFIG_RD_GZIP
fi
missing_opts=$(kernel_lacks CONFIG_SERIAL_8250 CONFIG_SERIAL_8250_CONSOLE CONFIG_DEVTMPFS CONFIG_BLK_DEV_INITRD CONFIG_PROC_FS CONFIG_SYSFS CONFIG_TMPFS CONFIG_PVH $rdopt)
[ -z "$missing_opts" ] || die "kernel $KREL lacks built-in: $missing_opts"
if ! cmp -s "$KIMG" "$OUT/vmlinuz" 2>/dev/null; then
    cp "$KIMG" "$OUT/vmlinuz.tmp" && mv "$OUT/vmlinuz.tmp" "$OUT/vmlinuz"
    log "kernel: $KPKG $KVER_DEB -> $OUT/vmlinuz"
else
    log "kernel: $KPKG $KVER_DEB (up to date)"
fi
# vmlinux: the uncompressed ELF inside the bzImage.  QEMU boots it through its
# PVH entry point (CONFIG_PVH), which skips the bzImage's self-decompression:
# under TCG that xz decompression alone costs ~5-15 s of CPU per boot.  The
# payload ends with the uncompressed size (le32: size_append, or gzip's ISIZE).
if [ "$FORCE" = 1 ] || ! newer "$OUT/vmlinux" "$OUT/vmlinuz"; then
    # boot protocol: setup_sects @0x1f1, payload_offset @0x248, payload_length @0x24c
    read -r setup_sects < <(od -An -t u1 -j $((0x1f1)) -N 1 "$OUT/vmlinuz")
    [ "$setup_sects" -ne 0 ] || setup_sects=4
    read -r poff plen < <(od -An -t u4 -j $((0x248)) -N 8 "$OUT/vmlinuz")
    off=$(( (setup_sects + 1) * 512 + poff ))
    magic=$(od -An -t x1 -j "$off" -N 6 "$OUT/vmlinuz" | tr -d ' \n')
    read -r usize < <(od -An -t u4 -j $((off + plen - 4)) -N 4 "$OUT/vmlinuz")
    zlen=$plen
    case "$magic" in
        fd377a585a00) UNZ=(xz -dc --single-stream) ;;
        1f8b*) UNZ=(gzip -dc) ;;
        28b52ffd*) UNZ=(zstd -dc) ;;
        # lz4 legacy frame (CONFIG_KERNEL_LZ4, e.g. the cloud kernel): the
        # trailing size would be read as a block header, so leave it out.
        02214c18*) UNZ=(lz4 -dc); zlen=$((plen - 4)) ;;
        *) die "unknown kernel payload compression (magic $magic)" ;;
    esac
    command -v "${UNZ[0]}" >/dev/null || die "${UNZ[0]} needed to unpack the kernel"
    tail -c +$((off + 1)) "$OUT/vmlinuz" | head -c "$zlen" | "${UNZ[@]}" >"$OUT/vmlinux.tmp" 2>/dev/null || true
    [ "$(stat -c %s "$OUT/vmlinux.tmp")" = "$usize" ] ||
        die "extracted vmlinux has $(stat -c %s "$OUT/vmlinux.tmp") bytes, the bzImage says $usize"
    readelf -n "$OUT/vmlinux.tmp" 2>/dev/null | grep -q 'Unknown note type: (0x00000012)' ||
        die "extracted vmlinux has no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY)"
    mv "$OUT/vmlinux.tmp" "$OUT/vmlinux"
    log "kernel: extracted PVH-bootable $OUT/vmlinux ($(stat -c %s "$OUT/vmlinux") bytes)"
fi

# ---------------------------------------------------------------------------
# 2. Workload (static)
WL=$CACHE/gangmig-workload
if [ "$FORCE" = 1 ] || ! newer "$WL" "$SCRIPT_DIR/workload.c"; then
    log "compiling workload"
    gcc -static -O2 -Wall -Wextra -o "$WL.tmp" "$SCRIPT_DIR/workload.c"
    strip "$WL.tmp"
    mv "$WL.tmp" "$WL"
fi

# ---------------------------------------------------------------------------
# 3. Payload debs
[ -n "${DEB[${PAYLOAD_PKGS[0]}]:-}" ] || deb_fetch "${PAYLOAD_PKGS[@]}"
PAYLOAD_DEBS=()
for p in "${PAYLOAD_PKGS[@]}"; do PAYLOAD_DEBS+=("${DEB[$p]}"); done

# ---------------------------------------------------------------------------
# 4. Initramfs
BUSYBOX=/bin/busybox
[ -x "$BUSYBOX" ] || BUSYBOX=/usr/bin/busybox
SIG="flavour=$FLAVOUR payload_mib=$PAYLOAD_MIB compress=$COMPRESS kernel_build=$KERNEL kernel=${KDEB##*/} busybox=$(dpkg-query -W -f='${Version}' busybox-static 2>/dev/null || echo ?)"
for d in "${PAYLOAD_DEBS[@]}"; do SIG+=" ${d##*/}"; done
STAMP=$OUT/.initrd.inputs
if [ "$FORCE" = 0 ] && [ -f "$STAMP" ] && [ "$(<"$STAMP")" = "$SIG" ] &&
   newer "$OUT/initrd.img" "$SCRIPT_DIR/init" "$WL" "$SCRIPT_PATH" "$BUSYBOX" && [ -f "$OUT/manifest.txt" ]; then
    log "initrd: up to date ($OUT/initrd.img)"
    exit 0
fi

STAGE=$(mktemp -d "$CACHE/stage.XXXXXX")
LISTS=$(mktemp -d "$CACHE/lists.XXXXXX")
trap 'rm -rf "$STAGE" "$LISTS"' EXIT

log "staging initramfs ($FLAVOUR, payload ${PAYLOAD_MIB} MiB)"
mkdir -p "$STAGE"/{bin,dev,proc,sys,tmp,run,etc,root,usr/bin,usr/sbin,usr/lib,var/tmp}
ln -s bin "$STAGE/sbin"
chmod 1777 "$STAGE/tmp" "$STAGE/var/tmp"
cp "$BUSYBOX" "$STAGE/bin/busybox"
# Applet links (perl-base is Essential in Debian; one process, not 270 ln).
"$BUSYBOX" --list | perl -e 'my $d = shift; while (<STDIN>) { chomp;
    next if $_ eq "busybox" or $_ eq ""; symlink("busybox", "$d/$_") or die "symlink $_: $!\n" }' "$STAGE/bin"
cp "$WL" "$STAGE/bin/gangmig-workload"
install -m 0755 "$SCRIPT_DIR/init" "$STAGE/init"
if [ "$(id -u)" = 0 ]; then
    mknod -m 600 "$STAGE/dev/console" c 5 1
    mknod -m 666 "$STAGE/dev/null" c 1 3
fi   # otherwise /init mounts devtmpfs before printing anything

# Select payload files: package order, then sorted path, first fit in the
# budget.  Package trees are usr-merged (bin, sbin, lib* -> usr/...) as on an
# installed bookworm system, so nothing lands on top of busybox's /bin.
budget=$((PAYLOAD_MIB * 1024 * 1024))
total=0; count=0
: >"$LISTS/payload.list"
for deb in "${PAYLOAD_DEBS[@]}"; do
    dir=$(deb_extract "$deb")
    if [ ! -f "$dir/.usrmerged" ]; then
        for d in bin sbin lib lib32 lib64 libx32; do
            if [ -d "$dir/$d" ] && [ ! -L "$dir/$d" ]; then
                mkdir -p "$dir/usr/$d" && cp -a "$dir/$d/." "$dir/usr/$d/" && rm -rf "${dir:?}/$d"
            fi
        done
        touch "$dir/.usrmerged"
    fi
    name=${deb##*/}; name=${name%.deb}
    # Hard links (e.g. perl and perl5.36.0) count once; names with blanks,
    # quotes or backslashes are skipped (the list is read by busybox xargs).
    read -r total n < <(cd "$dir" && find ./usr ./etc -type f -printf '%s %i %p\n' 2>/dev/null | sort -k3 |
        awk -v total="$total" -v budget="$budget" -v pkg="$name" -v ex="$EXCLUDE_RE" \
            -v take="$LISTS/take" -v plist="$LISTS/payload.list" '
            BEGIN { printf "" > take }
            { size = $1; ino = $2; rest = substr($0, index($0, " ") + 1)
              path = substr(rest, index(rest, " ") + 1)
              if (path ~ ex || path ~ /[ \t"\047\\]/) next
              if (ino in seen) size = 0
              if (total + size <= budget) {
                  seen[ino] = 1
                  total += size; n++
                  print path > take
                  print size, substr(path, 2), pkg >> plist
              } }
            END { print total, n + 0 }')
    count=$((count + n))
    if [ "$n" -gt 0 ]; then
        (cd "$dir" && cpio -pdm --quiet "$STAGE" <"$LISTS/take")
    fi
    if [ "$total" -ge "$budget" ]; then break; fi
done
# /etc/gangmig-payload.list: what /init pre-reads.
awk '{print $2}' "$LISTS/payload.list" >"$STAGE/etc/gangmig-payload.list"
cp "$LISTS/payload.list" "$OUT/payload.list"
if [ "$total" -lt $((budget * 9 / 10)) ]; then
    log "warning: payload only $total bytes of $budget (package lists too short?)"
fi

# Reproducible archive: fixed mtimes, sorted names, root-owned.
EPOCH=${SOURCE_DATE_EPOCH:-1700000000}
find "$STAGE" -exec touch -h -d "@$EPOCH" {} +
log "packing initrd ($COMPRESS)"
case "$COMPRESS" in
    gzip) ZCMD=(gzip -1 -n -c) ;;
    zstd) ZCMD=(zstd -q -3 -T0 -c) ;;
    lz4)  ZCMD=(lz4 -l -q -c) ;;
    none) ZCMD=(cat) ;;
esac
(cd "$STAGE" && find . -mindepth 1 | sort | cpio -o -H newc -R 0:0 --reproducible --quiet) |
    "${ZCMD[@]}" >"$OUT/initrd.img.tmp"
mv "$OUT/initrd.img.tmp" "$OUT/initrd.img"

nfiles=$(find "$STAGE" -mindepth 1 | wc -l)
ustage=$(du -sb "$STAGE" | awk '{print $1}')
{
    echo "gangmig guest manifest"
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "flavour: $FLAVOUR"
    echo "kernel_build: $KERNEL ($KMETA)"
    echo "kernel_package: $KPKG"
    echo "kernel_version: $KVER_DEB"
    echo "kernel_release: $KREL"
    echo "kernel_sha256: $(sha256sum "$OUT/vmlinuz" | awk '{print $1}')  (vmlinuz, bzImage)"
    echo "vmlinux_bytes: $(stat -c %s "$OUT/vmlinux")  (uncompressed ELF, PVH boot: use -kernel vmlinux)"
    echo "busybox: busybox-static $(dpkg-query -W -f='${Version}' busybox-static 2>/dev/null || echo unknown)"
    echo "initrd_compression: $COMPRESS"
    echo "initrd_bytes: $(stat -c %s "$OUT/initrd.img")"
    echo "initrd_sha256: $(sha256sum "$OUT/initrd.img" | awk '{print $1}')"
    echo "initrd_entries: $nfiles"
    echo "initrd_unpacked_bytes: $ustage"
    echo "payload_budget_mib: $PAYLOAD_MIB"
    echo "payload_files: $count"
    echo "payload_bytes: $total"
    echo "payload_packages:"
    awk '{ n[$3]++; b[$3] += $1; if (!($3 in o)) { o[$3] = ++k; name[k] = $3 } }
         END { for (i = 1; i <= k; i++) printf "  %s files=%d bytes=%d\n", name[i], n[name[i]], b[name[i]] }' "$LISTS/payload.list"
    echo "cmdline: $RECOMMENDED_CMDLINE gangmig.seed=N gangmig.mem_mib=M gangmig.dirty_rate=R gangmig.shared_pct=P"
} >"$OUT/manifest.txt"
echo "$SIG" >"$STAMP"
log "done in $(( $(date +%s) - T_START ))s: $OUT/initrd.img ($(stat -c %s "$OUT/initrd.img") bytes, $count payload files, $total payload bytes)"
