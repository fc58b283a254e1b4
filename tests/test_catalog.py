from __future__ import annotations

from provision.model.catalog import load_catalog
from tests.conftest import PROFILES


def test_shipped_catalog_loads_the_three_seed_hosts() -> None:
    catalog = load_catalog(PROFILES)
    assert set(catalog.hosts) == {"inferno-host-compute-1", "inferno-host-exper-1", "inferno-host-master"}
    lust = catalog.profile_of(catalog.host("inferno-host-compute-1"))
    assert lust.cpu.logical_cpus == 384
    assert lust.memory.total_gib == 768
    assert lust.gpus is not None and lust.gpus.memory_mib == 97887
