"""The profiles directory `provision lab up` writes (its BMC secrets and operator key made for
real), without bringing a lab up: for tests of what lint and the kickstart make of it."""

from __future__ import annotations

import subprocess
from pathlib import Path

from provision.lab.lab import Lab, open_lab, write_profiles
from provision.lab.spec import NODES
from provision.lab.tls import BmcSecrets, make_bmc_secrets


def lab_profiles(tmp_path: Path, lab_id: str = "t1") -> tuple[Lab, BmcSecrets]:
    lab = open_lab(tmp_path / "state", lab_id)
    secrets = make_bmc_secrets(lab.root / "bmc", lab_id, "127.0.0.1")
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    write_profiles(lab, NODES, secrets, key.with_suffix(".pub").read_text().strip())
    return lab, secrets
