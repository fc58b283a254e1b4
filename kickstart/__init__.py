"""Render what a host needs to install itself: the kickstart, its iPXE script, the DHCP/TFTP config.

Pure: frozen input specs in, text out. This package never imports `provision` (imports flow
provision -> kickstart); `provision.install.spec` builds the specs from profiles and inventory.
"""
