"""Build the agent as one zipapp: `python3 burnin-agent.pyz COMMAND ...` on any host with
Python >= 3.9. The burnin package (with triad.c) goes in, plus pynvml.py from nvidia-ml-py when it
is installed here, so the GPU suite has NVML without installing anything on the host.

    python -m burnin.build [OUT]      (default: build/burnin-agent.pyz)
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
import tempfile
import zipapp
from pathlib import Path
from typing import List, Optional

PACKAGE = Path(__file__).resolve().parent
MAIN = "import sys\nfrom burnin.__main__ import main\n\nsys.exit(main())\n"


def build(out: Path) -> Path:
    """Write the zipapp to `out` and return its path."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        stage = Path(tmp) / "app"
        shutil.copytree(
            PACKAGE, stage / "burnin", ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "build.py")
        )
        spec = importlib.util.find_spec("pynvml")
        if spec is not None and spec.origin and spec.origin.endswith(".py"):
            shutil.copy(spec.origin, stage / "pynvml.py")
        (stage / "__main__.py").write_text(MAIN)
        zipapp.create_archive(stage, out, interpreter="/usr/bin/env python3", compressed=True)
    return out


def main(argv: Optional[List[str]] = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    out = build(Path(args[0]) if args else Path("build/burnin-agent.pyz"))
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
