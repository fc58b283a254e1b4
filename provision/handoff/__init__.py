"""Handing an accepted host to OpenShift: manifests, the ZFS plan, textfile metrics, and the
Kubernetes apply."""
