"""What `provision lint` finds: one finding names its file, line, field, severity and why. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from provision.model.yamlfile import Document, dotted


class Severity(StrEnum):
    error = "error"
    warning = "warning"
    info = "info"


@dataclass(frozen=True)
class LintFinding:
    severity: Severity
    code: str
    file: str
    line: int
    field: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "severity": str(self.severity),
            "code": self.code,
            "file": self.file,
            "line": self.line,
            "field": self.field,
            "message": self.message,
        }

    def line_text(self) -> str:
        return f"{self.file}:{self.line}: {self.severity}: {self.field}: {self.message}"


Loc = tuple[str | int, ...]


class Findings:
    """Collects findings for one document, locating each field path to its line."""

    def __init__(self) -> None:
        self.items: list[LintFinding] = []

    def add(self, severity: Severity, code: str, doc: Document, loc: Loc, message: str) -> None:
        self.items.append(LintFinding(severity, code, str(doc.path), doc.line_of(loc), dotted(loc), message))

    def error(self, code: str, doc: Document, loc: Loc, message: str) -> None:
        self.add(Severity.error, code, doc, loc, message)

    def warning(self, code: str, doc: Document, loc: Loc, message: str) -> None:
        self.add(Severity.warning, code, doc, loc, message)

    def info(self, code: str, doc: Document, loc: Loc, message: str) -> None:
        self.add(Severity.info, code, doc, loc, message)
