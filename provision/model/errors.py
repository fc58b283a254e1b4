"""The one exception tree of the controller. Only the CLI catches ProvisionError.

Each class carries the process exit code the CLI maps it to:
0 success/accepted, 1 a verdict failed, 2 bad input or usage, 3 an external system failed.
"""

from __future__ import annotations


class ProvisionError(Exception):
    """Root of every error the controller raises on purpose."""

    exit_code = 3


class BadInput(ProvisionError):
    """Input written by a person (profile, inventory, flag) is wrong. Message names file/line/field."""

    exit_code = 2


class NotFound(BadInput):
    """A named host, profile, run or file does not exist."""


class TransitionRefused(BadInput):
    """A host state change the lifecycle's transition table does not allow (it names from and to)."""


class HostLocked(ProvisionError):
    """Another process holds this host's lock."""

    exit_code = 2


class ExternalError(ProvisionError):
    """A BMC, SSH peer, network service or tool failed or timed out."""

    exit_code = 3


class BmcError(ExternalError):
    """The BMC (Redfish service) failed, refused or timed out. The message names the URL."""


class SshError(ExternalError):
    """SSH to a host failed (connect, host key, auth, transfer)."""


class ToolError(ExternalError):
    """A local tool (dnsmasq, qemu, ksvalidator...) failed."""


class VerdictFailed(ProvisionError):
    """Findings failed: the command ran, the hardware did not pass."""

    exit_code = 1


class StateError(ProvisionError):
    """The state store (SQLite file, run documents) could not be read or written."""

    exit_code = 3
