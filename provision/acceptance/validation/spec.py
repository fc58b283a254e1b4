"""The in-OS inventory held to the profile: counts, models, sizes in exact units, configured speeds,
PCIe links, NIC speeds; firmware minimums over both views; the pre-OS view through the Redfish
inspection's checks (provision.acceptance.inspection).

Pure. In-OS findings are required; pre-OS ones are not (the BMC legitimately cannot see some
fields), but a pre-OS mismatch still fails.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import replace

from burnin.hardware import Dimm, Drive, HardwareInventory
from burnin.schema import Finding, Verdict
from provision.acceptance.inspection import check_health, check_psus, dimm_size_ok, inspect_findings
from provision.acceptance.validation.common import equal, finding, version_key
from provision.model.hosts import Host
from provision.model.profile import DriveClass, DriveInterface, Profile

MIB_PER_GIB = 1024
_LOCATOR = re.compile(r"P(?P<socket>\d+)\s+CHANNEL\s+(?P<channel>[A-Z])", re.IGNORECASE)


def is_nvme(drive: Drive) -> bool:
    return (drive.protocol or "").lower() == "nvme" or drive.name.startswith("nvme")


def is_sata(drive: Drive) -> bool:
    return (drive.protocol or "").upper() in ("SATA", "ATA") or drive.name.startswith("sd")


def drives_of(inv: HardwareInventory, cls: DriveClass) -> list[Drive]:
    pick = is_nvme if cls.interface is DriveInterface.nvme else is_sata
    return [d for d in inv.drives if pick(d)]


def drive_label(drive: Drive) -> str:
    return f"drive:{drive.name}" + (f" (serial {drive.serial})" if drive.serial else "")


def dimm_label(dimm: Dimm) -> str:
    return f"dimm:{dimm.locator}" + (f" (serial {dimm.serial})" if dimm.serial else "")


def check_inventory(profile: Profile, inv: HardwareInventory, host: Host | None = None) -> list[Finding]:
    out: list[Finding] = []
    out += _cpus(profile, inv)
    out += _memory(profile, inv)
    out += _gpus(profile, inv)
    for cls in profile.storage:
        out += _drives(cls, inv)
    out += _nics(profile, inv, host)
    return out


# What only the BMC can see (a part's own health, the power supplies): never advisory.
BMC_ONLY = frozenset({"part_health", "psu_count", "psu_capacity", "psu_redundancy", "psu_headroom"})


def check_pre_os(profile: Profile, inv: HardwareInventory, host: Host | None = None) -> list[Finding]:
    """The BMC's view, through the Redfish inspection's own per-part checks (one set of them for
    gate 1 and gate 2). Where the BMC is silent the in-OS view decides, so its inconclusive findings
    are dropped and the rest are advisory, except what only the BMC can judge (`BMC_ONLY`: health
    and PSUs), which keeps its weight: a Critical PSU rejects the run."""
    return [
        replace(f, id=f"{f.id}@redfish", required=f.required and f.check in BMC_ONLY)
        for f in inspect_findings(profile, inv, host)
        if f.verdict is not Verdict.INCONCLUSIVE or f.check in BMC_ONLY
    ]


def check_after_burnin(profile: Profile, inv: HardwareInventory | None) -> list[Finding]:
    """Health and PSUs as the BMC saw them again after the burn-in (`inventory-redfish-after.json`):
    a PSU or a part that failed under load. No such read (the BMC could not be reached) is one
    optional inconclusive finding: the event log and the gate-1 read still stand."""
    if inv is None:
        return [
            finding(
                "bmc_after_burnin", "bmc", "the BMC's health and PSU view after the burn-in",
                None, Verdict.INCONCLUSIVE, source="redfish", required=False,
            )
        ]  # fmt: skip
    return [replace(f, id=f"{f.id}@after") for f in check_health(profile, inv) + check_psus(profile, inv)]


def _cpus(profile: Profile, inv: HardwareInventory) -> list[Finding]:
    src, spec = inv.source, profile.cpu
    out = [equal("cpu_socket_count", "node", spec.sockets, len(inv.cpus) if inv.cpus else None, source=src)]
    for cpu in inv.cpus:
        comp = f"cpu:{cpu.socket}"
        out.append(equal("cpu_model", comp, spec.model, cpu.model, source=src))
        out.append(equal("cpu_cores", comp, spec.cores_per_socket, cpu.cores, source=src))
        threads = spec.cores_per_socket * spec.threads_per_core
        out.append(equal("cpu_threads", comp, threads, cpu.threads, source=src))
        if cpu.family is not None:
            out.append(equal("cpu_family", comp, spec.cpuid_family, cpu.family, source=src))
    if src == "os":
        out.append(equal("logical_cpus", "node", spec.logical_cpus, inv.logical_cpus, source=src))
    return out


def _channels(dimms: Iterable[Dimm]) -> dict[int, set[str]] | None:
    per_socket: dict[int, set[str]] = {}
    for d in dimms:
        socket, channel = d.socket, d.channel
        if socket is None or channel is None:
            m = _LOCATOR.search(d.locator)
            if m is None:
                return None
            socket, channel = int(m["socket"]), m["channel"].upper()
        per_socket.setdefault(socket, set()).add(channel)
    return per_socket


def _memory(profile: Profile, inv: HardwareInventory) -> list[Finding]:
    src, spec = inv.source, profile.memory
    present = [d for d in inv.dimms if d.present]
    out = [equal("dimm_count", "node", spec.dimm_count, len(present) if inv.dimms else None, source=src)]
    total_mib = spec.total_gib * MIB_PER_GIB
    sizes = [d.size_mib for d in present]
    observed_total = sum(s for s in sizes if s is not None) if present and None not in sizes else None
    out.append(_size("memory_total_mib", "node", total_mib, observed_total, src))
    for d in present:
        comp = dimm_label(d)
        out.append(_size("dimm_size_mib", comp, spec.dimm_size_gib * MIB_PER_GIB, d.size_mib, src))
        out.append(equal("dimm_type", comp, spec.type, d.type, source=src))
        out.append(equal("dimm_rated_mts", comp, spec.rated_mts, d.rated_mts, source=src))
        out.append(_configured_speed(profile, d, src))
        if spec.ecc:
            out.append(equal("dimm_ecc", comp, True, d.ecc, source=src))
        if spec.part_number:
            out.append(equal("dimm_part_number", comp, spec.part_number, d.part_number, source=src))
        if spec.ranks:
            out.append(equal("dimm_rank", comp, spec.ranks, d.rank, source=src))
    if present:
        out.append(_channels_finding(profile, present, src))
    return out


def _size(check: str, comp: str, want_mib: int, got_mib: int | None, src: str) -> Finding:
    """A memory size, within the tolerance that absorbs vendors' MiB arithmetic (15625 for 16 GB)."""
    if got_mib is None or got_mib == want_mib:
        return equal(check, comp, want_mib, got_mib, source=src)
    verdict = Verdict.PASS if dimm_size_ok(want_mib, got_mib) else Verdict.FAIL
    return finding(
        check, comp, want_mib, got_mib, verdict, source=src, suffix="" if src == "os" else f"@{src}"
    )


