"""Holding a stored run to its profile, as `report` and `burnin` both do: which profile, which golden
capture, which part-power patterns the telemetry is read with."""

from __future__ import annotations

import time
from importlib.metadata import version

from provision.acceptance.evaluation import Acceptance, evaluate
from provision.acceptance.runfiles import RunFiles, read_golden
from provision.cli.app import App
from provision.model.errors import BadInput
from provision.model.profile import Profile

LOCAL_HOST = "local"  # the host name `provision burnin --local` keeps its runs under


def power_sums(app: App) -> set[tuple[str, ...]]:
    """Every profile's part-power patterns: the telemetry is read before its profile is known."""
    return {tuple(p.acceptance.part_power_series) for p in app.catalog.profiles.values()}


def tool_version() -> str:
    return version("inferno-provision")


def accept_files(app: App, files: RunFiles, kind: str, profile_name: str | None) -> Acceptance:
    """Hold a run to its profile: the host's (from hosts.yaml) or the one named with --profile."""
    catalog = app.catalog
    host = catalog.hosts.get(files.run.host)
    profile: Profile | None
    if profile_name is not None:
        if profile_name not in catalog.profiles:
            known = ", ".join(sorted(catalog.profiles))
            raise BadInput(f"--profile: expected one of {known}, got {profile_name!r}")
        profile = catalog.profiles[profile_name]
    else:
        profile = catalog.profile_of(host) if host else None
    golden = read_golden(app.profiles_dir, profile.name) if profile else None
    return evaluate(
        files,
        host_name=files.run.host,
        profile=profile,
        host=host,
        golden=golden,
        kind=kind,
        generated_at=time.time(),
        tool_version=tool_version(),
    )
