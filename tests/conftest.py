from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from provision.model.catalog import Catalog, load_catalog
from provision.store.state import StateStore

REPO = Path(__file__).resolve().parent.parent
PROFILES = REPO / "profiles"

# CI cannot be green by skipping. Under CI=true (.ci/run's machine sets it) a skipped test is a
# failure that names the test and the reason; a whole file skipped at collection is listed at the end
# and fails the run too. Elsewhere a skip stays a skip, with its reason (pytest -ra shows them).
# xfail is not a skip and is left as it is.
CI_SKIP_IS_FAILURE = "CI=true: a skipped test fails the run here"


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config: pytest.Config) -> None:
    # A SIGTERM (CI's time limit, a developer's kill) unwinds like Ctrl-C: pytest then runs every
    # fixture's teardown, so the servers, VMs and namespaces the tests started are stopped by PID
    # instead of being left behind by a process that simply died.
    signal.signal(signal.SIGTERM, _interrupt)


def _in_ci() -> bool:
    return os.environ.get("CI") == "true"


def _skip_reason(longrepr: object) -> str:
    """The reason given to pytest.skip / skipif: longrepr is (path, line, "Skipped: reason")."""
    reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    return str(reason).removeprefix("Skipped: ")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if _in_ci() and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"{CI_SKIP_IS_FAILURE}: {item.nodeid} skipped: {_skip_reason(report.longrepr)}"
    return report


_COLLECTION_SKIPS: list[str] = []


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    report = yield
    if _in_ci() and report.skipped:
        _COLLECTION_SKIPS.append(f"{collector.nodeid} skipped: {_skip_reason(report.longrepr)}")
    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _COLLECTION_SKIPS:
        terminalreporter.section("files skipped at collection", sep="=", red=True)
    for line in _COLLECTION_SKIPS:
        terminalreporter.write_line(f"{CI_SKIP_IS_FAILURE}: {line}", red=True)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _COLLECTION_SKIPS and exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    """A fresh state store of the test's own, closed after it."""
    with StateStore.open(tmp_path / "state") as s:
        yield s


@pytest.fixture
def catalog() -> Catalog:
    """The shipped profiles and inventory, loaded."""
    return load_catalog(PROFILES)


@pytest.fixture
def profiles_copy(tmp_path: Path) -> Path:
    """A private copy of the shipped profiles, for tests that edit them."""
    dst = tmp_path / "profiles"
    shutil.copytree(PROFILES, dst)
    return dst


def require_tool(name: str) -> str:
    """The path of a tool the test drives for real; skip, with the reason, where it is missing."""
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if path is None:
        pytest.skip(f"{name} is not installed here (make setup installs it)")
    return path
