"""Lint of the site's PDUs (`pdus:` in site.yaml) against the taxonomy and the host inventory. Pure.

When the site declares its PDUs, every host's `pdu` must be one of them (a host on an undeclared PDU
would burn in without its outlet ever being read). One host per outlet is hosts lint's rule.
"""

from __future__ import annotations

from provision.lint.finding import Findings
from provision.model import taxonomy as tx
from provision.model.catalog import HOSTS_FILE, SITE_FILE, Catalog


def check(catalog: Catalog, out: Findings) -> None:
    pdus = catalog.site.pdus
    site_doc = catalog.documents.get(SITE_FILE)
    if not pdus or site_doc is None:
        return
    seen: dict[str, int] = {}
    for i, pdu in enumerate(pdus):
        if tx.pdu_circle(pdu.name) is None:
            out.error(
                "taxonomy.pdu", site_doc, ("pdus", i, "name"), f"expected {tx.PDU_GRAMMAR}, got {pdu.name!r}"
            )
        if pdu.name in seen:
            out.error(
                "pdu.duplicate",
                site_doc,
                ("pdus", i, "name"),
                f"expected a unique PDU name, got {pdu.name!r} again (first at pdus[{seen[pdu.name]}])",
            )
        seen.setdefault(pdu.name, i)
    hosts_doc = catalog.documents[HOSTS_FILE]
    known = ", ".join(sorted(seen))
    for i, host in enumerate(catalog.hosts.values()):
        if host.pdu not in seen:
            out.error(
                "pdu.undeclared",
                hosts_doc,
                ("hosts", i, "pdu"),
                f"expected a PDU declared in site.yaml's pdus: ({known}), got {host.pdu!r}",
            )
