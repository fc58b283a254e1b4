#!/usr/bin/env bash
# Build the installer stand-in's initrd: static busybox, zstd, the image kernel's NIC/disk/ext4
# modules and installer-init.sh as /init. Usage: build-installer.sh CACHEDIR OUT.img
set -euo pipefail
CACHE=${1:?usage: build-installer.sh CACHEDIR OUT}
OUTF=${2:?usage: build-installer.sh CACHEDIR OUT}
HERE=$(cd "$(dirname "$0")" && pwd)
KV=$(sed -n 's/.*"kernel": "\([^"]*\)".*/\1/p' "$CACHE/debian-lab.json")
MODSRC=$CACHE/modules/$KV
R=$(mktemp -d)
trap 'rm -rf "$R"' EXIT
mkdir -p "$R"/{bin,sbin,usr/bin,proc,sys,dev,tmp,mnt,etc,lib/modules/$KV}
BB=$(command -v busybox)
file -L "$BB" | grep -q 'statically linked' || { echo "build-installer: $BB is not static (apt-get install busybox-static)"; exit 1; }
cp "$BB" "$R/bin/busybox"
for a in $("$R/bin/busybox" --list); do [ -e "$R/bin/$a" ] || ln -s busybox "$R/bin/$a"; done
# zstd (the image is zstd-compressed: fast to unpack under TCG) and efibootmgr, with their libraries
for tool in zstd efibootmgr; do
  bin=$(command -v "$tool") || { echo "build-installer: $tool is not installed"; exit 1; }
  cp "$bin" "$R/usr/bin/$tool"
  for l in $(ldd "$bin" | awk '/=>/ {print $3} /ld-linux/ {print $1}'); do
    mkdir -p "$R$(dirname "$l")"; cp -L "$l" "$R$l"
  done
done
# modules: NICs, SATA/virtio/NVMe disks, ext4, and what they need (depmod resolves the order)
WANT="virtio_pci virtio_net e1000 e1000e ahci sd_mod virtio_blk virtio_scsi nvme ext4 crc32c_generic efivarfs"
(cd "$MODSRC" && for m in $WANT; do find kernel -name "$m.ko*" ; done) > "$R/wanted"
copy_mod() {
  local rel=$1
  [ -e "$R/lib/modules/$KV/$rel" ] && return 0
  mkdir -p "$R/lib/modules/$KV/$(dirname "$rel")"; cp "$MODSRC/$rel" "$R/lib/modules/$KV/$rel"
  for d in $(modinfo -F depends "$MODSRC/$rel" | tr ',' ' '); do
    copy_mod "$(cd "$MODSRC" && find kernel -name "$d.ko*" -o -name "$(echo "$d" | tr _ -).ko*" | head -1)"
  done
}
while read -r rel; do [ -n "$rel" ] && copy_mod "$rel"; done < "$R/wanted"
rm -f "$R/wanted"
cp "$MODSRC"/modules.builtin* "$MODSRC"/modules.order "$R/lib/modules/$KV/" 2>/dev/null || true
depmod -b "$R" "$KV"
echo "$WANT" | tr ' ' '\n' > "$R/etc/modules-load"
cat > "$R/etc/udhcpc.script" <<'S'
#!/bin/sh
case "$1" in
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" dev "$interface"
    [ -n "$router" ] && ip route add default via "${router%% *}" dev "$interface"
    : ;;
esac
S
chmod +x "$R/etc/udhcpc.script"
install -m 0755 "$HERE/installer-init.sh" "$R/init"
install -m 0755 "$HERE/kernel-append.sh" "$R/bin/kernel-append"
(cd "$R" && find . | cpio -o -H newc --quiet | gzip -1) > "$OUTF.tmp"
mv "$OUTF.tmp" "$OUTF"
echo "build-installer: $(du -h "$OUTF" | cut -f1) initrd for kernel $KV"
