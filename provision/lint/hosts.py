"""Lint of the host inventory: names against the taxonomy, each host against its profile, hosts
against each other (MACs, addresses, PDU outlets, BMCs, the load on a shared PDU). Pure.
"""

from __future__ import annotations

import os
import stat
from collections import defaultdict
from pathlib import Path

from provision.lint.finding import Findings, Loc
from provision.model import taxonomy as tx
from provision.model.catalog import Catalog
from provision.model.grammar import boot_mac_problem, ssh_user_problem
from provision.model.hosts import Host
from provision.model.naming import Naming, host_grammar_problem, is_loopback_url, lab_of_ca
from provision.model.yamlfile import Document


def check(catalog: Catalog, doc: Document, out: Findings) -> None:
    hosts = list(catalog.hosts.values())
    for i, host in enumerate(hosts):
        _host(catalog, i, host, doc, out)
    _unique(hosts, doc, out)
    _shared_pdus(catalog, hosts, doc, out)


def _host(catalog: Catalog, i: int, host: Host, doc: Document, out: Findings) -> None:
    at = ("hosts", i)
    profile = catalog.profile_of(host)
    naming = catalog.site.naming
    grammar = host_grammar_problem(naming, host.name)
    if grammar:
        out.error("taxonomy.host", doc, (*at, "name"), f"expected {grammar}, got {host.name!r}")
    if naming is Naming.lab and not is_loopback_url(host.bmc.url):
        out.error(
            "site.naming-lab",
            doc,
            (*at, "bmc", "url"),
            "expected the lab's BMC on loopback (the site's naming is lab, which only the embedded "
            f"lab may use), got {host.bmc.url}",
        )
    problem = tx.rack_problem(host.rack)
    rack = tx.parse_rack(host.rack)
    if problem:
        out.error("taxonomy.rack", doc, (*at, "rack"), f"expected {problem}, got {host.rack!r}")
    elif host.rack != profile.platform.rack:
        out.error(
            "host.rack",
            doc,
            (*at, "rack"),
            f"expected {profile.platform.rack} (the rack of profile {profile.name}), got {host.rack!r}",
        )
    pdu_circle = tx.pdu_circle(host.pdu)
    if pdu_circle is None:
        out.error("taxonomy.pdu", doc, (*at, "pdu"), f"expected {tx.PDU_GRAMMAR}, got {host.pdu!r}")
    elif rack is not None and pdu_circle != rack.circle:
        out.error(
            "host.pdu-circle",
            doc,
            (*at, "pdu"),
            f"expected a PDU of circle {rack.circle} (rack {host.rack}), got {host.pdu!r}",
        )
    names = [iface.name for iface in host.interfaces]
    for nic in profile.network:
        if nic.required and nic.name not in names:
            out.error(
                "host.interface-missing",
                doc,
                (*at, "interfaces"),
                f"expected an interface {nic.name} ({nic.role}, {nic.speed_gbps} GbE, required by "
                f"profile {profile.name}), got only {', '.join(names) or 'none'}",
            )
    known = {nic.name for nic in profile.network}
    for j, iface in enumerate(host.interfaces):
        if iface.name not in known:
            out.error(
                "host.interface-unknown",
                doc,
                (*at, "interfaces", j, "name"),
                f"expected one of the profile's interfaces {', '.join(sorted(known))}, got {iface.name!r}",
            )
    # The same rules the kickstart applies (provision.install.render), so lint passes no host it refuses.
    mac_problem = boot_mac_problem(host.boot_mac, [iface.mac for iface in host.interfaces])
    if mac_problem:
        out.error("host.boot-mac", doc, (*at, "boot_mac"), mac_problem)
    user_problem = ssh_user_problem(host.ssh_user, catalog.site.admin.name)
    if user_problem:
        out.error("host.ssh-user", doc, (*at, "ssh_user"), user_problem)
    if host.bmc.verify_tls is False:
        out.warning(
            "host.bmc-tls",
            doc,
            (*at, "bmc", "verify_tls"),
            "TLS verification of the BMC is off: anyone on the management network can impersonate it",
        )
    if isinstance(host.bmc.verify_tls, str):
        _ca_bundle(naming, host.bmc.verify_tls, doc, (*at, "bmc", "verify_tls"), out)
    if host.bmc.url.startswith("http://"):
        out.warning(
            "host.bmc-http",
            doc,
            (*at, "bmc", "url"),
            "the BMC is reached over plain http: its credentials cross the network in clear text",
        )


