"""Hostile YAML costs one line and exit 2, at once: alias bombs, recursive aliases, deep nesting, files
over the size cap, tags safe_load does not build, and files that are not regular files (a FIFO)."""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from provision.cli import main as cli
from tests.conftest import REPO

FIXTURE = Path(__file__).parent / "data" / "profiles"
HOSTS = "hosts.yaml"
LUST = "circle-2-lust.yaml"


@pytest.fixture
def profiles(tmp_path: Path) -> Path:
    d = tmp_path / "profiles"
    shutil.copytree(FIXTURE, d, ignore=shutil.ignore_patterns("*.md"))
    return d


def lint(d: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str, float]:
    capsys.readouterr()
    start = time.monotonic()
    with pytest.raises(SystemExit) as exc:
        cli.main(["--profiles", str(d), "--state", str(tmp_path / "state"), "lint"])
    took = time.monotonic() - start
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err, took


def run_process(profiles: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """The real `provision lint`, with 2 GiB of address space: a loader without a bound dies, not the box."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))

    return subprocess.run(
        [sys.executable, "-m", "provision", "--profiles", str(profiles), "--state", str(tmp_path), "lint"],
        capture_output=True, text=True, cwd=REPO, timeout=20, check=False, preexec_fn=limit,
    )  # fmt: skip


def laughs(links: int) -> str:
    """A billion laughs: each anchor holds nine aliases of the one before, 9**links values in all."""
    lines = ["hosts:", "  - &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, links + 1):
        lines.append(f"  - &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def test_a_block_reused_by_aliases_still_loads_but_an_alias_bomb_stops_at_once(
    profiles: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (profiles / HOSTS).read_text()
    # The rule allows what a person writes: a list anchored once, then reused by aliases.
    anchored = text.replace("nameservers: [10.0.1.53]", "nameservers: &ns [10.0.1.53]", 1)
    (profiles / HOSTS).write_text(anchored.replace("nameservers: [10.0.1.53]", "nameservers: *ns"))
    assert "*ns" in (profiles / HOSTS).read_text()
    assert lint(profiles, tmp_path, capsys)[0] == 0

    # 9**6 values (half a million) before the fix took seconds; the chain of the issue took a minute.
    (profiles / HOSTS).write_text(laughs(6))
    rc, out, err, took = lint(profiles, tmp_path, capsys)
    assert (rc, out) == (2, "")
    assert err == (
        f"provision: {profiles}/hosts.yaml:2: hosts[4][0][2][0][6][7]: "
        "expected aliases that expand to at most 10000 values in all, got more\n"
    )
    assert took < 1.0


def test_the_billion_laughs_of_the_issue_ends_in_a_real_process(profiles: Path, tmp_path: Path) -> None:
    (profiles / HOSTS).write_text(laughs(9))  # 9**10 values: minutes and a MemoryError before the fix
    proc = run_process(profiles, tmp_path)
    assert (proc.returncode, proc.stdout) == (2, "")
    assert "expected aliases that expand to at most 10000 values in all, got more" in proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("hosts: &a [*a]\n", "hosts.yaml:1: hosts[0]: expected data, got an alias inside its own anchor "
         "(a recursive structure)"),
        ("hosts:\n  - &h {name: x, again: *h}\n", "hosts.yaml:2: hosts[0].again: expected data, "
         "got an alias inside its own anchor (a recursive structure)"),
        ("hosts: " + "[" * 2000 + "]" * 2000 + "\n",
         "hosts.yaml:1: expected at most 32 levels of nesting, got more"),
        ("hosts: " + "[" * 40 + "]" * 40 + "\n",
         "hosts.yaml:1: hosts" + "[0]" * 31 + ": expected at most 32 levels of nesting, got more"),
        ("defaults: &d {rack: r}\nhosts:\n  - {<<: *d, name: x}\n",
         "hosts.yaml:3: hosts[0]: expected plain YAML values, got a merge key (<<)"),
        ("hosts:\n  - !!python/name:os.system ''\n",
         "hosts.yaml:2: hosts[0]: expected plain YAML values, got a value tagged "
         "tag:yaml.org,2002:python/name:os.system"),
        ("hosts: [1]\n? &k [a, b]\n: v\n", "hosts.yaml:2: (top level): expected a text key, got a list"),
    ],
    ids=["recursive-list", "recursive-mapping", "nesting-2000", "nesting-40", "merge-key", "python-tag",
         "list-key"],
)  # fmt: skip
def test_recursion_nesting_and_unbuildable_tags_are_one_line(
    profiles: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    (profiles / HOSTS).write_text(text)
    rc, out, err, took = lint(profiles, tmp_path, capsys)
    assert (rc, out, err) == (2, "", f"provision: {profiles}/{message}\n")
    assert took < 1.0


def test_a_file_over_one_mib_is_refused_before_it_is_parsed(
    profiles: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (profiles / LUST).read_text()
    padded = text + ("# " + "x" * 98 + "\n") * 11_000  # comments only: a valid profile of ~1.1 MB
    (profiles / LUST).write_text(padded)
    rc, out, err, took = lint(profiles, tmp_path, capsys)
    assert (rc, out) == (2, "")
    assert err == (
        f"provision: {profiles}/{LUST}: expected a regular YAML file of at most 1 MiB, "
        f"got {len(padded.encode())} bytes\n"
    )
    assert took < 1.0
    (profiles / LUST).write_text(text + "# x\n" * 1000)  # under the cap: still fine
    assert lint(profiles, tmp_path, capsys)[0] == 0


def test_a_fifo_among_the_profiles_is_refused_not_waited_on(profiles: Path, tmp_path: Path) -> None:
    os.mkfifo(profiles / "circle-9-treachery.yaml")  # no writer ever comes: a plain open would wait
    proc = run_process(profiles, tmp_path)
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == (
        f"provision: {profiles}/circle-9-treachery.yaml: expected a regular YAML file of at most 1 MiB, "
        "got a FIFO\n"
    )


def test_a_site_file_that_is_a_directory_is_refused(
    profiles: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (profiles / "site.yaml").mkdir()
    rc, out, err, _ = lint(profiles, tmp_path, capsys)
    assert (rc, out, err) == (
        2,
        "",
        f"provision: {profiles}/site.yaml: expected a regular YAML file of at most 1 MiB, got a directory\n",
    )