def _channels_finding(profile: Profile, present: list[Dimm], src: str) -> Finding:
    """Sources number sockets differently (the OS from 0, Redfish BMCs often from 1): the distinct
    sockets are counted and compared in order, and the observed value keeps the source's numbers."""
    channels = _channels(present)
    per_socket, sockets = profile.memory.populated_channels_per_socket, profile.cpu.sockets
    expected = f"{per_socket} channels on each of {sockets} sockets"
    if channels is None:
        return finding("memory_channels_per_socket", "node", expected, None, Verdict.INCONCLUSIVE,
                       source=src, suffix="" if src == "os" else f"@{src}")  # fmt: skip
    counts = [len(c) for _, c in sorted(channels.items())]
    observed = ", ".join(f"socket {s}: {len(c)}" for s, c in sorted(channels.items()))
    verdict = Verdict.PASS if counts == [per_socket] * sockets else Verdict.FAIL
    suffix = "" if src == "os" else f"@{src}"
    return finding(
        "memory_channels_per_socket", "node", expected, observed, verdict, source=src, suffix=suffix
    )


def _configured_speed(profile: Profile, d: Dimm, src: str) -> Finding:
    spec = profile.memory
    expected = f"{spec.configured_mts_expected} MT/s (allowed {list(spec.configured_mts_allowed)})"
    observed = None if d.configured_mts is None else f"{d.configured_mts} MT/s"
    if d.configured_mts is None:
        verdict = Verdict.INCONCLUSIVE
    elif d.configured_mts not in spec.configured_mts_allowed:
        verdict = Verdict.FAIL
    elif d.configured_mts < spec.configured_mts_expected:
        verdict = Verdict.WARN  # allowed but slower than this platform should train
    else:
        verdict = Verdict.PASS
    suffix = "" if src == "os" else f"@{src}"
    return finding(
        "dimm_configured_mts", dimm_label(d), expected, observed, verdict, source=src, suffix=suffix
    )


