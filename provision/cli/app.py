"""What every command shares: the global options, the loaded catalog, and output helpers."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provision.model.catalog import Catalog, default_profiles_dir, load_catalog
from provision.store.storeurl import is_postgres, parse_target


def default_state_dir() -> Path:
    env = os.environ.get("PROVISION_STATE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "inferno-provision"


@dataclass
class App:
    profiles_dir: Path = field(default_factory=default_profiles_dir)
    state_dir: Path = field(default_factory=default_state_dir)
    verbose: bool = False
    _catalog: Catalog | None = None

    @property
    def files_dir(self) -> Path:
        """Where files beside the store go (run documents, the agent, netboot, logs, handoff): the state
        directory, or with a PostgreSQL store the shared `documents=` directory its URL names."""
        if is_postgres(self.state_dir):
            return parse_target(self.state_dir).documents_dir
        return self.state_dir

    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            self._catalog = load_catalog(self.profiles_dir)
        return self._catalog


def emit(data: Any, as_json: bool, human: Callable[[Any], str]) -> None:
    """Print `data` as JSON (machines) or through `human` (people). One way for every command."""
    if as_json:
        json.dump(data, sys.stdout, indent=2, sort_keys=False, default=str)
        sys.stdout.write("\n")
    else:
        text = human(data)
        if text:
            sys.stdout.write(text if text.endswith("\n") else text + "\n")
