#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian/Ubuntu machine: the system packages the tests and the lab
# drive for real, and the project's virtualenv. Runs as root (or with sudo available).
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  openssh-server openssh-client fio stress-ng memtester nvme-cli smartmontools dmidecode lshw
  gcc libc6-dev libgomp1 cpio kmod iproute2 busybox-static
  qemu-system-x86 qemu-utils ipxe-qemu ipxe ovmf dnsmasq-base
  debootstrap fdisk dosfstools mtools grub2-common grub-pc-bin grub-efi-amd64-bin efibootmgr zstd
  libvirt-daemon-system libvirt-clients libvirt-dev pkg-config
  chromium python3-venv
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "setup: installing system packages: ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

PY=${PYTHON:-python3}
stamp=.venv/.installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: building .venv"
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[dev]'
  touch "$stamp"
fi
