"""A test profile that this machine really is, so a loopback flow host can be accepted honestly.

The agent's own inventory (`python -m burnin inventory`, the command an operator runs on a host, the
same code the burn-in runs) says what the machine is; the profile is written from it: the CPU
(model, sockets, cores, threads, CPUID family and model, the clock the kernel reports), the NIC the
OS sees (its MAC becomes the BMC's NIC and the host's boot MAC), and no drive classes or GPUs (the
installed OS is a loopback sshd, and nothing here is written). ECC is claimed only where the OS sees
ECC DIMMs.

The profile is `lab: true` (provision.model.profile): what the machine or the BMC cannot give
evidence for is waived in `acceptance.not_required`, each waiver only when the inventory shows the
gap and with the reason, and every such finding is still made and shown in the report. Nothing else
is relaxed: the checks run as in production, the verdict is whatever they say.
"""

from __future__ import annotations

import glob
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
SYS = Path("/sys")
# sushy-emulator's fake driver serves no Power resource (its CPUs come from
# tests/support/machine_emulator.py): the BMC has no power reading to give.
FAKE_BMC = "sushy-emulator's fake driver (the test BMC)"


def agent_inventory() -> dict[str, Any]:
    """What the burn-in agent's inventory says this machine is (the host of the loopback sshd)."""
    proc = subprocess.run(
        [sys.executable, "-m", "burnin", "inventory"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"burnin inventory: exit {proc.returncode}: {proc.stderr.strip()[-500:]}")
    inv: dict[str, Any] = json.loads(proc.stdout)
    return inv


def management_nic(inv: dict[str, Any]) -> dict[str, Any]:
    """The NIC the OS sees with a link: the host's eth0, its MAC the BMC's NIC."""
    nics = [n for n in inv.get("nics", []) if n.get("mac") and n.get("link_up")]
    if not nics:
        raise RuntimeError(f"this machine shows no NIC with a link: {inv.get('nics')}")
    return dict(nics[0])


def _clock_mhz() -> int:
    """The clock the agent samples under load (burnin.telemetry.cpu_clocks): cpufreq, else cpuinfo."""
    khz = [
        int(v) / 1000
        for f in glob.glob(str(SYS / "devices/system/cpu/cpu[0-9]*/cpufreq/scaling_cur_freq"))
        if (v := Path(f).read_text().strip()).isdigit()
    ]
    if not khz:
        text = Path("/proc/cpuinfo").read_text()
        khz = [float(ln.split(":")[1]) for ln in text.splitlines() if ln.startswith("cpu MHz")]
    return max(1, math.floor(min(khz))) if khz else 1


def _cpu(inv: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    cpus = inv.get("cpus") or []
    if not cpus or not cpus[0].get("model") or not cpus[0].get("cores"):
        raise RuntimeError(f"the agent's inventory gives no CPU model and cores: {cpus} {inv.get('gaps')}")
    first = cpus[0]
    clock = int(first.get("max_speed_mhz") or 0) or _clock_mhz()
    return {
        **base,
        "model": first["model"],
        "vendor": first.get("vendor") or base["vendor"],
        "sockets": len(cpus),
        "cores_per_socket": first["cores"],
        "threads_per_core": max(1, int(first.get("threads") or first["cores"]) // first["cores"]),
        "base_mhz": clock,
        "boost_mhz": clock,
        "cpuid_family": first.get("family") or base["cpuid_family"],
        "cpuid_model": first.get("model_id"),
    }


def _memory(inv: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    dimms = [d for d in inv.get("dimms") or [] if d.get("present", True)]
    total_mib = int(inv.get("memory_total_mib") or 1024)
    # Without the DIMMs' speed and channels the triad's theoretical peak is a placeholder: the floor
    # then catches only a stalled triad, not slow memory (as profiles-lab/lab-vm.yaml does for TCG).
    floors = {"triad_fail_below_pct": 0.1, "triad_warn_below_pct": 0.5}
    if not dimms:  # no SMBIOS here: the shape is unknown; the waivers below say so
        size_gib, kind, ecc, mts = math.ceil(total_mib / 1024), "RAM", False, 3200
    else:
        size_gib = max(1, round(int(dimms[0].get("size_mib") or 1024) / 1024))
        kind, ecc = dimms[0].get("type") or "RAM", all(d.get("ecc") for d in dimms)
        mts = int(dimms[0].get("configured_mts") or dimms[0].get("rated_mts") or 3200)
    return {
        **{k: v for k, v in base.items() if k not in ("part_number", "ranks")},
        "dimm_count": max(1, len(dimms)),
        "dimm_size_gib": size_gib,
        "type": kind,
        "form": "DIMM",
        "ecc": ecc,
        "rated_mts": mts,
        "configured_mts_allowed": [mts],
        "configured_mts_expected": mts,
        "populated_channels_per_socket": 1,
        **floors,
    }


def waivers(inv: dict[str, Any]) -> list[dict[str, str]]:
    """What this machine (or the test BMC) cannot give evidence for: only the gaps the inventory shows."""
    gaps: dict[str, str] = inv.get("gaps") or {}
    out = []
    if not inv.get("dimms"):
        why = gaps.get("memory.dimms", "the OS lists no DIMMs")
        for check in ("dimm_count", "memory_total_mib"):
            out.append({"check": check, "reason": f"no DIMM list on this machine ({why})"})
    if "gpus" in gaps:
        out.append({"check": "gpu_count", "reason": f"no NVIDIA driver to count with ({gaps['gpus']})"})
    nic = management_nic(inv)
    if nic.get("speed_mbps") is None:
        out.append(
            {
                "check": "nic_link",
                "reason": f"{nic['name']} ({nic.get('driver')}) reports no link speed "
                f"(/sys/class/net/{nic['name']}/speed)",
            }
        )
    if not glob.glob(str(SYS / "class/hwmon/hwmon*")):
        out.append({"check": "cpu_temperature", "reason": "no hwmon sensor at all in /sys/class/hwmon"})
    out.append(
        {
            "check": "peak_power",
            "reason": f"no RAPL counter or PDU here, and {FAKE_BMC} serves no Power resource",
        }
    )
    return out


def machine_profile(base: dict[str, Any], inv: dict[str, Any], cpu_s: int) -> dict[str, Any]:
    """`base` (a shipped profile, as YAML data) made into this machine, with a short plan (cpu and
    memory suites) that is also its acceptance contract."""
    nic = management_nic(inv)
    speed_mbps = nic.get("speed_mbps")
    profile = dict(base)
    profile["lab"] = True
    profile["chassis"] = {**base["chassis"], "vendor": "Sushy Emulator"}  # what the test BMC says
    profile["cpu"] = _cpu(inv, base["cpu"])
    profile["memory"] = _memory(inv, base["memory"])
    profile.pop("gpus", None)
    profile.pop("gpu_floors", None)
    profile["storage"] = []
    profile["network"] = [
        {"name": "eth0", "role": "management", "speed_gbps": max(1, (speed_mbps or 1000) // 1000)}
    ]
    profile["acceptance"] = {
        "pre_os_required": True,
        "firmware_min": {},
        "floors": [],
        "counters": [],
        "not_required": waivers(inv),
    }
    # A few seconds of each suite this hardware has; 64 MiB for stress-ng vm keeps its pass short.
    suites = [
        {"suite": "cpu", "duration_s": cpu_s},
        {"suite": "memory", "duration_s": 4, "options": {"max_mib": 64}},
    ]
    quick = {"sample_interval_s": 0.5, "suites": suites}
    profile["burnin"] = {"quick": quick, "acceptance": quick}
    return profile
