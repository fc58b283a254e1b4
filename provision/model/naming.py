"""Which naming a site follows: the data center's taxonomy, or the embedded lab's own. Pure.

A real site follows the Inferno taxonomy (provision.model.taxonomy); it is the default. The embedded
lab (`provision lab`, profiles-lab/) names its virtual hosts lab-node-<n> on purpose, so that no lab
host passes for a data center host, and its BMC's CA is made by `provision lab up` at
<state>/lab/<id>/bmc/ca.pem. Its site says `naming: lab`: lint then holds the host names to the
lab's grammar instead, says a CA that `lab up` has not made yet is its to make, and refuses the lab
naming on a host whose BMC is not the lab's (loopback), so a real site cannot borrow it.
"""

from __future__ import annotations

import re
from enum import StrEnum
from ipaddress import ip_address
from urllib.parse import urlsplit

from provision.model import taxonomy as tx


class Naming(StrEnum):
    inferno = "inferno"  # the data center's taxonomy
    lab = "lab"  # the embedded lab's: `provision lab`


LAB_HOST_RE = re.compile(r"^lab-node-[1-9][0-9]*$")
LAB_HOST_GRAMMAR = "lab-node-<n> (the site's naming is lab)"
# Where `provision lab up` writes a lab's CA: <state>/lab/<id>/bmc/ca.pem (provision.lab.lab).
LAB_CA_RE = re.compile(r"/lab/(?P<lab>[a-z0-9]{1,8})/bmc/ca\.pem$")


def host_grammar_problem(naming: Naming, name: str) -> str | None:
    """The grammar `name` breaks under the site's naming, or None."""
    if naming is Naming.lab:
        return None if LAB_HOST_RE.match(name) else LAB_HOST_GRAMMAR
    return None if tx.is_host_name(name) else tx.HOST_GRAMMAR


def lab_of_ca(path: str) -> str | None:
    """The lab id whose `lab up` makes the CA at `path`, or None when `path` is not such a CA."""
    m = LAB_CA_RE.search(path)
    return m["lab"] if m else None


def is_loopback_url(url: str) -> bool:
    """The lab's BMC listens on loopback inside the lab's namespace; a site's BMCs never do."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False
