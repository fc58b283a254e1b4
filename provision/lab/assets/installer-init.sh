#!/bin/sh
# The lab's installer stand-in (replaces Anaconda in the lab; see README "The lab"). It does what
# Anaconda does at the edges: reads inst.ks= from the kernel line, fetches and checks the kickstart,
# posts the %pre "started" callback, writes the prepared Debian image (from the kickstart's `url`
# install tree) to the first disk of `ignoredisk --only-use`, applies the kickstart's network,
# hostname, users, SSH keys and `bootloader --append` (kernel-append.sh), generates the host's SSH
# keys, posts the %post "finished" callback with the new public keys, and reboots (or powers off) as
# the kickstart says.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
mkdir -p /tmp /mnt /run
say() { echo "LAB-INSTALLER: $*" > /dev/console; echo "$*" >> /tmp/installer.log; }
URL=""; TOKEN=""
fail() {
  say "FAILED: $*"
  if [ -n "$URL" ]; then
    tail -n 40 /tmp/installer.log > /tmp/fail.txt
    wget -q -O /dev/null --header "Authorization: Bearer $TOKEN" --header "Content-Type: text/plain" \
      --post-file /tmp/fail.txt "$URL/failed" || say "failed callback could not be sent"
  fi
  sync; sleep 5; poweroff -f
}
say "up: kernel $(uname -r), uptime $(cut -d' ' -f1 /proc/uptime)s"
for m in $(cat /etc/modules-load); do modprobe "$m" 2>/dev/null || say "module $m not loaded"; done
mdev -s 2>/dev/null
sleep 1
ip link set lo up
NIC=""
for n in /sys/class/net/*; do
  IF=${n##*/}; [ "$IF" = lo ] && continue
  ip link set "$IF" up
  if udhcpc -i "$IF" -n -q -t 6 -T 2 -s /etc/udhcpc.script >/dev/null 2>&1; then NIC=$IF; break; fi
done
[ -n "$NIC" ] || fail "no DHCP lease on any NIC"
say "network: $NIC $(cat /sys/class/net/$NIC/address) $(ip -4 -o addr show dev $NIC | awk '{print $4}')"

KS=$(tr ' ' '\n' < /proc/cmdline | sed -n 's/^inst\.ks=//p' | head -1)
[ -n "$KS" ] || fail "no inst.ks= on the kernel command line"
ok=""
for i in 1 2 3 4 5; do wget -q -O /tmp/ks.cfg "$KS" && ok=1 && break; sleep 2; done
[ -n "$ok" ] || fail "kickstart not fetched"
say "kickstart fetched: $(wc -l < /tmp/ks.cfg) lines"

# --- check the kickstart parses, at least the lines this stand-in acts on ---
grep -q '^%pre' /tmp/ks.cfg || fail "kickstart: no %pre section"
grep -q '^%post' /tmp/ks.cfg || fail "kickstart: no %post section"
opens=$(grep -c '^%\(pre\|post\|packages\|onerror\)' /tmp/ks.cfg); ends=$(grep -c '^%end' /tmp/ks.cfg)
[ "$opens" = "$ends" ] || fail "kickstart: $opens sections opened, $ends closed with %end"
TOKEN=$(sed -n "s/.*Authorization: Bearer \([A-Za-z0-9_-]*\).*/\1/p" /tmp/ks.cfg | head -1)
URL=$(grep -o 'https\?://[^ ]*/callback/[^ /]*/started' /tmp/ks.cfg | head -1 | sed 's,/started$,,')
[ -n "$TOKEN" ] || fail "kickstart: no callback token"
[ -n "$URL" ] || fail "kickstart: no callback URL"
TREE=$(sed -n 's/^url .*--url[= ]\([^ ]*\).*/\1/p' /tmp/ks.cfg | head -1)
[ -n "$TREE" ] || fail "kickstart: no url --url= install source"
DISKS=$(sed -n 's/^ignoredisk .*--only-use=\([^ ]*\).*/\1/p' /tmp/ks.cfg | head -1 | tr ',' ' ')
[ -n "$DISKS" ] || fail "kickstart: no ignoredisk --only-use="
HOSTNAME=$(sed -n 's/^network .*--hostname=\([^ ]*\).*/\1/p' /tmp/ks.cfg | head -1)
[ -n "$HOSTNAME" ] || fail "kickstart: no network --hostname="
FINAL=$(grep -E '^(reboot|poweroff|shutdown|halt)( |$)' /tmp/ks.cfg | head -1 | cut -d' ' -f1)
grep -q '^sshkey ' /tmp/ks.cfg || fail "kickstart: no sshkey line"
say "kickstart ok: host $HOSTNAME, disks $DISKS, source $TREE, then ${FINAL:-halt}"

