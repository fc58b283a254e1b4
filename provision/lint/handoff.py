"""Lint of a profile's `handoff:` block against the OS it installs and the site. Pure.

The seed installs Rocky Linux 9.3 and hands the hosts to OpenShift. That cannot work as written:
OpenShift 4.14 runs its compute nodes on RHCOS or RHEL 8 (8.6-8.8 for 4.14, per the release
notes), and the Machine Config Operator, which applies the pool's KubeletConfig, manages only RHCOS
and RHEL nodes. A Rocky host burns in well and never becomes a Node. The warning says so, and says
what the profile's `handoff.join` does about it.
"""

from __future__ import annotations

from provision.lint.finding import Findings, Loc
from provision.model.catalog import Catalog
from provision.model.handoff import JoinMode, pool_problem
from provision.model.profile import Profile
from provision.model.yamlfile import Document

WHAT_JOIN_DOES = {
    JoinMode.rhcos: "after acceptance the same boot chain reinstalls the host with RHCOS, whose Ignition "
    "config merges the pool's config from the machine-config server; its kubelet's CSRs are approved by rule",
    JoinMode.metal3: "after acceptance the host is handed to the cluster as a BareMetalHost, which installs "
    "RHCOS itself",
    JoinMode.none: "nothing makes the Node exist: the handoff waits for a Node someone else joins "
    "(set handoff.join: rhcos or metal3)",
}


def _loc(p: Profile, doc: Document) -> Loc:
    return ("handoff", "join") if ("handoff", "join") in doc.lines else ("platform", "os")


def check(p: Profile, catalog: Catalog, doc: Document, out: Findings) -> None:
    os_ = p.platform.os
    join = p.handoff.join
    if os_.name.lower().startswith("rocky"):
        out.warning(
            "handoff.os-cannot-join",
            doc,
            _loc(p, doc),
            f"this profile installs {os_.name} {os_.version} for the burn-in and hands the host to OpenShift "
            f"(pool {p.platform.pool}), but OpenShift 4.14 compute nodes run RHCOS or RHEL 8.6-8.8 only and "
            f"the Machine Config Operator manages only RHCOS/RHEL nodes: a {os_.name} {os_.version} host "
            f"cannot join. handoff.join is {join.value}: {WHAT_JOIN_DOES[join]}",
        )
    if join is not JoinMode.rhcos:
        return
    if catalog.site.rhcos is None:
        out.error(
            "handoff.rhcos-site",
            doc,
            _loc(p, doc),
            "handoff.join: rhcos needs the site's rhcos block (kernel_url, initramfs_url, rootfs_url, "
            "cluster_domain) in site.yaml, got none",
        )
    pool = p.handoff.config_pool or p.platform.pool
    problem = pool_problem(pool)
    if problem:
        out.error("handoff.pool", doc, ("platform", "pool"), f"the machine-config server's URL: {problem}")
