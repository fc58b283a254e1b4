#!/usr/bin/env bash
# Build the lab's "installed OS": a Debian 12 disk image (GPT: BIOS-boot + ESP + ext4 root) that
# boots under SeaBIOS (GRUB i386-pc) and OVMF (GRUB x86_64-efi, removable path), with sshd, python3
# and the burn-in tools. Output: OUT/debian-lab.img.zst and OUT/debian-lab.json. Root only.
# The image carries NO ssh host keys and no authorized_keys: the installer stand-in writes them.
set -euo pipefail
OUT=${1:?usage: build-image.sh OUTDIR}
MIRROR=${LAB_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=${LAB_DEBIAN_SUITE:-bookworm}
mkdir -p "$OUT"
WORK=$(mktemp -d "$OUT/build.XXXXXX")
STAGE=$OUT/rootfs-$SUITE  # debootstrap's tree, kept: rebuilding the image must not re-download
ROOT=$WORK/rootfs
LOOP=""
cleanup() {
  set +e
  for m in "$ROOT/dev" "$ROOT/proc" "$ROOT/sys" "$ROOT"; do
    mountpoint -q "$m" && umount "$m"
  done
  [ -n "$LOOP" ] && losetup -d "$LOOP"
  rm -rf "$WORK"
}
trap cleanup EXIT
step() { echo "build-image: $(date +%T) $*"; }

PKGS=systemd-sysv,udev,linux-image-amd64,initramfs-tools,zstd,openssh-server,python3,stress-ng,fio
PKGS=$PKGS,memtester,nvme-cli,smartmontools,dmidecode,iproute2,kmod,pciutils,lshw,ethtool,procps,sudo,curl
# what the kickstart's %packages brings on Rocky and the burn-in uses: gcc for the triad, numactl, mdadm
PKGS=$PKGS,gcc,libc6-dev,numactl,mdadm
if [ ! -f "$STAGE/.complete" ] || [ "$(cat "$STAGE/.complete")" != "$PKGS" ]; then
  step "debootstrap $SUITE from $MIRROR"
  rm -rf "$STAGE"; mkdir -p "$STAGE"
  debootstrap --variant=minbase --include="$PKGS" "$SUITE" "$STAGE" "$MIRROR" > "$OUT/debootstrap.log" 2>&1 \
    || { tail -30 "$OUT/debootstrap.log"; exit 1; }
  echo "$PKGS" > "$STAGE/.complete"
fi
S=$STAGE
KV=$(basename "$(ls -d "$S"/lib/modules/*)")
step "kernel $KV; trimming"
rm -rf "$S"/usr/share/{doc,man,info,locale,lintian} "$S"/var/cache/apt/*.bin "$S"/var/cache/apt/archives/*.deb \
  "$S"/var/lib/apt/lists/* "$S"/var/log/*.log
# Drivers a q35 VM never has: the image is streamed over TCG networking, so size matters.
M=$S/lib/modules/$KV/kernel
rm -rf "$M"/drivers/{gpu,media,net/wireless,infiniband,staging,iio,isdn,bluetooth,hid,input/touchscreen,usb/gadget} \
  "$M"/sound "$M"/net/{wireless,mac80211,bluetooth}
chroot "$S" depmod "$KV"
# a small initramfs: SeaBIOS loads it through int13, which is slow under TCG
printf 'MODULES=list\nCOMPRESS=zstd\n' > "$S/etc/initramfs-tools/conf.d/lab.conf"
printf '%s\n' ahci sd_mod virtio_pci virtio_blk virtio_scsi nvme ext4 crc32c_generic > "$S/etc/initramfs-tools/modules"
chroot "$S" update-initramfs -u -k "$KV" >/dev/null 2>&1
# sshd: keys only; host keys come from the installer (generated per install, per host)
rm -f "$S"/etc/ssh/ssh_host_*
cat > "$S/etc/ssh/sshd_config.d/lab.conf" <<'CFG'
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
# Rocky's default PATH for every user includes the sbin directories (dmidecode, smartctl, nvme...)
SetEnv PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
CFG
# network: DHCP on every wired NIC; the installer replaces it with the kickstart's static address
mkdir -p "$S/etc/systemd/network"
printf '[Match]\nName=en* eth*\n\n[Network]\nDHCP=ipv4\nIPv6AcceptRA=no\n' > "$S/etc/systemd/network/10-lab.network"
chroot "$S" systemctl enable systemd-networkd ssh >/dev/null 2>&1
for u in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer systemd-networkd-wait-online.service; do
  chroot "$S" systemctl mask "$u" >/dev/null 2>&1 || true
done
echo lab-unconfigured > "$S/etc/hostname"
: > "$S/etc/machine-id"
passwd_root_locked=$(chroot "$S" passwd -l root 2>&1) || true
echo "lab-image built $(date -u +%FT%TZ) kernel $KV" > "$S/etc/lab-image"
rm -f "$S/.complete.copy"

step "disk image"
USED_MIB=$(du -sm "$S" | cut -f1)
ROOT_MIB=$(( USED_MIB * 13 / 10 + 256 ))
IMG=$WORK/disk.img
DISK_MIB=$(( ROOT_MIB + 1 + 64 + 2 ))
truncate -s "${DISK_MIB}M" "$IMG"
sfdisk -q "$IMG" <<PT
label: gpt
start=2048, size=2048, type=21686148-6449-6E6F-744E-656564454649, name=bios
size=64MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name=esp
type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=root
PT
LOOP=$(losetup -f --show -P "$IMG")
# no udev here: the partition nodes may need a nudge
for i in $(seq 50); do [ -b "${LOOP}p3" ] && break; partx -a "$LOOP" 2>/dev/null || true; sleep 0.1; done
[ -b "${LOOP}p3" ] || { echo "build-image: ${LOOP}p3 did not appear"; exit 1; }
mkfs.vfat -F 32 -n LABESP "${LOOP}p2" >/dev/null 2>&1
mkfs.ext4 -q -L lab-root -O ^metadata_csum_seed "${LOOP}p3"
UUID=$(blkid -s UUID -o value "${LOOP}p3")
mkdir -p "$ROOT"
mount "${LOOP}p3" "$ROOT"
cp -a "$S"/. "$ROOT"/
rm -f "$ROOT/.complete"
printf 'UUID=%s / ext4 defaults,errors=remount-ro 0 1\n' "$UUID" > "$ROOT/etc/fstab"
step "grub (i386-pc and x86_64-efi removable)"
# BIOS: what grub-bios-setup does, by hand (grub-install cannot map loop partitions without udev):
# boot.img in the MBR's code area, pointing at core.img in the BIOS-boot partition (sector 2048),
# and core.img's first-sector blocklist pointing at the rest of itself.
mkdir -p "$ROOT/boot/grub/i386-pc"
cp /usr/lib/grub/i386-pc/*.mod /usr/lib/grub/i386-pc/*.lst "$ROOT/boot/grub/i386-pc/"
printf 'search --no-floppy --fs-uuid --set=root %s\nset prefix=($root)/boot/grub\n' "$UUID" > "$WORK/early.cfg"
grub-mkimage -O i386-pc -o "$WORK/core.img" -c "$WORK/early.cfg" -p /boot/grub \
  biosdisk part_gpt ext2 search search_fs_uuid normal linux echo test configfile serial terminal gzio
cp "$WORK/core.img" "$ROOT/boot/grub/i386-pc/core.img"
python3 - "$IMG" "$WORK/core.img" /usr/lib/grub/i386-pc/boot.img <<'PY'
import struct, sys
img, core_path, boot_path = sys.argv[1:4]
core = bytearray(open(core_path, "rb").read())
boot = open(boot_path, "rb").read()
start = 2048
sectors = (len(core) + 511) // 512
assert sectors <= 2048, "core.img does not fit the BIOS boot partition"
struct.pack_into("<QHH", core, 0x1F4, start + 1, sectors - 1, 0x820)
with open(img, "r+b") as f:
    mbr = bytearray(f.read(512))
    mbr[0:0x1B8] = boot[0:0x1B8]
    struct.pack_into("<Q", mbr, 0x5C, start)
    f.seek(0); f.write(mbr)
    f.seek(start * 512); f.write(core)
PY
# EFI: no FAT mount here (the host kernel may lack vfat), so the ESP is filled with mtools; the
# GRUB image finds the root filesystem by UUID, as grub-install's own early config does.
grub-mkimage -O x86_64-efi -o "$WORK/BOOTX64.EFI" -c "$WORK/early.cfg" -p /boot/grub \
  part_gpt part_msdos ext2 fat search search_fs_uuid normal linux echo test configfile serial terminal gzio all_video efi_gop
mkdir -p "$ROOT/boot/grub/x86_64-efi"
cp /usr/lib/grub/x86_64-efi/*.mod /usr/lib/grub/x86_64-efi/*.lst "$ROOT/boot/grub/x86_64-efi/"
export MTOOLS_SKIP_CHECK=1
mmd -i "${LOOP}p2" ::/EFI ::/EFI/BOOT
mcopy -i "${LOOP}p2" "$WORK/BOOTX64.EFI" ::/EFI/BOOT/BOOTX64.EFI
mdir -i "${LOOP}p2" ::/EFI/BOOT | grep -q BOOTX64
test -f "$ROOT/boot/grub/i386-pc/core.img"
cat > "$ROOT/boot/grub/grub.cfg" <<CFG
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
set timeout=1
search --no-floppy --fs-uuid --set=root $UUID
menuentry "Debian lab image ($KV)" {
  linux /boot/vmlinuz-$KV root=UUID=$UUID ro console=tty0 console=ttyS0,115200 net.ifnames=0 quiet
  initrd /boot/initrd.img-$KV
}
CFG
sync
umount "$ROOT"
losetup -d "$LOOP"; LOOP=""
step "compress"
zstd -q -T0 -6 "$IMG" -o "$WORK/debian-lab.img.zst"
SHA=$(sha256sum "$WORK/debian-lab.img.zst" | cut -d' ' -f1)
SIZE=$(stat -c %s "$IMG")
mv "$WORK/debian-lab.img.zst" "$OUT/debian-lab.img.zst"
cp "$S/boot/vmlinuz-$KV" "$OUT/vmlinuz"
cat > "$OUT/debian-lab.json" <<J
{"kernel": "$KV", "suite": "$SUITE", "root_uuid": "$UUID", "image_bytes": $SIZE, "zst_sha256": "$SHA", "root_partition": 3}
J
# the installer stand-in needs the same kernel's modules: keep just the ones it loads
mkdir -p "$OUT/modules"
rm -rf "$OUT/modules/$KV"; mkdir -p "$OUT/modules/$KV"
cp -a "$S/lib/modules/$KV"/{kernel,modules.order,modules.builtin,modules.builtin.modinfo} "$OUT/modules/$KV/" 2>/dev/null || true
step "done: $(du -h "$OUT/debian-lab.img.zst" | cut -f1) compressed, ${DISK_MIB} MiB raw"
