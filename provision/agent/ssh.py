"""Adapter: the burn-in agent on a remote host over SSH (paramiko). Host keys are pinned: the key
must already be in the given known_hosts file and unknown keys are refused (RejectPolicy, never
AutoAddPolicy). The agent runs detached on the host, so a dropped connection loses nothing:
`run` reconnects, re-attaches (a second `start` only reports the running run), follows the event
log from where it left off, and collects the result.

No paramiko object leaves this module; failures become SshError with the host and what failed.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paramiko

from burnin.tools import sha256_file
from provision.model.errors import BadInput, SshError
from provision.model.files import FileRefused, check_regular

REMOTE_DIR = "/var/lib/inferno-burnin"
NETWORK_ERRORS = (paramiko.SSHException, EOFError, OSError, socket.timeout)


@dataclass(frozen=True)
class SshTarget:
    host: str
    port: int = 22
    user: str = "root"
    key_file: Path | None = None
    known_hosts: Path | None = None  # None: the user's ~/.ssh/known_hosts
    connect_timeout_s: float = 15.0

    def where(self) -> str:
        return f"{self.user}@{self.host}:{self.port}"


class RemoteAgent:
    """One SSH connection to a host, driving the agent zipapp in `remote_dir` there."""

    def __init__(self, target: SshTarget, remote_dir: str = REMOTE_DIR) -> None:
        self.target = target
        self.remote_dir = remote_dir.rstrip("/")
        self.pyz = f"{self.remote_dir}/burnin-agent.pyz"
        # The agent needs root (raw disks, /dev/kmsg, its dir under /var/lib). A non-root admin
        # (the kickstart's, with passwordless sudo) runs every command through `sudo -n`, which
        # fails at once rather than waiting for a password nobody will type.
        self.sudo = "" if target.user == "root" else "sudo -n "
        self._client: paramiko.SSHClient | None = None

    # -- connection ------------------------------------------------------------------------------
    def connect(self) -> None:
        t = self.target
        if t.key_file is not None:
            try:
                check_regular(t.key_file)  # paramiko would block on a FIFO, read a device forever
            except FileRefused as exc:
                raise BadInput(
                    f"--identity {t.key_file}: expected an SSH private key file, got {exc.got}"
                ) from None
        client = paramiko.SSHClient()
        try:
            if t.known_hosts is not None:
                client.load_host_keys(str(t.known_hosts))
            else:
                client.load_system_host_keys()
        except OSError as exc:
            raise SshError(f"{t.where()}: cannot read known_hosts {t.known_hosts}: {exc.strerror}") from None
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        try:
            client.connect(
                t.host,
                port=t.port,
                username=t.user,
                key_filename=str(t.key_file) if t.key_file else None,
                look_for_keys=t.key_file is None,
                allow_agent=t.key_file is None,
                timeout=t.connect_timeout_s,
                banner_timeout=t.connect_timeout_s,
                auth_timeout=t.connect_timeout_s,
            )
        except paramiko.BadHostKeyException:
            raise SshError(f"{t.where()}: host key does not match the pinned key in known_hosts") from None
        except paramiko.AuthenticationException as exc:
            raise SshError(f"{t.where()}: authentication failed ({exc})") from None
        except paramiko.SSHException as exc:
            msg = str(exc)
            if "not found in known_hosts" in msg:
                kh = t.known_hosts or "~/.ssh/known_hosts"
                msg = f"host key not in known_hosts {kh} (pinned; unknown keys are refused)"
            raise SshError(f"{t.where()}: {msg}") from None
        except OSError as exc:
            raise SshError(f"{t.where()}: cannot connect: {exc}") from None
        self._client = client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def drop(self) -> None:
        """Cut the transport without a goodbye, as a failing network would (tests use it).

        shutdown, not close: a closed descriptor's number is soon reused by the next connection's
        socket, and paramiko's reader thread, still holding the old number, would then read from
        (and break) that new connection. close() releases it once the thread has stopped."""
        if self._client is not None:
            transport = self._client.get_transport()
            if transport is not None and transport.sock is not None:
                with contextlib.suppress(OSError):  # already disconnected: nothing left to cut
                    transport.sock.shutdown(socket.SHUT_RDWR)

    def _ssh(self) -> paramiko.SSHClient:
        if self._client is None:
            self.connect()
        if self._client is None:
            raise SshError(f"{self.target.where()}: not connected")
        return self._client

    def _exec(
        self, command: str, timeout_s: float = 120.0, stdin: bytes | None = None
    ) -> tuple[int, str, str]:
        """Run `command` on the host (as root: through `sudo -n sh -c` for a non-root user)."""
        if self.sudo:
            command = f"{self.sudo}sh -c {shlex.quote(command)}"
        chan_in, stdout, stderr = self._ssh().exec_command(command, timeout=timeout_s)
        if stdin is not None:
            chan_in.write(stdin)
            chan_in.channel.shutdown_write()
        out = stdout.read().decode(errors="replace")
        err = stderr.read().decode(errors="replace")
        return stdout.channel.recv_exit_status(), out, err

    def _agent(self, args: str, timeout_s: float = 120.0) -> tuple[int, str, str]:
        return self._exec(f"python3 {shlex.quote(self.pyz)} {args}", timeout_s)

    def _put(self, data: bytes, path: str) -> None:
        """Write a file on the host atomically (temp name, then rename), as the agent's user."""
        q, tmp = shlex.quote(path), shlex.quote(path + ".tmp")
        rc, _, err = self._exec(f"cat > {tmp} && mv -f {tmp} {q}", 300, stdin=data)
        if rc != 0:
            raise SshError(f"{self.target.where()}: cannot write {path} (exit {rc}): {err.strip()}")

    # -- the agent -------------------------------------------------------------------------------
    def ship(self, pyz: Path) -> None:
        """Copy the zipapp over SFTP unless the same bytes are there already; check its sha256."""
        want = sha256_file(pyz)
        d = shlex.quote(self.remote_dir)
        _, out, _ = self._exec(
            f"mkdir -p {d}/runs {d}/plans && (sha256sum {shlex.quote(self.pyz)} 2>/dev/null || true)"
        )
        if out.split()[:1] == [want]:
            return
        self._put(pyz.read_bytes(), self.pyz)
        rc, out, err = self._exec(f"sha256sum {shlex.quote(self.pyz)}")
        if rc != 0 or out.split()[:1] != [want]:
            raise SshError(
                f"{self.target.where()}: agent copy is corrupt (sha256 {out.split()[:1]} != {want}) {err}"
            )

    def run_dir(self, run_id: str) -> str:
        return f"{self.remote_dir}/runs/{run_id}"

    def start(self, plan: dict[str, Any]) -> dict[str, Any]:
        """Start the run detached, or re-attach to it if it is already running or finished."""
        path = f"{self.remote_dir}/plans/{plan['run_id']}.json"
        self._put(json.dumps(plan, indent=1).encode(), path)
        rc, out, err = self._agent(
            f"start {shlex.quote(path)} --runs {shlex.quote(self.remote_dir)}/runs", 60
        )
        if rc != 0:
            raise SshError(
                f"{self.target.where()}: agent start failed (exit {rc}): {err.strip() or out.strip()}"
            )
        return dict(json.loads(out))

    def status(self, run_id: str) -> dict[str, Any]:
        rc, out, err = self._agent(f"status --run-dir {shlex.quote(self.run_dir(run_id))}", 60)
        if rc != 0:
            raise SshError(f"{self.target.where()}: agent status failed (exit {rc}): {err.strip()}")
        return dict(json.loads(out))

    def follow(
        self, run_id: str, skip: int, on_event: Callable[[dict[str, Any]], None], timeout_s: float = 0
    ) -> int:
        """Stream events after the first `skip`; return how many event lines have been seen."""
        run_dir = shlex.quote(self.run_dir(run_id))
        cmd = f"python3 {shlex.quote(self.pyz)} follow --run-dir {run_dir} --skip {skip}"
        if timeout_s:
            cmd += f" --timeout {timeout_s}"
        if self.sudo:
            cmd = f"{self.sudo}{cmd}"
        _, stdout, _ = self._ssh().exec_command(cmd)
        seen = skip
        for line in stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            seen = int(event.get("line", seen + 1))
            on_event(event)
        stdout.channel.recv_exit_status()
        return seen

    def collect(self, run_id: str) -> dict[str, Any]:
        rc, out, err = self._agent(f"collect --run-dir {shlex.quote(self.run_dir(run_id))}", 120)
        if rc != 0:
            raise SshError(f"{self.target.where()}: cannot collect run {run_id} (exit {rc}): {err.strip()}")
        return dict(json.loads(out))

    def fetch(self, run_id: str, name: str) -> bytes | None:
        """One file of the run's directory over SFTP (byte for byte), or None when it is not there."""
        if not name or "/" in name or name.startswith("."):
            raise SshError(f"{self.target.where()}: run file {name!r}: expected a plain file name")
        path = f"{self.run_dir(run_id)}/{name}"
        if self.sudo:  # root's files: read through sudo, raw bytes off the channel
            q = shlex.quote(path)
            cmd = f"{self.sudo}sh -c {shlex.quote(f'test -e {q} || exit 44; cat {q}')}"
            _, stdout, stderr = self._ssh().exec_command(cmd, timeout=300)
            blob = stdout.read()
            rc = stdout.channel.recv_exit_status()
            if rc == 44:
                return None
            if rc != 0:
                err = stderr.read().decode(errors="replace").strip()
                raise SshError(f"{self.target.where()}: cannot read {path} (exit {rc}): {err}")
            return bytes(blob)
        sftp = self._ssh().open_sftp()
        try:
            with sftp.open(path, "rb") as fh:
                fh.prefetch()
                return bytes(fh.read())
        except FileNotFoundError:
            return None
        finally:
            sftp.close()