def _ca_bundle(naming: Naming, path: str, doc: Document, loc: Loc, out: Findings) -> None:
    problem = ca_bundle_problem(path)
    if problem is None:
        return
    lab_id = lab_of_ca(path) if naming is Naming.lab else None
    if lab_id is not None and not os.path.lexists(path):
        # The lab's CA comes into being with the lab: its absence says the lab is down, not wrong.
        out.info(
            "host.bmc-tls-lab",
            doc,
            loc,
            f"{path}: not made yet: `provision lab up --id {lab_id}` makes it (the profiles it writes to "
            "<state>/lab/<id>/profiles name that lab's own CA)",
        )
        return
    out.error("host.bmc-tls-file", doc, loc, problem)


def ca_bundle_problem(path: str) -> str | None:
    """Why `path` cannot be the CA bundle `bmc.verify_tls` names (read where the BMC client reads
    it: relative to the working directory), or None. Otherwise "maybe" would fail only at use."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        return f"expected a readable CA bundle file, got {path!r} ({exc.strerror or 'cannot stat'})"
    if not stat.S_ISREG(mode):
        return f"expected a readable CA bundle file, got {path!r} (not a regular file)"
    if not os.access(Path(path), os.R_OK):
        return f"expected a readable CA bundle file, got {path!r} (not readable)"
    return None


def _unique(hosts: list[Host], doc: Document, out: Findings) -> None:
    """MACs, addresses, BMC URLs and PDU outlets each belong to one host."""
    seen: dict[tuple[str, str], tuple[int, tuple[str | int, ...]]] = {}

    def claim(kind: str, value: str, i: int, loc: tuple[str | int, ...], what: str) -> None:
        key = (kind, value)
        if key in seen and seen[key][0] != i:
            first, first_loc = seen[key]
            out.error(
                f"host.duplicate-{kind}",
                doc,
                loc,
                f"expected {what} no other host has, got {value} again "
                f"(also {hosts[first].name}, line {doc.line_of(first_loc)})",
            )
        else:
            seen.setdefault(key, (i, loc))

    for i, host in enumerate(hosts):
        for j, iface in enumerate(host.interfaces):
            claim("mac", iface.mac, i, ("hosts", i, "interfaces", j, "mac"), "a MAC")
            if iface.address:
                ip = iface.address.split("/")[0]
                claim("address", ip, i, ("hosts", i, "interfaces", j, "address"), "an address")
        # One BMC may manage several systems (a chassis manager, the lab's emulator): the URL with
        # the system's path is what belongs to one host.
        bmc = f"{host.bmc.url} system {host.bmc.system}" if host.bmc.system else host.bmc.url
        claim("bmc", bmc, i, ("hosts", i, "bmc", "url"), "a BMC URL (and system) that")
        claim("outlet", f"{host.pdu} outlet {host.pdu_outlet}", i, ("hosts", i, "pdu_outlet"), "a PDU outlet")


def _shared_pdus(catalog: Catalog, hosts: list[Host], doc: Document, out: Findings) -> None:
    """Hosts on one PDU share its circuit: their burns together must fit its continuous rating."""
    by_pdu: dict[str, list[int]] = defaultdict(list)
    for i, host in enumerate(hosts):
        by_pdu[host.pdu].append(i)
    for pdu, members in by_pdu.items():
        if len(members) < 2:
            continue
        profiles = [catalog.profile_of(hosts[i]) for i in members]
        limit = min(p.power.continuous_w for p in profiles)
        load = sum(p.full_burn_w for p in profiles)
        if load > limit:
            last = members[-1]
            out.error(
                "power.shared-pdu",
                doc,
                ("hosts", last, "pdu"),
                f"expected the hosts on {pdu} ({', '.join(hosts[i].name for i in members)}) to burn "
                f"within its continuous {limit:.0f} W together, got about {load} W",
            )