def _gpus(profile: Profile, inv: HardwareInventory) -> list[Finding]:
    src, spec = inv.source, profile.gpus
    expected_count = spec.count if spec else 0
    out = [
        equal(
            "gpu_count", "node", expected_count, len(inv.gpus) if "gpus" not in inv.gaps else None, source=src
        )
    ]
    if spec is None:
        return out
    for g in inv.gpus:
        comp = f"gpu:{g.index}" + (f" (serial {g.serial})" if g.serial else "")
        out.append(equal("gpu_name", comp, spec.name, g.name, source=src))
        device_id = g.pci_device_id.lower() if g.pci_device_id else None
        out.append(equal("gpu_pci_device_id", comp, spec.pci_device_id.lower(), device_id, source=src))
        out.append(equal("gpu_pcie_gen", comp, spec.pcie_gen, g.pcie_gen_max, source=src))
        out.append(equal("gpu_pcie_width", comp, spec.pcie_width, g.pcie_width_max, source=src))
        out.append(
            equal("gpu_compute_capability", comp, spec.compute_capability, g.compute_capability, source=src)
        )
        if spec.ecc_required:
            out.append(equal("gpu_ecc_enabled", comp, True, g.ecc_enabled, source=src))
        limit = None if g.power_limit_w is None else round(g.power_limit_w)
        out.append(equal("gpu_power_limit_w", comp, spec.power_limit_w, limit, source=src))
        tol = spec.memory_mib * spec.memory_tolerance_pct / 100
        expected = f"{spec.memory_mib} MiB ± {spec.memory_tolerance_pct}%"
        if g.memory_mib is None:
            verdict = Verdict.INCONCLUSIVE
        else:
            verdict = Verdict.PASS if abs(g.memory_mib - spec.memory_mib) <= tol else Verdict.FAIL
        observed = None if g.memory_mib is None else f"{g.memory_mib} MiB"
        suffix = "" if src == "os" else f"@{src}"
        out.append(finding("gpu_memory_mib", comp, expected, observed, verdict, source=src, suffix=suffix))
    return out


def _drives(cls: DriveClass, inv: HardwareInventory) -> list[Finding]:
    src = inv.source
    drives = drives_of(inv, cls)
    count = None if _storage_unseen(inv) else len(drives)
    out = [equal(f"{cls.role.value}_drive_count", "node", cls.count, count, source=src)]
    for d in drives:
        comp = drive_label(d)
        out.append(equal("drive_capacity_bytes", comp, cls.capacity_bytes, d.capacity_bytes, source=src))
        if cls.pcie_gen is not None:
            out.append(equal("drive_pcie_gen", comp, cls.pcie_gen, d.pcie_gen, source=src))
        if cls.pcie_width is not None:
            out.append(equal("drive_pcie_width", comp, cls.pcie_width, d.pcie_width, source=src))
    return out


def _storage_unseen(inv: HardwareInventory) -> bool:
    """The source could not list the drives (a BMC exposing no Storage, a failed lsblk): a count
    of zero would be a guess."""
    areas = {key.split(".")[0].split(":")[0] for key in inv.gaps}
    return bool({"drives", "storage"} & set(inv.gaps)) or (
        not inv.drives and bool({"drives", "storage"} & areas)
    )


