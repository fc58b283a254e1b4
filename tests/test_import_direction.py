"""The house layout holds: imports flow one way, the top level stays small, files stay short.

- The controller (`provision`) may import the renderers (`kickstart`) and the agent's result schema
  (`burnin`); neither of those ever imports the controller, and the agent imports neither (it runs
  alone on the installed host, Python 3.9, standard library only).
- Inside `provision`, each package imports only the packages of the layers below it:
  model <- lint, store, bmc, agent, handoff, lab <- pdu, install <- acceptance <- flow <- cli.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO

# What each package of provision/ may import besides itself (a lower row never imports a higher one).
ALLOWED: dict[str, set[str]] = {
    "model": set(),
    "lint": {"model"},
    "store": {"model"},
    "bmc": {"model"},
    "agent": {"model"},
    "handoff": {"model"},
    "lab": {"model"},
    "pdu": {"model", "bmc"},  # the PDU's reading beside the BMC's
    "install": {"model", "store"},
    # The contract is the acceptance plan the agent gets; the PDU's samples are read by their names.
    "acceptance": {"model", "store", "agent", "pdu"},
    "flow": {"model", "store", "bmc", "agent", "handoff", "install", "acceptance", "pdu"},
    "cli": {
        "model",
        "lint",
        "store",
        "bmc",
        "agent",
        "handoff",
        "lab",
        "pdu",
        "install",
        "acceptance",
        "flow",
    },
}
MAX_TOP_LEVEL_MODULES = 8
MAX_FILE_LINES = 450


def imports(path: Path) -> set[str]:
    """The absolute module names a file imports (`from a.b import c` gives a.b and a.b.c)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def provision_package(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "provision" and len(parts) > 1 else None


@pytest.mark.parametrize(
    ("package", "forbidden"), [("kickstart", {"provision"}), ("burnin", {"provision", "kickstart"})]
)
def test_package_never_imports_upstream(package: str, forbidden: set[str]) -> None:
    files = sorted((REPO / package).rglob("*.py"))
    assert files
    offenders = {str(f.relative_to(REPO)): {m.split(".")[0] for m in imports(f)} & forbidden for f in files}
    assert {f: bad for f, bad in offenders.items() if bad} == {}


def test_every_provision_package_has_a_layer() -> None:
    packages = {p.name for p in (REPO / "provision").iterdir() if (p / "__init__.py").is_file()}
    assert packages == set(ALLOWED)


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_provision_packages_import_only_lower_layers(package: str) -> None:
    offenders = {}
    for f in sorted((REPO / "provision" / package).rglob("*.py")):
        used = {provision_package(m) for m in imports(f)} - {None, package}
        bad = {p for p in used if p in ALLOWED and p not in ALLOWED[package]}
        if bad:
            offenders[str(f.relative_to(REPO))] = sorted(bad)
    assert offenders == {}


def test_the_rule_catches_an_upward_import(tmp_path: Path) -> None:
    """The checker itself: a model module importing the flow is seen."""
    bad = tmp_path / "bad.py"
    bad.write_text("from provision.flow.engine import Engine\nimport provision.cli.main\n")
    assert {provision_package(m) for m in imports(bad)} - {None} == {"flow", "cli"}


def test_top_level_stays_small() -> None:
    modules = sorted(p.name for p in (REPO / "provision").glob("*.py"))
    assert len(modules) <= MAX_TOP_LEVEL_MODULES, modules


@pytest.mark.parametrize("tree", ["provision", "burnin", "kickstart", "tests", "bench"])
def test_no_source_file_is_too_long(tree: str) -> None:
    long = {
        str(f.relative_to(REPO)): n
        for f in sorted((REPO / tree).rglob("*.py"))
        if (n := len(f.read_text().splitlines())) > MAX_FILE_LINES
    }
    assert long == {}
