"""`provision host` / `reinstall` bad input, fleet selection and the fleet's summary: no servers."""

from __future__ import annotations

from pathlib import Path

import pytest

from provision.cli.launch import apply_timeouts
from provision.cli.main import main
from provision.flow.fleet import FleetRow, select_hosts, summary_table
from provision.model.catalog import load_catalog
from provision.model.errors import BadInput
from provision.model.profile import Timeouts
from tests.conftest import PROFILES


def provision(capsys: pytest.CaptureFixture[str], *args: str, state: Path) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exc:
        main(["--profiles", str(PROFILES), "--state", str(state), *args])
    return int(exc.value.code or 0), capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["host", "inferno-host-master", "--all"],
            "provision: host: expected a HOST or one of --all/--rack/--circle, "
            "got both ('inferno-host-master')\n",
        ),
        (["host"], "provision: host: expected a HOST, or --all, --rack R or --circle N, got none\n"),
        (
            ["host", "--circle", "9"],
            "provision: --circle: expected a circle with hosts (1, 2, 6), got 9\n",
        ),
        (
            ["host", "--rack", "circle-9-x"],
            "provision: --rack: expected a rack with hosts (circle-1-limbo, circle-2-lust, circle-6-heresy), "
            "got 'circle-9-x'\n",
        ),
        (
            ["host", "inferno-host-master", "--restart-from", "pxe"],
            "provision: --restart-from: expected one of inspect, firmware, bios, render_kickstart, open_run, "
            "pxe_boot, wait_install, boot_disk, wait_ssh, start_burnin, follow_burnin, collect, validate, "
            "report, handoff, got 'pxe'\n",
        ),
        (
            ["host", "inferno-host-master", "--timeout", "install=5"],
            "provision: --timeout: expected NAME=SECONDS with NAME one of power_s, install_start_s, "
            "install_s, ssh_s, burnin_margin_s, collect_s, poll_s, got 'install=5'\n",
        ),
        (
            ["host", "inferno-host-master", "--timeout", "install_s=-1"],
            "provision: --timeout install_s: expected a number of seconds > 0, got '-1'\n",
        ),
        (
            ["reinstall", "inferno-host-nope"],
            "provision: {profiles}/hosts.yaml: host: expected one of inferno-host-compute-1, "
            "inferno-host-exper-1, inferno-host-master, got 'inferno-host-nope'\n",
        ),
    ],
)
def test_host_and_reinstall_refuse_bad_input_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, err = provision(capsys, *args, state=tmp_path / "state")
    assert code == 2
    assert err == message.format(profiles=PROFILES)
    assert not (tmp_path / "state" / "state.sqlite3").exists()  # nothing was started


def test_fleet_selection_by_rack_and_circle() -> None:
    catalog = load_catalog(PROFILES)
    assert [h.name for h in select_hosts(catalog, True, None, None)] == [
        "inferno-host-compute-1",
        "inferno-host-exper-1",
        "inferno-host-master",
    ]
    assert [h.name for h in select_hosts(catalog, False, "circle-2-lust", None)] == ["inferno-host-compute-1"]
    assert [h.name for h in select_hosts(catalog, False, None, 6)] == ["inferno-host-exper-1"]
    with pytest.raises(BadInput) as exc:
        select_hosts(catalog, True, "circle-2-lust", None)
    assert str(exc.value) == "fleet: expected exactly one of --all, --rack, --circle, got --all, --rack"


def test_fleet_summary_table_lists_every_host_and_the_counts() -> None:
    rows = [
        FleetRow("inferno-host-compute-1", "ok", "accepted", "r1", None, "", 812.4, "l1"),
        FleetRow("inferno-host-exper-1", "failed", None, "r2", "wait_ssh", "timed out", 1200.0, "l2", 3),
        FleetRow("inferno-host-master", "error", None, None, None, "locked by pid 7", 0.0, "l3", 2),
    ]
    assert summary_table(rows).splitlines() == [
        "host                    outcome      verdict    elapsed  detail",
        "inferno-host-compute-1  ok           accepted    812.4s  run r1",
        "inferno-host-exper-1    failed       -          1200.0s  wait_ssh: timed out",
        "inferno-host-master     error        -             0.0s  locked by pid 7",
        "1 accepted, 1 error, 1 failed",
    ]


def test_timeouts_from_the_command_line_override_the_profile() -> None:
    got = apply_timeouts(Timeouts(), ["install_s=600", "poll_s=0.5"])
    assert (got.install_s, got.poll_s, got.ssh_s) == (600, 0.5, Timeouts().ssh_s)
