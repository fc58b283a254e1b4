"""`provision pdu PDU [--json]`: one SNMP reading of a site PDU, per inlet and per outlet (W, A),
each outlet beside the host hosts.yaml plugs into it, and the load against the circuit's rating."""

from __future__ import annotations

from typing import Any

import click

from provision.cli.app import App, emit
from provision.model.errors import NotFound
from provision.model.pdus import find_pdu
from provision.pdu.readings import pdu_load
from provision.pdu.snmp import SnmpFailure


def _fmt(value: float | None, unit: str, digits: int) -> str:
    return "n/a" if value is None else f"{value:.{digits}f} {unit}"


def _human(data: dict[str, Any]) -> str:
    load = data["load_w"]
    pct = f" ({load / data['rating_w']:.0%})" if load is not None else ""
    lines = [
        f"{data['pdu']} ({data['mib']}, {data['address']}): load {_fmt(load, 'W', 0)} "
        f"of {data['rating']}{pct}, read in {data['elapsed_s']:.2f} s"
    ]
    for m in data["inlets"]:
        label = f"inlet {m['number']}"
        lines.append(
            f"  {label:<12} {'':<24} {_fmt(m['power_w'], 'W', 0):>9} {_fmt(m['current_a'], 'A', 2):>9}"
        )
    for m in data["outlets"]:
        label = f"outlet {m['number']}"
        host = m.get("host") or "-"
        lines.append(
            f"  {label:<12} {host:<24} {_fmt(m['power_w'], 'W', 0):>9} {_fmt(m['current_a'], 'A', 2):>9}"
            + (f"  ({m['name']})" if m.get("name") else "")
        )
    lines += [f"  note: {n}" for n in data["notes"]]
    return "\n".join(lines)


@click.command()
@click.argument("name", metavar="PDU")
@click.option("--timeout", "timeout_s", type=click.FloatRange(0.1, 60), help="Seconds per SNMP request.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def pdu(app: App, name: str, timeout_s: float | None, as_json: bool) -> None:
    """Read PDU (a name from site.yaml's `pdus:`) over SNMP: each inlet's and outlet's power and
    current, and the host hosts.yaml maps to each outlet.

    A PDU that does not answer, or answers no power readings, is an error (exit 3), never 0 W.
    """
    catalog = app.catalog
    site_pdu = find_pdu(catalog.site.pdus, name)
    if site_pdu is None:
        known = ", ".join(sorted(p.name for p in catalog.site.pdus)) or "none (site.yaml has no pdus:)"
        raise NotFound(f"{catalog.directory / 'site.yaml'}: pdus: expected one of {known}, got {name!r}")
    reading = pdu_load(site_pdu, timeout_s)
    if reading.inconclusive:
        raise SnmpFailure(f"{name}: inconclusive: {reading.inconclusive}")
    hosts = {h.pdu_outlet: h.name for h in catalog.hosts.values() if h.pdu == name}
    data = reading.to_dict()
    data.update(
        address=f"{site_pdu.address}:{site_pdu.port}", rating_w=site_pdu.rating_w, rating=site_pdu.rating_text
    )
    for m in data["outlets"]:
        m["host"] = hosts.get(m["number"])
    numbers = {m.number for m in reading.outlets}
    data["notes"] += [
        f"{host} is mapped to outlet {n} (hosts.yaml), which this PDU does not report"
        for n, host in sorted(hosts.items())
        if n not in numbers
    ]
    emit(data, as_json, _human)