@dataclass
class Collected:
    """What run_remote brings back: the agent's result and the run files it names."""

    result: dict[str, Any]
    files: dict[str, bytes]


def run_files(result: dict[str, Any]) -> list[str]:
    """The files of an agent run the controller keeps besides the result: the telemetry it names."""
    telemetry = str(result.get("telemetry") or "")
    # Only a plain name inside the run directory: the result comes from the host, not from us.
    return [telemetry] if telemetry and "/" not in telemetry and not telemetry.startswith(".") else []


def run_remote(
    target: SshTarget,
    pyz: Path,
    plan: dict[str, Any],
    on_event: Callable[[dict[str, Any]], None],
    retries: int = 5,
    retry_wait_s: float = 2.0,
    agent_factory: Callable[[SshTarget], RemoteAgent] = RemoteAgent,
) -> Collected:
    """Ship, start (or re-attach), follow to the end and collect the result and the telemetry;
    reconnect on a dropped link."""
    seen = 0
    failures = 0
    while True:
        agent = agent_factory(target)
        try:
            agent.connect()
            agent.ship(pyz)
            state = agent.start(plan)
            on_event({"event": "attached" if state.get("attached") else "started", **state})
            seen = agent.follow(plan["run_id"], seen, on_event)
            if agent.status(plan["run_id"])["state"] == "finished":
                result = agent.collect(plan["run_id"])
                files: dict[str, bytes] = {}
                for name in run_files(result):
                    blob = agent.fetch(plan["run_id"], name)
                    if blob is not None:  # absent telemetry: the report says so (inconclusive)
                        files[name] = blob
                return Collected(result, files)
            raise SshError(f"{target.where()}: the agent stopped before finishing run {plan['run_id']}")
        except NETWORK_ERRORS as exc:
            failures += 1
            if failures > retries:
                raise SshError(f"{target.where()}: connection lost {failures} times, last: {exc!r}") from None
            on_event({"event": "reconnecting", "attempt": failures, "error": repr(exc)})
            time.sleep(retry_wait_s)
        except SshError as exc:
            if "cannot connect" not in str(exc) or failures >= retries:
                raise
            failures += 1
            on_event({"event": "reconnecting", "attempt": failures, "error": str(exc)})
            time.sleep(retry_wait_s)
        finally:
            agent.close()
