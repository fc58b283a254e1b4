"""Headless Chromium, for real: load a file, dump the DOM it built, take a screenshot, and collect
every console message (a report has no scripts and fetches nothing, so any message is a problem:
a CSP violation from an external fetch, a parse error...)."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import require_tool

_CONSOLE = re.compile(r":CONSOLE(?:\(\d+\)|:\d+)\]\s*(.*)")
TIMEOUT_S = 120


@dataclass(frozen=True)
class Rendered:
    dom: str
    console: list[str]
    screenshot: Path | None


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)


def render(page: Path, screenshot: Path | None = None, window: str = "1100,2400") -> Rendered:
    chromium = require_tool("chromium")
    base = [
        chromium,
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        f"--user-data-dir={page.parent / '.chromium-profile'}",
        "--enable-logging=stderr",
        "--v=0",
        f"--window-size={window}",
    ]
    url = page.resolve().as_uri()
    dump = _run([*base, "--dump-dom", url], page.parent)
    if dump.returncode != 0:
        raise RuntimeError(f"chromium --dump-dom exited {dump.returncode}: {dump.stderr[-2000:]}")
    console = [m.group(1) for line in dump.stderr.splitlines() if (m := _CONSOLE.search(line))]
    shot = None
    if screenshot is not None:
        snap = _run([*base, "--hide-scrollbars", f"--screenshot={screenshot}", url], page.parent)
        console += [m.group(1) for line in snap.stderr.splitlines() if (m := _CONSOLE.search(line))]
        if snap.returncode != 0 or not screenshot.is_file():
            raise RuntimeError(f"chromium --screenshot exited {snap.returncode}: {snap.stderr[-2000:]}")
        shot = screenshot
    return Rendered(dump.stdout, console, shot)


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from the PNG header (IHDR), no imaging library needed."""
    head = path.read_bytes()[:24]
    if head[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path}: not a PNG")
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
