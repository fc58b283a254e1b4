"""`provision lint`: the shipped files pass with the seed's conflicts as warnings; each broken rule
of the taxonomy or the hardware is a finding at the right file:line."""

from __future__ import annotations

import functools
import json
import shutil
from pathlib import Path

import pytest

from provision.cli import main as cli
from provision.lint.catalog import LintFinding, Severity, lint_catalog
from provision.model.catalog import load_catalog
from provision.model.taxonomy import SINS, parse_rack, rack_problem
from tests.conftest import PROFILES

FIXTURE = Path(__file__).parent / "data" / "profiles"  # frozen: the rule table names its lines

LUST, HERESY, LIMBO, HOSTS = "circle-2-lust.yaml", "circle-6-heresy.yaml", "circle-1-limbo.yaml", "hosts.yaml"


@functools.cache
def _shipped() -> frozenset[tuple[str, str, str, int, str]]:
    return frozenset(_key(f) for f in lint_catalog(load_catalog(FIXTURE)))


def _key(f: LintFinding) -> tuple[str, str, str, int, str]:
    return (str(f.severity), f.code, Path(f.file).name, f.line, f.field)


def _run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        cli.main(args)
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


def test_shipped_files_pass_with_the_seed_conflicts_as_warnings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run_cli(["--profiles", str(PROFILES), "--state", str(tmp_path), "lint"], capsys)
    assert (code, err) == (0, "")
    by_code = {(Path(f.file).name, f.code): f for f in lint_catalog(load_catalog(PROFILES))}
    assert not [f for f in by_code.values() if f.severity is Severity.error]

    heresy = by_code[(HERESY, "memory.dimm-slots")]
    assert (heresy.severity, heresy.field) == (Severity.warning, "memory.dimm_count")
    assert (PROFILES / HERESY).read_text().splitlines()[heresy.line - 1] == "  dimm_count: 16"
    assert heresy.message == (
        "the seed's 16 DIMMs (512 GiB) cannot be installed: 1 socket(s) x 12 slots = 12 slots "
        "(12 channels per socket, 1 DIMM per channel); at most 12 x 32 GiB = 384 GiB fit, and slots wired "
        "to an empty socket are dead. Expect the installed DIMMs, not the seed's count, at inspection"
    )
    lust = by_code[(LUST, "power.expected-draw")]
    assert (lust.severity, lust.field) == (Severity.warning, "power.expected_draw_w")
    assert lust.message == (
        "a full burn draws about 2 x 400 W CPU + 4 x 300 W GPU + 700 W other = 2700 W, above the seed's "
        "2300 W; the feed's continuous rating is 4992 W; the feed carries the whole burn: the soak loads "
        "CPUs and GPUs together at full load"
    )
    limbo = by_code[(LIMBO, "memory.bandwidth")]
    assert (limbo.severity, limbo.field) == (Severity.warning, "memory.populated_channels_per_socket")
    assert limbo.message == (
        "8 DIMMs over 2 socket(s) fill 4 of 12 channels per socket: peak 307.2 GB/s at 4800 MT/s, "
        "a third (33%) of the 921.6 GB/s all channels would give; the burn-in expects the lower figure"
    )
    # Configured versus rated DIMM speed is information, not a warning.
    speed = by_code[(LIMBO, "memory.speed-configured")]
    assert speed.severity is Severity.info and "rated 6400 MT/s train at 4800 MT/s" in speed.message
    for f in (heresy, lust, limbo):
        assert f"{f.file}:{f.line}: warning: {f.field}: {f.message}" in out.splitlines()
    assert out.splitlines()[-1].startswith("3 profiles, 3 hosts: 0 errors, ")


def test_every_finding_points_at_its_field(tmp_path: Path) -> None:
    for f in lint_catalog(load_catalog(PROFILES)):
        line = Path(f.file).read_text().splitlines()[f.line - 1]
        last = f.field.split(".")[-1].split("[")[0]
        assert last in line, f"{f.file}:{f.line} does not show {f.field}: {line!r}"


