#!/bin/sh
# What Anaconda's bootloader step does with the kickstart's `bootloader --append="ARGS"`: ARGS go on
# the installed system's kernel line. Usage: kernel-append KS.cfg GRUB.cfg; prints what it added.
# Kernel arguments are held to a grammar when the profile loads (provision/model/grammar.py,
# KernelArg: no quote, backslash, | or &), so they enter the sed expression as they are; anything
# outside that grammar is refused here too.
set -eu
ks=$1
cfg=$2
args=$(sed -n 's/^bootloader .*--append="\([^"]*\)".*/\1/p' "$ks" | head -1)
[ -n "$args" ] || exit 0
case "$args" in
  *[!A-Za-z0-9_.:/,+=\ -]*) echo "kernel-append: refused, outside the kernel argument grammar: $args" >&2; exit 1 ;;
esac
grep -q '^  linux /boot/vmlinuz-' "$cfg" || { echo "kernel-append: no kernel line in $cfg" >&2; exit 1; }
sed -i "s|^\(  linux /boot/vmlinuz-.*\)\$|\1 $args|" "$cfg"
echo "$args"
