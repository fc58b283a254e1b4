"""Adapter: load every profile and the host inventory from a profiles directory, strictly.

Each problem is one BadInput line: file:line: field: expected ..., got ...
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from provision.model.errors import BadInput, NotFound
from provision.model.hosts import Host, Inventory
from provision.model.profile import Profile
from provision.model.site import Site
from provision.model.yamlfile import Document, build, read_yaml

HOSTS_FILE = "hosts.yaml"
SITE_FILE = "site.yaml"


def default_profiles_dir() -> Path:
    env = os.environ.get("PROVISION_PROFILES")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "profiles"


@dataclass(frozen=True)
class Catalog:
    directory: Path
    profiles: dict[str, Profile]
    hosts: dict[str, Host]
    documents: dict[str, Document]  # by profile name, plus HOSTS_FILE (and SITE_FILE when present)
    site: Site = field(default_factory=Site)  # defaults when site.yaml is absent

    def host(self, name: str) -> Host:
        try:
            return self.hosts[name]
        except KeyError:
            known = ", ".join(sorted(self.hosts)) or "none"
            raise NotFound(
                f"{self.directory / HOSTS_FILE}: host: expected one of {known}, got {name!r}"
            ) from None

    def profile_of(self, host: Host) -> Profile:
        return self.profiles[host.profile]


def load_profile(path: Path) -> tuple[Profile, Document]:
    doc = read_yaml(path)
    if not doc.lines:
        raise BadInput(f"{path}:1: (top level): expected a profile mapping, got an empty file")
    if not isinstance(doc.data, dict):
        raise BadInput(f"{path}:1: (top level): expected a mapping, got {type(doc.data).__name__}")
    profile = build(Profile, doc)
    if profile.name != path.stem:
        raise BadInput(
            f"{doc.where(('name',))}: name: expected {path.stem!r} (the file's name), got {profile.name!r}"
        )
    return profile, doc


def load_catalog(directory: Path) -> Catalog:
    if not directory.is_dir():
        raise BadInput(f"{directory}: expected a profiles directory, got no such directory")
    profiles: dict[str, Profile] = {}
    documents: dict[str, Document] = {}
    skip = {HOSTS_FILE, SITE_FILE}
    for path in sorted(directory.glob("*.yaml")):
        if path.name in skip:
            continue
        profile, doc = load_profile(path)
        profiles[profile.name] = profile
        documents[profile.name] = doc

    hosts_path = directory / HOSTS_FILE
    doc = read_yaml(hosts_path)
    documents[HOSTS_FILE] = doc
    if not doc.lines:
        raise BadInput(f"{hosts_path}:1: (top level): expected a mapping with 'hosts', got an empty file")
    if not isinstance(doc.data, dict):
        got = type(doc.data).__name__
        raise BadInput(f"{hosts_path}:1: (top level): expected a mapping with 'hosts', got {got}")
    inventory = build(Inventory, doc)
    hosts: dict[str, Host] = {}
    for i, host in enumerate(inventory.hosts):
        if host.name in hosts:
            first = next(j for j, h in enumerate(inventory.hosts) if h.name == host.name)
            raise BadInput(
                f"{doc.where(('hosts', i, 'name'))}: hosts[{i}].name: expected a unique host name, "
                f"got {host.name!r} again (first at line {doc.line_of(('hosts', first, 'name'))})"
            )
        if host.profile not in profiles:
            known = ", ".join(sorted(profiles)) or "none"
            raise BadInput(
                f"{doc.where(('hosts', i, 'profile'))}: hosts[{i}].profile: expected one of {known}, "
                f"got {host.profile!r}"
            )
        hosts[host.name] = host
    site = Site()
    site_path = directory / SITE_FILE
    if site_path.exists():
        site_doc = read_yaml(site_path)
        documents[SITE_FILE] = site_doc
        if not isinstance(site_doc.data, dict):
            # The type only: the file may be the root password hash, or worse, pasted as one line.
            got = type(site_doc.data).__name__
            raise BadInput(f"{site_path}:1: (top level): expected a mapping, got {got}")
        site = build(Site, site_doc)
    return Catalog(directory=directory, profiles=profiles, hosts=hosts, documents=documents, site=site)
