"""Adapter: run one external tool with a timeout, keep its output as an artifact in the run
directory, and hand back Evidence (command, exit code, duration, artifact + sha256, excerpt).

Each tool runs in its own process group so a timeout or a cancelled run kills all of it.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

from burnin.context import ToolRun
from burnin.schema import Evidence

EXCERPT_LINES = 12


def sha256_file(path: Path) -> str:
    """The digest every evidence file, agent copy and stored run file is named by (read in 1 MiB blocks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def excerpt(text: str, lines: int = EXCERPT_LINES) -> str:
    """The last lines worth showing a person (memtester's spinners and backspaces removed)."""
    clean = [ln.rstrip() for ln in text.replace("\b", "").splitlines() if ln.strip()]
    return "\n".join(ln[-300:] for ln in clean[-lines:])


def _kill_group(proc: "subprocess.Popen[bytes]") -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        try:
            proc.wait(timeout=5)
            return
        except subprocess.TimeoutExpired:
            continue


class ToolRunner:
    """`run_tool` for one run: artifacts under <run_dir>/artifacts, events through `log`."""

    def __init__(self, run_dir: Path, log: Callable[..., None], stop: threading.Event) -> None:
        self.run_dir = run_dir
        self.artifacts = run_dir / "artifacts"
        self.artifacts.mkdir(parents=True, exist_ok=True)
        self.log = log
        self.stop = stop

    def __call__(
        self,
        evidence_id: str,
        argv: List[str],
        timeout_s: float,
        artifact: Optional[str] = None,
        env: Optional[Dict[str, str]] = None,
        cwd: Optional[Path] = None,
    ) -> ToolRun:
        """Run argv; `artifact` names a file (relative to the run dir) the tool itself writes, e.g.
        fio's --output; otherwise the captured stdout+stderr is the artifact."""
        out_path = self.artifacts / (evidence_id + ".out")
        err_path = self.artifacts / (evidence_id + ".err")
        self.log("tool_start", evidence=evidence_id, command=argv, timeout_s=timeout_s)
        started = time.monotonic()
        try:
            proc = _spawn(argv, env, cwd, out_path, err_path)
        except OSError as exc:
            out_path.unlink()
            err_path.unlink()
            return self._not_started(evidence_id, argv, exc)
        timed_out, cancelled = self._wait(proc, started + timeout_s)
        duration = round(time.monotonic() - started, 3)
        stdout = out_path.read_text(errors="replace")
        stderr = err_path.read_text(errors="replace")
        error = None
        if timed_out:
            error = f"timed out after {timeout_s:g} s"
        elif cancelled:
            error = "cancelled"
        art_rel = artifact if artifact is not None else self._save_output(evidence_id, stdout, stderr)
        out_path.unlink()
        err_path.unlink()
        art_path = self.run_dir / art_rel
        digest = sha256_file(art_path) if art_path.is_file() else None
        ev = Evidence(
            id=evidence_id,
            command=list(argv),
            exit_code=proc.returncode if not (timed_out or cancelled) else None,
            duration_s=duration,
            artifact=str(art_rel) if digest else None,
            sha256=digest,
            excerpt=excerpt(stderr + "\n" + stdout if stderr else stdout),
            error=error,
        )
        self.log("tool_end", evidence=evidence_id, exit_code=ev.exit_code, duration_s=duration, error=error)
        return ToolRun(evidence=ev, stdout=stdout, stderr=stderr, timed_out=timed_out)

    def _not_started(self, evidence_id: str, argv: List[str], exc: OSError) -> ToolRun:
        """A tool that could not start: missing (suites judge that apart) or refused by the OS."""
        missing = isinstance(exc, FileNotFoundError)
        why = f"tool not found: {argv[0]}" if missing else f"could not start {argv[0]}: {exc}"
        ev = Evidence(id=evidence_id, command=list(argv), error=why)
        self.log("tool_end", evidence=evidence_id, error=why)
        return ToolRun(evidence=ev, stdout="", stderr="", missing=missing)

    def _wait(self, proc: "subprocess.Popen[bytes]", deadline: float) -> Tuple[bool, bool]:
        """Wait for the tool, killing its process group at the deadline or when the run is cancelled:
        (timed out, cancelled)."""
        timed_out = cancelled = False
        while True:
            try:
                proc.wait(timeout=0.2)
                break
            except subprocess.TimeoutExpired:
                if self.stop.is_set():
                    cancelled = True
                elif time.monotonic() > deadline:
                    timed_out = True
                if timed_out or cancelled:
                    _kill_group(proc)
                    break
        return timed_out, cancelled

    def _save_output(self, evidence_id: str, stdout: str, stderr: str) -> str:
        """The captured output as the artifact (stderr after stdout, marked): its path in the run dir."""
        art_rel = f"artifacts/{evidence_id}.log"
        with open(self.run_dir / art_rel, "w") as fh:
            fh.write(stdout)
            if stderr:
                fh.write("\n--- stderr ---\n" + stderr)
        return art_rel


def _spawn(
    argv: List[str], env: Optional[Dict[str, str]], cwd: Optional[Path], out_path: Path, err_path: Path
) -> "subprocess.Popen[bytes]":
    """Start argv in its own session (its own process group, for _kill_group), output to the two files,
    in the C locale so the parsers see the English they expect."""
    full_env = dict(os.environ, LC_ALL="C")
    full_env.update(env or {})
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env=full_env,
            cwd=str(cwd) if cwd else None,
            start_new_session=True,
        )
