"""The embedded lab: virtual hosts (libvirt + QEMU TCG) with a Redfish BMC, PXE and an installer stand-in."""
