"""The test harness's own rules (tests/conftest.py), proved on tiny test trees run by pytest in a
subprocess with the project's conftest loaded as a plugin (`-p tests.conftest`):
- CI cannot be green by skipping: with CI=true every skip is a failure that names the test and the
  reason; without it a skip stays a skip;
- a SIGTERM unwinds like Ctrl-C, so every fixture's teardown (the servers it stopped by PID) runs."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.conftest import REPO

SKIPS = """
    import pytest

    @pytest.fixture
    def tool():
        pytest.skip("frobnicator is not installed here")

    def test_passes():
        pass

    def test_skips_in_body():
        pytest.skip("no GPU on this machine")

    @pytest.mark.skipif(True, reason="needs root")
    def test_skipif():
        pass

    def test_skips_in_fixture(tool):
        pass
"""
MODULE_SKIP = """
    import pytest

    pytest.skip("the whole file needs a BMC", allow_module_level=True)

    def test_never_collected():
        pass
"""


SLOW_WITH_SERVER = """
    import time
    from pathlib import Path

    import pytest

    @pytest.fixture
    def server():
        Path("started").write_text("")
        yield
        Path("stopped").write_text("")

    def test_slow(server):
        time.sleep(60)
"""


def pytest_argv(tree: Path) -> list[str]:
    return [sys.executable, "-m", "pytest", "-p", "tests.conftest", "-p", "no:cacheprovider", "-ra",
            "--rootdir", str(tree), "-c", str(tree / "pytest.ini"), str(tree)]  # fmt: skip


def pytest_env(ci: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ADDOPTS")}
    if ci:
        env["CI"] = "true"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def run_pytest(tree: Path, ci: bool) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        pytest_argv(tree),
        cwd=tree,
        env=pytest_env(ci),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def make_tree(tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "pytest.ini").write_text("[pytest]\n")
    (tree / "test_skips.py").write_text(textwrap.dedent(SKIPS))
    (tree / "test_module_skip.py").write_text(textwrap.dedent(MODULE_SKIP))
    return tree


def test_a_skip_fails_the_run_under_ci_and_names_the_test_and_reason(tmp_path: Path) -> None:
    tree = make_tree(tmp_path)

    ci = run_pytest(tree, ci=True)
    out = ci.stdout + ci.stderr
    assert ci.returncode == 1, out
    for test, reason in [
        ("test_skips.py::test_skips_in_body", "no GPU on this machine"),
        ("test_skips.py::test_skipif", "needs root"),
        ("test_skips.py::test_skips_in_fixture", "frobnicator is not installed here"),
        ("test_module_skip.py", "the whole file needs a BMC"),
    ]:
        assert f"CI=true: a skipped test fails the run here: {test} skipped: {reason}" in out, out
    assert "1 failed, 1 passed, 1 skipped, 2 errors" in out, out  # the file skipped at collection

    dev = run_pytest(tree, ci=False)
    out = dev.stdout + dev.stderr
    assert dev.returncode == 0, out
    assert "1 passed, 4 skipped" in out and "CI=true" not in out, out
    assert re.search(r"SKIPPED \[1\] test_skips.py:\d+: no GPU on this machine", out), out


def test_sigterm_runs_every_fixture_teardown(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "pytest.ini").write_text("[pytest]\n")
    (tree / "test_slow.py").write_text(textwrap.dedent(SLOW_WITH_SERVER))
    proc = subprocess.Popen(
        pytest_argv(tree),
        cwd=tree,
        env=pytest_env(ci=False),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while not (tree / "started").exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (tree / "started").exists(), "the test never started"
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert (tree / "stopped").exists(), out.decode()
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, out.decode()