def _nics(profile: Profile, inv: HardwareInventory, host: Host | None) -> list[Finding]:
    src = inv.source
    macs = {i.name: i.mac for i in host.interfaces} if host else {}
    out: list[Finding] = []
    for spec in profile.network:
        mac = macs.get(spec.name)
        nic = next((n for n in inv.nics if mac and (n.mac or "").lower() == mac), None)
        if nic is None and src == "os":
            nic = next((n for n in inv.nics if n.name == spec.name), None)
        comp = f"nic:{spec.name}" + (f" ({mac})" if mac else "")
        want = f"{spec.speed_gbps} Gb/s, link up"
        if nic is None:
            # Redfish may not list a NIC it cannot match by MAC: that is missing evidence there.
            if src != "os" or "nics" in inv.gaps:
                verdict = Verdict.INCONCLUSIVE
            else:
                verdict = Verdict.FAIL if spec.required else Verdict.WARN  # optional: may not be fitted
            suffix = "" if src == "os" else f"@{src}"
            out.append(
                finding(
                    "nic_link",
                    comp,
                    want,
                    "absent",
                    verdict,
                    source=src,
                    required=spec.required,
                    suffix=suffix,
                )
            )
            continue
        speed = None if nic.speed_mbps is None else nic.speed_mbps // 1000
        if speed is None or nic.link_up is None:
            verdict = Verdict.INCONCLUSIVE
        elif nic.link_up and speed >= spec.speed_gbps:
            verdict = Verdict.PASS
        else:
            verdict = Verdict.FAIL
        observed = f"{speed if speed is not None else '?'} Gb/s, link {'up' if nic.link_up else 'down'}"
        suffix = "" if src == "os" else f"@{src}"
        out.append(
            finding(
                "nic_link", comp, want, observed, verdict, source=src, required=spec.required, suffix=suffix
            )
        )
    return out


def firmware_versions(inv: HardwareInventory) -> dict[str, list[tuple[str, str | None]]]:
    """Every firmware the inventory knows, by the names `firmware_min` uses: name -> [(part, version)]."""
    out: dict[str, list[tuple[str, str | None]]] = {
        "bios": [("system", inv.system.bios_version)],
        "bmc": [("bmc", inv.system.bmc_version)],
        "gpu_vbios": [(f"gpu:{g.index}", g.vbios) for g in inv.gpus],
        "nvme": [(drive_label(d), d.firmware) for d in inv.drives if is_nvme(d)],
        "sata": [(drive_label(d), d.firmware) for d in inv.drives if is_sata(d)],
    }
    for fw in inv.firmware:
        out.setdefault(fw.name, []).append((f"firmware:{fw.name}", fw.version))
    return out


def check_firmware(profile: Profile, views: list[HardwareInventory]) -> list[Finding]:
    """Firmware minimums over the best view of each name: in-OS first, else what the BMC reported."""
    out: list[Finding] = []
    for name, minimum in sorted(profile.acceptance.firmware_min.items()):
        want = version_key(minimum)
        chosen: tuple[str, list[tuple[str, str | None]]] | None = None
        for inv in views:
            parts = firmware_versions(inv).get(name, [])
            if any(v for _, v in parts):
                chosen = (inv.source, parts)
                break
        if chosen is None:  # nobody reported a version: name the parts that should carry one
            listed = [(v.source, firmware_versions(v).get(name, [])) for v in views]
            absent: list[tuple[str, str | None]] = [(f"firmware:{name}", None)]
            chosen = next(((s, p) for s, p in listed if p), ("os", absent))
        src, parts = chosen
        for comp, version in parts:
            key = version_key(version) if version else None
            if key is None or want is None:
                verdict = Verdict.INCONCLUSIVE  # absent, or not a version we can order
            else:
                verdict = Verdict.PASS if key >= want else Verdict.FAIL
            out.append(finding(f"firmware_min_{name}", comp, f">= {minimum}", version, verdict, source=src))
    return out