post() { # post PHASE FILE
  wget -q -O /dev/null --header "Authorization: Bearer $TOKEN" --header "Content-Type: text/plain" \
    --post-file "$2" "$URL/$1"
}
echo "lab installer stand-in started on $(uname -r)" > /tmp/started.txt
post started /tmp/started.txt && say "started callback sent" || say "started callback failed"

# --- disks: a by-id name ends with the drive's serial; match on that, as udev would name it ---
serial_of() {
  b=/sys/block/$1
  if [ -f "$b/serial" ]; then cat "$b/serial"
  elif [ -f "$b/device/serial" ]; then cat "$b/device/serial"
  elif [ -f "$b/device/vpd_pg80" ]; then dd if="$b/device/vpd_pg80" bs=1 skip=4 2>/dev/null | tr -d ' \000'
  fi
}
resolve() {
  for b in /sys/block/*; do
    d=${b##*/}; s=$(serial_of "$d" | tr -d ' ')
    [ -n "$s" ] || continue
    case "$1" in *[-_]"$s") echo "/dev/$d"; return 0;; esac
  done
  return 1
}
TARGETS=""
for id in $DISKS; do
  dev=$(resolve "$id") || fail "boot disk $id not found (serials: $(for b in /sys/block/*; do printf '%s=%s ' ${b##*/} "$(serial_of ${b##*/})"; done))"
  grep -q "^$dev" /proc/mounts && fail "$dev is mounted"
  TARGETS="$TARGETS $dev"
done
set -- $TARGETS; FIRST=$1; shift
say "writing $TREE/lab/debian-lab.img.zst to $FIRST"
T0=$(cut -d' ' -f1 /proc/uptime)
wget -q -O - "$TREE/lab/debian-lab.img.zst" | zstd -dc | dd of="$FIRST" bs=1048576 conv=fsync 2>/tmp/dd.txt \
  || fail "image write failed: $(tail -1 /tmp/dd.txt)"
say "image written ($(tail -1 /tmp/dd.txt)), $(awk -v a=$T0 '{printf "%d", $1-a}' /proc/uptime) s"
# The mirror member(s): the stand-in does not build md RAID1; it clears them like clearpart would.
for dev in "$@"; do dd if=/dev/zero of="$dev" bs=1048576 count=4 conv=fsync 2>/dev/null; say "cleared mirror member $dev (no md RAID1 in the stand-in)"; done
blockdev --rereadpt "$FIRST"; sleep 1; mdev -s
ROOTP=$(findfs LABEL=lab-root) || fail "root partition (LABEL=lab-root) not found after write"
mount -t ext4 "$ROOTP" /mnt || fail "mount $ROOTP failed"
mount -o bind /dev /mnt/dev; mount -t proc proc /mnt/proc

# --- what Anaconda writes from the kickstart ---
echo "$HOSTNAME" > /mnt/etc/hostname
printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n::1\tlocalhost ip6-localhost ip6-loopback\n' "$HOSTNAME" > /mnt/etc/hosts
rm -f /mnt/etc/systemd/network/*.network
n=0
grep '^network .*--device=' /tmp/ks.cfg | while read -r line; do
  n=$((n+1)); opt() { echo " $line " | sed -n "s/.* --$1=\([^ ]*\) .*/\1/p"; }
  mac=$(opt device); ip=$(opt ip); mask=$(opt netmask); gw=$(opt gateway); dns=$(opt nameserver)
  f=/mnt/etc/systemd/network/1$n-ks.network
  printf '[Match]\nMACAddress=%s\n\n[Network]\nIPv6AcceptRA=no\n' "$mac" > "$f"
  if echo " $line " | grep -q -- '--bootproto=static'; then
    eval "$(ipcalc -p "$ip" "$mask")"
    echo "Address=$ip/$PREFIX" >> "$f"
    [ -n "$gw" ] && ! echo "$line" | grep -q -- --nodefroute && echo "Gateway=$gw" >> "$f"
    for d in $(echo "$dns" | tr ',' ' '); do echo "DNS=$d" >> "$f"; done
  else
    echo "DHCP=ipv4" >> "$f"
  fi
done
sed -n 's/^user .*--name=\([^ ]*\).*/\1/p' /tmp/ks.cfg | while read -r u; do
  [ "$u" = root ] && continue
  chroot /mnt useradd -m -s /bin/bash -G sudo "$u" 2>/dev/null
  echo "$u ALL=(ALL) NOPASSWD: ALL" > /mnt/etc/sudoers.d/90-inferno-admin; chmod 0440 /mnt/etc/sudoers.d/90-inferno-admin
done
sed -n 's/^sshkey .*--username=\([^ ]*\) "\(.*\)"$/\1 \2/p' /tmp/ks.cfg | while read -r u key; do
  home=$(awk -F: -v u="$u" '$1==u {print $6}' /mnt/etc/passwd)
  [ -n "$home" ] || { say "sshkey for unknown user $u skipped"; continue; }
  mkdir -p "/mnt$home/.ssh"; echo "$key" >> "/mnt$home/.ssh/authorized_keys"
  chmod 700 "/mnt$home/.ssh"; chmod 600 "/mnt$home/.ssh/authorized_keys"
  chroot /mnt chown -R "$u:" "$home/.ssh"
done
mkdir -p /mnt/etc/inferno
sed -n "/^cat > \/etc\/inferno\/install.json <<'JSON'$/,/^JSON$/p" /tmp/ks.cfg | sed '1d;$d' > /mnt/etc/inferno/install.json
echo "lab installer stand-in (not Anaconda); kickstart $KS" > /mnt/etc/inferno/installer
cp /tmp/ks.cfg /mnt/root/anaconda-ks.cfg; chmod 600 /mnt/root/anaconda-ks.cfg
APPENDED=$(kernel-append /tmp/ks.cfg /mnt/boot/grub/grub.cfg 2>/tmp/append.txt) \
  || fail "bootloader --append: $(tail -1 /tmp/append.txt)"
[ -n "$APPENDED" ] && say "kernel line: + $APPENDED (bootloader --append)"
rm -f /mnt/etc/ssh/ssh_host_*
# ed25519 and ECDSA only: a 3072-bit RSA key takes ~15 s under TCG
for t in ed25519 ecdsa; do
  chroot /mnt ssh-keygen -q -t $t -N '' -C "root@$HOSTNAME" -f /etc/ssh/ssh_host_${t}_key || fail "ssh-keygen $t failed"
done
cat /mnt/etc/ssh/ssh_host_*_key.pub > /tmp/hostkeys.txt
cp /tmp/installer.log /mnt/root/inferno-installer.log
umount /mnt/proc; umount /mnt/dev; umount /mnt; sync
# UEFI: what Anaconda's bootloader step does: a boot entry for the installed disk. And BootNext,
# so the reboot below starts the installed system: the lab's BMC (sushy's libvirt driver) keeps a
# PXE override for good, where a real BMC's "Once" would be spent by now.
if [ -d /sys/firmware/efi ]; then
  mount -t efivarfs efivarfs /sys/firmware/efi/efivars 2>/dev/null
  if efibootmgr -c -d "$FIRST" -p 2 -L "installed $HOSTNAME" -l '\EFI\BOOT\BOOTX64.EFI' >/tmp/efi.txt 2>&1; then
    num=$(sed -n "s/^Boot\([0-9A-Fa-f]\{4\}\)\* installed $HOSTNAME.*/\1/p" /tmp/efi.txt | head -1)
    [ -n "$num" ] && efibootmgr -q -n "$num" && say "UEFI boot entry Boot$num for $FIRST, BootNext set"
  else
    say "efibootmgr failed: $(tail -1 /tmp/efi.txt)"
  fi
fi
post finished /tmp/hostkeys.txt && say "finished callback sent" || say "finished callback failed"
say "done, ${FINAL:-halt}"
case "$FINAL" in reboot) reboot -f;; *) poweroff -f;; esac
