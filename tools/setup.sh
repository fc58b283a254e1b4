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
  postgresql
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

# The burn-in agent's floor is Rocky 9's Python 3.9: tests/test_burnin_agent.py runs its zipapp under a
# real 3.9. Debian 12 packages no python3.9 and PyPI has no clean CPython 3.9 interpreter, so take one
# from PATH or pyenv (this machine image ships pyenv's 3.9.18), else try `pyenv install 3.9` (it needs
# python.org). The interpreter's path goes into .venv/python3.9-path, the first place the test looks.
PY39_FILE=.venv/python3.9-path
is_py39() { "$1" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 9))' </dev/null >/dev/null 2>&1; }
PYENV=$(command -v pyenv || true)
if [ -z "$PYENV" ] && [ -x "${PYENV_ROOT:-$HOME/.pyenv}/bin/pyenv" ]; then PYENV="${PYENV_ROOT:-$HOME/.pyenv}/bin/pyenv"; fi
find_py39() {  # prints the path of a working 3.9, or nothing
  local root
  root=$({ [ -n "$PYENV" ] && "$PYENV" root; } 2>/dev/null || echo "${PYENV_ROOT:-$HOME/.pyenv}")
  # PATH first (a pyenv shim there fails unless 3.9 is selected), then pyenv's newest 3.9.
  { command -v python3.9 || true; { ls -d "$root"/versions/3.9*/bin/python3.9 2>/dev/null || true; } | sort -rV; } |
    while read -r c; do
      if is_py39 "$c"; then "$c" -c 'import sys; print(sys.executable)' </dev/null; break; fi
    done || true
}
py39=$(find_py39)
if [ -z "$py39" ] && [ -n "$PYENV" ]; then
  echo "setup: no Python 3.9 here; trying 'pyenv install 3.9' (downloads CPython's source from python.org)"
  tmp=$(mktemp -d)  # python-build leaves its build log in TMPDIR when it fails
  if TMPDIR=$tmp timeout 900 "$PYENV" install -s 3.9 >"$tmp/log" 2>&1; then py39=$(find_py39); fi
  [ -n "$py39" ] || { grep -E '^(error|curl): ' "$tmp/log" || tail -n 2 "$tmp/log"; } | head -n 3 | sed 's/^/setup:   /'
  rm -rf "$tmp"
fi
if [ -n "$py39" ]; then
  [ "$(cat "$PY39_FILE" 2>/dev/null)" = "$py39" ] || echo "$py39" >"$PY39_FILE"
else
  rm -f "$PY39_FILE"
  why="Debian 12 packages no python3.9"
  if [ -n "$PYENV" ]; then why="$why and 'pyenv install 3.9' failed"; else why="$why and pyenv is not installed"; fi
  echo "setup: WARNING: no Python 3.9 ($why): the agent's Python 3.9 test (tests/test_burnin_agent.py) cannot run here; it skips, and fails under CI=true"
fi
