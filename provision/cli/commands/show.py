"""`provision show HOST`: every fact the seed gives about HOST, the figures derived from them, and
its lifecycle state in the store."""

from __future__ import annotations

from typing import Any

import click

from provision.cli.app import App, emit
from provision.model.hosts import Host
from provision.model.profile import DriveRole, Profile
from provision.store.lifecycle import HostState
from provision.store.state import StateStore


def derived(profile: Profile) -> dict[str, Any]:
    """Figures computed from the profile, each with its unit in its name."""
    cpu, mem, power = profile.cpu, profile.memory, profile.power
    scratch = profile.drives(DriveRole.scratch)
    return {
        "logical_cpus": cpu.logical_cpus,
        "physical_cores": cpu.sockets * cpu.cores_per_socket,
        "memory_total_gib": mem.total_gib,
        "memory_gib_per_core": round(mem.total_gib / (cpu.sockets * cpu.cores_per_socket), 2),
        "memory_peak_bandwidth_gbs": round(profile.memory_peak_gbs, 1),
        "gpu_memory_total_mib": profile.gpus.count * profile.gpus.memory_mib if profile.gpus else 0,
        "scratch_total_bytes": scratch.count * scratch.capacity_bytes if scratch else 0,
        "feed_continuous_w": round(power.continuous_w),
        "full_burn_w": profile.full_burn_w,
        "reserved_cpu_millicores": round(cpu.logical_cpus * 1000 * profile.platform.reserved_cpu_pct / 100),
    }


def lifecycle(app: App, host: str) -> dict[str, Any]:
    store = StateStore.open_existing(app.state_dir)
    if store is None:
        return {"state": str(HostState.enrolled), "updated_at": None, "last_run_id": None, "known": False}
    with store:
        row = next((r for r in store.list_hosts() if r.name == host), None)
    if row is None:
        return {"state": str(HostState.enrolled), "updated_at": None, "last_run_id": None, "known": False}
    return {**row.to_dict(), "known": True}


def _human(data: dict[str, Any]) -> str:
    h, p, d, s = data["host"], data["profile"], data["derived"], data["lifecycle"]
    cpu, mem, power, pf = p["cpu"], p["memory"], p["power"], p["platform"]
    lines = [
        f"{h['name']}  ({s['state']}{', ' + h['designation'] if h['designation'] else ''})",
        f"  profile     {p['name']}: {p['description']}",
        f"  rack        {h['rack']}, circle {pf['circle']}, pool {pf['pool']}, namespace {pf['namespace']}",
        f"  chassis     {p['chassis']['vendor']} {p['chassis']['model']} ({p['chassis']['height_u']}U)",
        f"  cpu         {cpu['sockets']} x {cpu['model']} ({cpu['cores_per_socket']} cores, "
        f"{cpu['base_mhz']}-{cpu['boost_mhz']} MHz, {cpu['tdp_w']} W): {d['logical_cpus']} logical CPUs",
        f"  memory      {mem['dimm_count']} x {mem['dimm_size_gib']} GiB {mem['type']} {mem['form']} "
        f"{mem['rated_mts']} MT/s (configured {mem['configured_mts_expected']}) "
        f"= {d['memory_total_gib']} GiB, "
        f"{mem['populated_channels_per_socket']} channels/socket, peak {d['memory_peak_bandwidth_gbs']} GB/s",
    ]
    if p.get("gpus"):
        g = p["gpus"]
        lines.append(
            f"  gpus        {g['count']} x {g['name']} ({g['memory_mib']} MiB, {g['power_limit_w']} W, "
            f"PCIe {g['pcie_gen']} x{g['pcie_width']})"
        )
    for drive in p["storage"]:
        lines.append(
            f"  {drive['role']:<11} {drive['count']} x {drive['seed_capacity']} {drive['interface']} "
            f"({drive['capacity_bytes']} bytes){' ' + drive['raid'] if drive['raid'] else ''}"
        )
    for iface in h["interfaces"]:
        lines.append(f"  {iface['name']:<11} {iface['mac']}  {iface['address'] or 'dhcp'}")
    lines += [
        f"  bmc         {h['bmc']['url']} (credentials {h['bmc']['credentials']}, "
        f"verify_tls {h['bmc']['verify_tls']})",
        f"  power       {h['pdu']} outlet {h['pdu_outlet']}, {power['receptacle']} {power['circuit_amps']} A "
        f"{power['voltage_v']} V: {d['feed_continuous_w']} W continuous; "
        f"seed draw {power['expected_draw_w']} W, "
        f"full burn ~{d['full_burn_w']} W",
        f"  os          {pf['os']['name']} {pf['os']['version']} (tuned {pf['os']['tuned_profile']})",
    ]
    if s["last_run_id"]:
        lines.append(f"  last run    {s['last_run_id']}")
    return "\n".join(lines)


def show_data(app: App, host: Host) -> dict[str, Any]:
    profile = app.catalog.profile_of(host)
    return {
        "host": host.model_dump(mode="json"),
        "profile": profile.model_dump(mode="json"),
        "derived": derived(profile),
        "lifecycle": lifecycle(app, host.name),
    }


@click.command()
@click.argument("host")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def show(app: App, host: str, as_json: bool) -> None:
    """Show everything known about HOST: inventory entry, profile, derived figures, lifecycle state."""
    emit(show_data(app, app.catalog.host(host)), as_json, _human)
