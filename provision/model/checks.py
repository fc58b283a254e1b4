"""Every check id (Finding.check) the validation engine (provision/acceptance/validation) and the
burn-in agent (burnin/) can emit, in one list. It lives in the model so `provision lint` can read it.

`provision lint` refuses an `acceptance.not_required` waiver that names none of these (a typo waives
nothing), and refuses waivers of evidence classes outside a profile marked `lab: true`.
tests/test_waivers.py scans the engine's and the agent's sources and fails when a check they make is
missing here. Pure: no imports from the rest of the project.
"""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase

# How reports show a waived finding (Finding.waived holds the waiver's reason): "waived: <reason>".
WAIVED = "waived: "

KNOWN_CHECKS: frozenset[str] = frozenset(
    [
        "ata_crc_errors",
        "ata_error_attributes",
        "bios_attribute_valid",
        "bios_iommu_in_os",
        "bios_nps_in_os",
        "bios_setting",
        "bios_smt_in_os",
        "bmc_default_account",
        "bmc_ipmi_lan",
        "bmc_plain_http",
        "bmc_self_signed_cert",
        "bmc_after_burnin",
        "boot_disk_count",
        "boot_disks_found",
        "boot_mirror",
        "clock_under_load",
        "cpu_cores",
        "cpu_family",
        "cpu_model",
        "cpu_socket_count",
        "cpu_sockets",
        "cpu_temperature",
        "cpu_threads",
        "cpu_views_agree",
        "dimm_configured_mts",
        "dimm_count",
        "dimm_count_socket",
        "dimm_ecc",
        "dimm_part_number",
        "dimm_present",
        "dimm_rank",
        "dimm_rated_mts",
        "dimm_size",
        "dimm_size_mib",
        "dimm_speed",
        "dimm_type",
        "drive_capacity",
        "drive_capacity_bytes",
        "drive_count",
        "drive_pcie_gen",
        "drive_pcie_width",
        "edac_errors",
        "fio_read",
        "firmware_baseline",
        "firmware_uniform",
        "firmware_update",
        "gpu_burn",
        "gpu_clock_events",
        "gpu_compute_capability",
        "gpu_copies_reported",
        "gpu_copy_both",
        "gpu_copy_d2h",
        "gpu_copy_data",
        "gpu_copy_h2d",
        "gpu_copy_spread",
        "gpu_count",
        "gpu_dcgm_diag",
        "gpu_driver",
        "gpu_ecc_corrected",
        "gpu_ecc_enabled",
        "gpu_ecc_mode",
        "gpu_ecc_uncorrected",
        "gpu_memory",
        "gpu_memory_mib",
        "gpu_name",
        "gpu_node_power",
        "gpu_nccl_allreduce",
        "gpu_nccl_floor",
        "gpu_p2p_access",
        "gpu_p2p_bandwidth",
        "gpu_p2p_data",
        "gpu_p2p_floor",
        "gpu_p2p_matrix",
        "gpu_pci_device_id",
        "gpu_pcie_gen",
        "gpu_pcie_link",
        "gpu_pcie_replay",
        "gpu_pcie_width",
        "gpu_power_limit",
        "gpu_power_result",
        "gpu_power_limit_w",
        "gpu_present",
        "gpu_row_remap",
        "gpu_run_complete",
        "gpu_stress_result",
        "gpu_sustained_power",
        "gpu_temperature",
        "gpu_temperature_margin",
        "gpu_xid",
        "inventory_collected",
        "kernel_hw_errors",
        "logical_cpus",
        "memory_channels_per_socket",
        "memory_total",
        "memory_total_mib",
        "memtester",
        "nic_link",
        "nic_present",
        "nic_speed",
        "nvme_capacity",
        "nvme_count",
        "nvme_critical_temp_time",
        "nvme_critical_warning",
        "nvme_link",
        "nvme_media_errors",
        "nvme_present",
        "nvme_sibling_spread",
        "nvme_spare",
        "nvme_warning_temp_time",
        "nvme_wear",
        "part_health",
        "peak_power",
        "pdu_bmc_agree",
        "pdu_circuit_peak",
        "pre_os_crosscheck",
        "psu_capacity",
        "psu_count",
        "psu_headroom",
        "psu_redundancy",
        "sata_link",
        "smart_history",
        "smart_status",
        "soak_cpu_load_pct",
        "soak_gpu_joined",
        "soak_gpu_load",
        "suite_completed",
        "suite_ran",
        "suite_thread",
        "system_serial_match",
        "system_vendor",
        "temperature_max",
        "triad_bandwidth",
        "triad_check",
        "verify_crc32c",
        "write_verify",
    ]
)

# Check ids made from a name at run time (fnmatch patterns): firmware minimums, BMC/OS cross-checks,
# per-role drive counts, the CPU suite's per-stressor checks, the GPU throughput spreads and floors.
KNOWN_CHECK_PATTERNS: tuple[str, ...] = (
    "contract_*",  # the acceptance contract (acceptance/validation/contract.py); never waivable
    "firmware_min_*",
    "*_seen_by_bmc",
    "*_seen_by_os",
    "*_views_agree",
    "*_drive_count",
    "*_stress",
    "*_workers",
    "*_metrics",
    "gpu_throughput_*",
)

# Evidence classes: waiving one would accept a node on evidence that was never given (a suite that
# never ran or finished, a stress result, ECC, XIDs). Only a profile marked `lab: true` may.
EVIDENCE_CLASSES: tuple[str, ...] = (
    "suite_completed",
    "suite_ran",
    "suite_thread",
    "*_stress_result",
    "*_stress",  # the CPU suite's per-stressor result ({stressor}_stress)
    "stress_*",
    "*ecc*",
    "gpu_xid",
    "part_health",  # the BMC's own word on a part: a Critical PSU or an offline drive
    "bmc_event_log",
)


def is_known_check(check: str, extra: Iterable[str] = ()) -> bool:
    """A check id the engine or the agent can emit; `extra` adds a profile's own floor/counter ids."""
    return (
        check in KNOWN_CHECKS
        or check in set(extra)
        or any(fnmatchcase(check, p) for p in KNOWN_CHECK_PATTERNS)
    )


def evidence_class(check: str) -> str | None:
    """The evidence class a check id belongs to (the pattern it matches), or None."""
    return next((p for p in EVIDENCE_CLASSES if fnmatchcase(check, p)), None)


__all__ = [
    "EVIDENCE_CLASSES",
    "KNOWN_CHECKS",
    "KNOWN_CHECK_PATTERNS",
    "WAIVED",
    "evidence_class",
    "is_known_check",
]
