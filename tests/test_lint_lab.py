"""`provision lint` of the embedded lab's profiles (profiles-lab/, whose site says `naming: lab`):
clean, its host names held to the lab's own grammar, its CA "made by `provision lab up`" until the
lab is up; and the same rules unchanged for a real site, which cannot borrow the lab's naming."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from provision.cli import main as cli
from provision.lint.catalog import LintFinding, Severity, lint_catalog
from provision.model.catalog import load_catalog
from provision.model.errors import BadInput
from provision.model.naming import Naming, host_grammar_problem, is_loopback_url, lab_of_ca
from tests.support.labprofiles import lab_profiles

REPO = Path(__file__).resolve().parent.parent
LAB = REPO / "profiles-lab"
FIXTURE = Path(__file__).parent / "data" / "profiles"


def _lint(directory: Path) -> list[LintFinding]:
    return lint_catalog(load_catalog(directory))


def _codes(findings: list[LintFinding], severity: Severity) -> list[tuple[str, str]]:
    return [(f.code, f.field) for f in findings if f.severity is severity]


def test_the_shipped_lab_profiles_lint_without_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    findings = _lint(LAB)
    assert _codes(findings, Severity.error) == []
    notes = [f for f in findings if f.code == "host.bmc-tls-lab"]
    assert [(f.severity, f.field, f.line) for f in notes] == [
        (Severity.info, f"hosts[{i}].bmc.verify_tls", line) for i, line in enumerate((17, 36, 55))
    ]
    ca = "/root/.local/state/inferno-provision/lab/lab/bmc/ca.pem"
    assert notes[0].message == (
        f"{ca}: not made yet: `provision lab up --id lab` makes it (the profiles it writes to "
        "<state>/lab/<id>/profiles name that lab's own CA)"
    )
    with pytest.raises(SystemExit) as exc:
        cli.main(["--profiles", str(LAB), "--state", str(tmp_path), "lint"])
    out = capsys.readouterr().out
    assert exc.value.code in (0, None)
    assert "0 errors" in out and "3 notes" in out


def test_the_profiles_lab_up_writes_lint_without_errors_or_notes(tmp_path: Path) -> None:
    """Once `lab up` has made the CA, nothing is left to say about it."""
    lab, secrets = lab_profiles(tmp_path)
    catalog = load_catalog(lab.profiles)
    assert catalog.site.naming is Naming.lab
    assert lab_of_ca(str(secrets.ca_cert)) == "t1"  # the path lint knows is the one `lab up` writes
    findings = lint_catalog(catalog)
    assert _codes(findings, Severity.error) == []
    assert _codes(findings, Severity.info) == []


def _copy(src: Path, tmp_path: Path) -> Path:
    d = tmp_path / "profiles"
    shutil.copytree(src, d, ignore=shutil.ignore_patterns("*.md"))
    return d


def test_a_real_site_keeps_the_taxonomy_and_the_ca_error(tmp_path: Path) -> None:
    d = _copy(FIXTURE, tmp_path)
    hosts = d / "hosts.yaml"
    text = hosts.read_text()
    assert text.count("verify_tls: true") == 3, "the fixture changed"
    lab_ca = str(tmp_path / "state" / "lab" / "lab" / "bmc" / "ca.pem")  # shaped like the lab's CA
    text = text.replace("name: inferno-host-compute-1", "name: lab-node-1", 1)
    hosts.write_text(text.replace("verify_tls: true", f"verify_tls: {lab_ca}", 1))
    by_code = {f.code: f for f in _lint(d)}
    assert by_code["taxonomy.host"].severity is Severity.error
    assert by_code["taxonomy.host"].message == (
        "expected inferno-host-<role>-<n> or inferno-host-master, got 'lab-node-1'"
    )
    assert by_code["host.bmc-tls-file"].severity is Severity.error
    assert by_code["host.bmc-tls-file"].message == (
        f"expected a readable CA bundle file, got {lab_ca!r} (No such file or directory)"
    )
    assert "host.bmc-tls-lab" not in by_code


def test_a_real_site_cannot_borrow_the_lab_naming(tmp_path: Path) -> None:
    d = _copy(FIXTURE, tmp_path)
    (d / "site.yaml").write_text("naming: lab\n")
    findings = _lint(d)
    borrowed = [f for f in findings if f.code == "site.naming-lab"]
    assert [(f.severity, f.field) for f in borrowed] == [
        (Severity.error, f"hosts[{i}].bmc.url") for i in range(3)
    ]
    assert borrowed[0].message == (
        "expected the lab's BMC on loopback (the site's naming is lab, which only the embedded lab "
        "may use), got https://10.0.1.21"
    )
    names = [f for f in findings if f.code == "taxonomy.host"]
    assert (
        names[0].message == "expected lab-node-<n> (the site's naming is lab), got 'inferno-host-compute-1'"
    )
    assert len(names) == 3


@pytest.mark.parametrize(
    ("verify_tls", "expected"),
    [
        # not where `lab up` writes a CA: the lab's naming excuses nothing
        (
            "/etc/pki/lab/ca.pem",
            "expected a readable CA bundle file, got '/etc/pki/lab/ca.pem' (No such file or directory)",
        ),
        # where `lab up` writes it, but something else is there
        (
            "{tmp}/state/lab/x1/bmc/ca.pem",
            "expected a readable CA bundle file, got '{tmp}/state/lab/x1/bmc/ca.pem' (not a regular file)",
        ),
    ],
)
def test_the_lab_ca_note_is_only_for_a_ca_lab_up_has_yet_to_make(
    tmp_path: Path, verify_tls: str, expected: str
) -> None:
    d = _copy(LAB, tmp_path)
    (tmp_path / "state" / "lab" / "x1" / "bmc" / "ca.pem").mkdir(parents=True)
    hosts = d / "hosts.yaml"
    path = verify_tls.format(tmp=tmp_path)
    hosts.write_text(
        hosts.read_text().replace("/root/.local/state/inferno-provision/lab/lab/bmc/ca.pem", path)
    )
    findings = _lint(d)
    assert [f.message for f in findings if f.code == "host.bmc-tls-file"] == [
        expected.format(tmp=tmp_path)
    ] * 3
    assert not [f for f in findings if f.code == "host.bmc-tls-lab"]


def test_a_lab_host_outside_the_lab_grammar(tmp_path: Path) -> None:
    d = _copy(LAB, tmp_path)
    hosts = d / "hosts.yaml"
    hosts.write_text(hosts.read_text().replace("name: lab-node-3", "name: inferno-host-compute-9"))
    errors = [f for f in _lint(d) if f.severity is Severity.error]
    assert [(f.code, f.field, f.message) for f in errors] == [
        (
            "taxonomy.host",
            "hosts[2].name",
            "expected lab-node-<n> (the site's naming is lab), got 'inferno-host-compute-9'",
        )
    ]


def test_an_unknown_naming_is_one_line(tmp_path: Path) -> None:
    d = _copy(LAB, tmp_path)
    site = d / "site.yaml"
    site.write_text(site.read_text().replace("naming: lab ", "naming: dc "))
    with pytest.raises(BadInput) as err:
        load_catalog(d)
    assert str(err.value) == f"{site}:15: naming: expected one of 'inferno' or 'lab', got \"dc\""


@pytest.mark.parametrize(
    ("naming", "name", "expected"),
    [
        (Naming.inferno, "inferno-host-gpu-1", None),
        (Naming.inferno, "lab-node-1", "inferno-host-<role>-<n> or inferno-host-master"),
        (Naming.lab, "lab-node-12", None),
        (Naming.lab, "lab-node-0", "lab-node-<n> (the site's naming is lab)"),
        (Naming.lab, "lab-node-1x", "lab-node-<n> (the site's naming is lab)"),
        (Naming.lab, "inferno-host-master", "lab-node-<n> (the site's naming is lab)"),
    ],
)
def test_host_grammar_by_naming(naming: Naming, name: str, expected: str | None) -> None:
    assert host_grammar_problem(naming, name) == expected


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("https://127.0.0.1:8443", True),
        ("https://localhost", True),
        ("https://[::1]:8443", True),
        ("https://10.0.1.21", False),
        ("https://bmc.example", False),
    ],
)
def test_loopback_bmc_urls(url: str, loopback: bool) -> None:
    assert is_loopback_url(url) is loopback
