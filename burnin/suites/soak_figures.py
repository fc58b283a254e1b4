"""Pure figures of the soak from the run's telemetry: the node's peak power with CPUs and GPUs loaded
together, and the hottest CPU and GPU. Series (burnin.telemetry, burnin.suites.gpu_stress):
`gpu<i>.power_w`, `gpu<i>.temp_c`, `power.package-<n>.<zone>_w` (RAPL), CPU temperatures by prefix.

Standard library only, Python >= 3.9.
"""

from __future__ import annotations

from typing import Dict, List, Optional

from burnin.context import SuiteContext

RAPL_PACKAGE_PREFIX = "power.package-"


def _per_tick(ctx: SuiteContext, prefixes: List[str], since: float) -> Dict[float, float]:
    """Sum of the series under `prefixes` at each telemetry tick (one tick samples every source)."""
    out: Dict[float, float] = {}
    for prefix in prefixes:
        for t, v in ctx.samples(prefix, since):
            out[t] = out.get(t, 0.0) + v
    return out


def peak_node_power(
    ctx: SuiteContext, since: float, gpu_indexes: List[int], gaps: Dict[str, str]
) -> Optional[float]:
    """Max over the ticks since `since` of all-GPU power + RAPL package power. With both series, only
    ticks that have both count (a tick with one half would understate the node); with one, that one,
    and the missing half is noted in `gaps`; with neither, None and the reason in `gaps`."""
    gpu = _per_tick(ctx, [f"gpu{i}.power_w" for i in gpu_indexes], since)
    cpu = _per_tick(ctx, [RAPL_PACKAGE_PREFIX], since)
    if gpu and cpu:
        both = [gpu[t] + cpu[t] for t in gpu if t in cpu]
        if both:
            return round(max(both), 1)
        gaps["peak_node_power_w"] = "GPU and RAPL power were never sampled in the same tick"
        return None
    if not gpu and not cpu:
        gaps["peak_node_power_w"] = (
            "neither GPU power (gpu<i>.power_w) nor CPU package power (RAPL) was sampled during the soak"
        )
        return None
    if gpu:
        gaps["peak_node_power_w"] = "no CPU package power (RAPL) sampled: GPU power only"
        return round(max(gpu.values()), 1)
    if gpu_indexes:
        gaps["peak_node_power_w"] = "no GPU power sampled: CPU package power (RAPL) only"
    return round(max(cpu.values()), 1)


def max_temps(
    ctx: SuiteContext, since: float, cpu_prefix: str, gpu_indexes: List[int], gpu_nvml_max_c: Optional[float]
) -> Dict[str, Optional[float]]:
    """{"cpu_c": hottest CPU sensor, "gpu_c": hottest GPU (telemetry or the GPU half's own NVML rounds)}."""
    cpu = [v for _, v in ctx.samples(cpu_prefix, since)]
    gpu = [v for i in gpu_indexes for _, v in ctx.samples(f"gpu{i}.temp_c", since)]
    if gpu_nvml_max_c is not None:
        gpu.append(float(gpu_nvml_max_c))
    return {"cpu_c": max(cpu) if cpu else None, "gpu_c": max(gpu) if gpu else None}
