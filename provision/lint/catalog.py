"""`provision lint`: profiles and inventory against the Inferno taxonomy and the hardware's limits.

Pure: takes a loaded Catalog (models plus the line of every field), returns findings. Errors are
things that cannot be right (a name outside the grammar, a rack that disagrees with its profile);
warnings are places where the seed cannot be built or run as written: its number is kept, and the
warning says why it does not add up.
"""

from __future__ import annotations

from collections.abc import Iterable

from provision.lint import firmware as lint_firmware
from provision.lint import gpu_floors as lint_gpu_floors
from provision.lint import handoff as lint_handoff
from provision.lint import hosts as lint_hosts
from provision.lint import pdus as lint_pdus
from provision.lint import profile as lint_profile
from provision.lint.finding import Findings, LintFinding, Severity
from provision.model.catalog import HOSTS_FILE, Catalog

__all__ = ["LintFinding", "Severity", "counts", "lint_catalog"]


def lint_catalog(catalog: Catalog) -> list[LintFinding]:
    """Every finding for the profiles, then the inventory, in file and line order."""
    out = Findings()
    for name, profile in sorted(catalog.profiles.items()):
        lint_profile.check(profile, catalog.documents[name], out)
        lint_handoff.check(profile, catalog, catalog.documents[name], out)
        lint_firmware.check(profile, catalog.documents[name], out, catalog.directory)
        lint_gpu_floors.check(profile, catalog.documents[name], out)
    lint_hosts.check(catalog, catalog.documents[HOSTS_FILE], out)
    lint_pdus.check(catalog, out)
    return sorted(out.items, key=lambda f: (f.file, f.line, f.field, f.code))


def counts(findings: Iterable[LintFinding]) -> dict[str, int]:
    tally = {str(s): 0 for s in Severity}
    for f in findings:
        tally[str(f.severity)] += 1
    return tally