def test_json_output_carries_every_finding(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run_cli(["--profiles", str(PROFILES), "--state", str(tmp_path), "lint", "--json"], capsys)
    data = json.loads(out)
    findings = lint_catalog(load_catalog(PROFILES))
    assert code == 0
    assert data["counts"]["error"] == 0 and data["counts"]["warning"] >= 3
    assert [f["text"] for f in data["findings"]] == [f.line_text() for f in findings]
    assert set(data["findings"][0]) == {"severity", "code", "file", "line", "field", "message", "text"}


CIRCLE_2_HOST = """  - name: inferno-host-compute-2
    profile: circle-2-lust
    rack: circle-2-lust
    pdu: inferno-pdu-circle2-1
    pdu_outlet: {outlet}
    boot_mac: "3c:ec:ef:20:02:10"
    interfaces:
      - {{name: eth0, mac: "3c:ec:ef:20:02:10", address: 10.0.2.12/24}}
      - {{name: eth1, mac: "3c:ec:ef:20:02:11", address: 10.20.2.12/24}}
    bmc: {{url: "https://10.0.1.22", credentials: "env:INFERNO_BMC_COMPUTE_2"}}
"""

# id, file, old text, new text, the finding it must produce: (severity, code, file, line, field)
RULES = [
    ("host-name", HOSTS, "name: inferno-host-compute-1", "name: inferno-compute-1",
     ("error", "taxonomy.host", HOSTS, 4, "hosts[0].name")),
    ("rack-wrong-sin", HOSTS, "rack: circle-2-lust", "rack: circle-2-greed",
     ("error", "taxonomy.rack", HOSTS, 6, "hosts[0].rack")),
    ("rack-circle-10", LUST, "  rack: circle-2-lust", "  rack: circle-10-lust",
     ("error", "taxonomy.rack", LUST, 86, "platform.rack")),
    ("host-rack-vs-profile", HOSTS, "rack: circle-2-lust", "rack: circle-6-heresy",
     ("error", "host.rack", HOSTS, 6, "hosts[0].rack")),
    ("pdu-circle-vs-rack", HOSTS, "pdu: inferno-pdu-circle2-1", "pdu: inferno-pdu-circle6-2",
     ("error", "host.pdu-circle", HOSTS, 7, "hosts[0].pdu")),
    ("pdu-grammar", LUST, "  pdu: inferno-pdu-circle2-1", "  pdu: pdu-2",
     ("error", "taxonomy.pdu", LUST, 78, "power.pdu")),
    ("label-vs-rack", LUST, 'labels: {inferno.circle: "2"}', 'labels: {inferno.circle: "6"}',
     ("error", "taxonomy.label-circle", LUST, 89, "platform.labels.inferno.circle")),
    ("label-missing", LUST, 'labels: {inferno.circle: "2"}', "labels: {team: ml}",
     ("error", "taxonomy.label", LUST, 89, "platform.labels")),
    ("namespace-vs-rack", LUST, "namespace: inferno-circle-2", "namespace: inferno-circle-6",
     ("error", "taxonomy.namespace-circle", LUST, 92, "platform.namespace")),
    ("namespace-grammar", LUST, "namespace: inferno-circle-2", "namespace: gpu-workloads",
     ("error", "taxonomy.namespace", LUST, 92, "platform.namespace")),
    ("pool-grammar", LUST, "pool: inferno-pool-gpu", "pool: gpu",
     ("error", "taxonomy.pool", LUST, 88, "platform.pool")),
    ("pool-vs-circle", LUST, "pool: inferno-pool-gpu", "pool: inferno-pool-master",
     ("error", "taxonomy.pool-circle", LUST, 88, "platform.pool")),
    ("circle-vs-rack", LUST, "  circle: 2", "  circle: 3",
     ("error", "taxonomy.circle", LUST, 87, "platform.circle")),
    ("taint-not-as-seed", LUST, "effect: NoSchedule}", "effect: NoExecute}",
     ("error", "taxonomy.taint-seed", LUST, 91, "platform.taints[0]")),
    ("taint-missing", LUST, "{key: inferno/gpu,", "{key: inferno/other,",
     ("error", "taxonomy.taint-missing", LUST, 90, "platform.taints")),
    ("taint-grammar", HERESY, "key: inferno/experiment", "key: experiment",
     ("error", "taxonomy.taint", HERESY, 82, "platform.taints[0].key")),
    ("switch-grammar", LUST, "peer: inferno-switch-aggregation-1", "peer: core-sw",
     ("error", "taxonomy.switch", LUST, 74, "network[1].peer")),
    ("gpu-resource", LUST, "resource_name: nvidia.com/gpu", "resource_name: nvidia.com/mig",
     ("error", "taxonomy.gpu-resource", LUST, 54, "gpus.resource_name")),
    ("channels-over-cpu", LIMBO, "populated_channels_per_socket: 4", "populated_channels_per_socket: 14",
     ("error", "memory.channels", LIMBO, 32, "memory.populated_channels_per_socket")),
    ("channels-over-dimms", LIMBO, "populated_channels_per_socket: 4", "populated_channels_per_socket: 6",
     ("error", "memory.populated", LIMBO, 32, "memory.populated_channels_per_socket")),
    ("speed-not-allowed", LUST, "configured_mts_expected: 6000", "configured_mts_expected: 5600",
     ("error", "memory.speed", LUST, 32, "memory.configured_mts_expected")),
    ("speed-over-rating", LUST, "[6000, 6400]", "[6000, 6400, 7200]",
     ("error", "memory.speed-rated", LUST, 31, "memory.configured_mts_allowed[2]")),
    ("uneven-dimms", LUST, "dimm_count: 24", "dimm_count: 23",
     ("warning", "memory.unbalanced", LUST, 24, "memory.dimm_count")),
    ("triad-thresholds", LUST, "triad_warn_below_pct: 80", "triad_warn_below_pct: 70",
     ("error", "memory.triad", LUST, 35, "memory.triad_warn_below_pct")),
    ("boost-below-base", LUST, "boost_mhz: 4500", "boost_mhz: 2000",
     ("error", "cpu.clocks", LUST, 17, "cpu.boost_mhz")),
    ("gpus-over-slots", LUST, "gpus:\n  count: 4", "gpus:\n  count: 10",
     ("error", "gpus.slots", LUST, 37, "gpus.count")),
    ("receptacle-rating", LUST, "circuit_amps: 30", "circuit_amps: 40",
     ("error", "power.receptacle-rating", LUST, 80, "power.circuit_amps")),
    ("receptacle-unknown", LUST, "receptacle: NEMA 6-30R", "receptacle: NEMA 14-50R",
     ("warning", "power.receptacle", LUST, 79, "power.receptacle")),
    ("burn-over-feed", HERESY, "circuit_amps: 20", "circuit_amps: 5",
     ("error", "power.burn-feed", HERESY, 72, "power.circuit_amps")),
    ("draw-over-feed", LIMBO, "expected_draw_w: 600", "expected_draw_w: 3000",
     ("error", "power.feed", LIMBO, 48, "power.expected_draw_w")),
    ("boot-destructive", LUST, "link_gbps: 6.0\n    destructive_allowed: false",
     "link_gbps: 6.0\n    destructive_allowed: true",
     ("error", "storage.boot-destructive", LUST, 63, "storage[0].destructive_allowed")),
    ("raid1-count", LIMBO, "    count: 2\n    interface: sata", "    count: 3\n    interface: sata",
     ("error", "storage.raid1", LIMBO, 37, "storage[0].count")),
    ("plan-misses-gpu", LUST, "      - {suite: gpu, duration_s: 14400}\n", "",
     ("error", "plan.missing", LUST, 120, "burnin.acceptance.suites")),
    ("quick-misses-gpu", LUST, "      - {suite: gpu, duration_s: 30}\n", "",
     ("warning", "plan.missing", LUST, 110, "burnin.quick.suites")),
    ("plan-tests-absent-gpu", LIMBO, "      - {suite: boot_disks, duration_s: 600}\n",
     "      - {suite: boot_disks, duration_s: 600}\n      - {suite: gpu, duration_s: 600}\n",
     ("error", "plan.absent-hardware", LIMBO, 81, "burnin.acceptance.suites[3].suite")),
    ("plan-duplicate", LIMBO, "      - {suite: boot_disks, duration_s: 600}\n",
     "      - {suite: boot_disks, duration_s: 600}\n      - {suite: boot_disks, duration_s: 60}\n",
     ("error", "plan.duplicate", LIMBO, 77, "burnin.acceptance.suites")),
    ("destructive-not-allowed", LUST, "pcie_width: 4\n    destructive_allowed: true",
     "pcie_width: 4\n    destructive_allowed: false",
     ("error", "plan.destructive", LUST, 123, "burnin.acceptance.suites[2].options.destructive")),
    ("duplicate-mac", HOSTS, '"3c:ec:ef:60:01:11"', '"3c:ec:ef:20:01:11"',
     ("error", "host.duplicate-mac", HOSTS, 26, "hosts[1].interfaces[1].mac")),
    ("duplicate-address", HOSTS, "address: 10.20.6.11/24", "address: 10.20.2.11/24",
     ("error", "host.duplicate-address", HOSTS, 26, "hosts[1].interfaces[1].address")),
    ("duplicate-bmc", HOSTS, "url: https://10.0.1.26", "url: https://10.0.1.21",
     ("error", "host.duplicate-bmc", HOSTS, 28, "hosts[1].bmc.url")),
    ("boot-mac-not-an-interface", HOSTS, '"3c:ec:ef:20:01:10"\n', '"3c:ec:ef:20:01:99"\n',
     ("error", "host.boot-mac", HOSTS, 9, "hosts[0].boot_mac")),
    ("interface-missing", HOSTS, '      - {name: eth1, mac: "3c:ec:ef:20:01:11", address: 10.20.2.11/24}\n',
     "",
     ("error", "host.interface-missing", HOSTS, 10, "hosts[0].interfaces")),
    ("interface-unknown", HOSTS, '{name: eth1, mac: "3c:ec:ef:20:01:11"',
     '{name: eth7, mac: "3c:ec:ef:20:01:11"',
     ("error", "host.interface-unknown", HOSTS, 12, "hosts[0].interfaces[1].name")),
    ("tls-off", HOSTS, "verify_tls: true\n  - name: inferno-host-exper-1",
     "verify_tls: false\n  - name: inferno-host-exper-1",
     ("warning", "host.bmc-tls", HOSTS, 17, "hosts[0].bmc.verify_tls")),
    ("bmc-plain-http", HOSTS, "url: https://10.0.1.21", "url: http://10.0.1.21",
     ("warning", "host.bmc-http", HOSTS, 14, "hosts[0].bmc.url")),
    ("reservation-not-seed", LUST, "reserved_memory_mib: 1024", "reserved_memory_mib: 2048",
     ("warning", "seed.reserved-memory", LUST, 94, "platform.reserved_memory_mib")),
    ("os-not-seed", LUST, 'version: "9.3"', 'version: "9.4"',
     ("warning", "seed.os", LUST, 95, "platform.os")),
    ("outlet-shared", HOSTS, "hosts:\n", "hosts:\n" + CIRCLE_2_HOST.format(outlet=1),
     ("error", "host.duplicate-outlet", HOSTS, 18, "hosts[1].pdu_outlet")),
    ("pdu-overloaded", HOSTS, "hosts:\n", "hosts:\n" + CIRCLE_2_HOST.format(outlet=2),
     ("error", "power.shared-pdu", HOSTS, 17, "hosts[1].pdu")),
]  # fmt: skip


@pytest.mark.parametrize("rule", RULES, ids=[r[0] for r in RULES])
def test_each_rule_finds_its_problem_at_its_line(
    rule: tuple[str, str, str, str, tuple[str, str, str, int, str]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, name, old, new, expected = rule
    d = tmp_path / "profiles"
    shutil.copytree(FIXTURE, d, ignore=shutil.ignore_patterns("*.md"))
    text = (d / name).read_text()
    assert old in text, f"the table is stale: {old!r} is not in {name}"
    (d / name).write_text(text.replace(old, new, 1))
    found = [f for f in lint_catalog(load_catalog(d)) if _key(f) not in _shipped()]
    assert expected in [_key(f) for f in found]
    code, out, err = _run_cli(["--profiles", str(d), "--state", str(tmp_path / "s"), "lint"], capsys)
    assert f"{d}/{name}:{expected[3]}: {expected[0]}: {expected[4]}: " in out
    errors = sum(f.severity is Severity.error for f in found)
    if errors:
        plural = "s" if errors != 1 else ""
        assert (code, err) == (2, f"provision: lint: {errors} error{plural} in {d} (see above)\n")
    else:
        assert (code, err) == (0, "")


@pytest.mark.parametrize("circle", sorted(SINS))
def test_rack_grammar_knows_every_circle(circle: int) -> None:
    good = f"circle-{circle}-{SINS[circle]}"
    assert rack_problem(good) is None and parse_rack(good) is not None
    wrong = SINS[circle % 9 + 1]
    assert rack_problem(f"circle-{circle}-{wrong}") == (
        f"circle-{circle}-{SINS[circle]} (circle {circle} is {SINS[circle]}, not {wrong})"
    )


def test_a_load_error_stops_lint_with_its_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run_cli(["--profiles", str(tmp_path / "nowhere"), "lint", "--json"], capsys)
    assert (code, out) == (2, "")
    assert err == f"provision: {tmp_path / 'nowhere'}: expected a profiles directory, got no such directory\n"


def test_one_bmc_managing_several_systems_is_no_duplicate(tmp_path: Path) -> None:
    """The lab's emulator (like a chassis manager) serves every host's system at one URL: the URL
    with the system's path is what must be unique."""
    d = tmp_path / "profiles"
    shutil.copytree(FIXTURE, d, ignore=shutil.ignore_patterns("*.md"))
    text = (d / HOSTS).read_text()
    assert "url: https://10.0.1.26" in text, "the fixture changed"
    second = text.index("url: https://10.0.1.26")
    head, tail = text[:second], text[second:]
    tail = tail.replace("url: https://10.0.1.26", "url: https://10.0.1.21", 1)
    (d / HOSTS).write_text(head + tail.replace("Systems/1", "Systems/2", 1))
    assert "host.duplicate-bmc" not in [f.code for f in lint_catalog(load_catalog(d))]
    (d / HOSTS).write_text(head + tail)  # the same URL and the same system: a duplicate
    assert "host.duplicate-bmc" in [f.code for f in lint_catalog(load_catalog(d))]
