"""Adapter: read a YAML file written by a person, keeping the line of every node.

Typed models are built from the plain data; when they reject it, `locate` turns the model's field
path back into the line in the file, so every message names file, line, field, expected and got.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from provision.model.errors import BadInput

Path_ = tuple[str | int, ...]
# libyaml composes ~20x faster; the pure-Python loader, where libyaml is missing, gives the same nodes.
_FAST_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Document:
    """Plain data from one YAML file, with the 1-based line of each field path."""

    path: Path
    data: Any
    lines: dict[Path_, int]

    def line_of(self, loc: Iterable[str | int]) -> int:
        """The line of the deepest known prefix of `loc` (the field itself, or its parent)."""
        key = tuple(loc)
        while key:
            if key in self.lines:
                return self.lines[key]
            key = key[:-1]
        return self.lines.get((), 1)

    def where(self, loc: Iterable[str | int]) -> str:
        return f"{self.path}:{self.line_of(loc)}"


def dotted(loc: Iterable[str | int]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _scalar(node: yaml.Node) -> Any:
    # A fresh constructor per scalar: the same tag resolution as safe_load, without re-parsing text.
    return yaml.constructor.SafeConstructor().construct_object(node, deep=True)


def _walk(node: yaml.Node, path: Path_, lines: dict[Path_, int], file: Path) -> Any:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node)
            if not isinstance(key, str):
                raise BadInput(
                    f"{file}:{key_node.start_mark.line + 1}: {dotted(path)}: expected a text key, got {key!r}"
                )
            if key in out:
                raise BadInput(
                    f"{file}:{key_node.start_mark.line + 1}: {dotted((*path, key))}: "
                    f"expected each key once, got a duplicate of line {lines[(*path, key)]}"
                )
            lines[(*path, key)] = key_node.start_mark.line + 1
            out[key] = _walk(value_node, (*path, key), lines, file)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_walk(item, (*path, i), lines, file) for i, item in enumerate(node.value)]
    return _scalar(node)


def read_yaml(path: Path) -> Document:
    """Parse `path` into plain data plus line numbers. Syntax errors become one BadInput line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadInput(f"{path}: expected a YAML file, got no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path}: expected a readable UTF-8 YAML file, got {exc}") from None
    root = _compose(path, text)
    lines: dict[Path_, int] = {}
    data = {} if root is None else _walk(root, (), lines, path)
    return Document(path=path, data=data, lines=lines)


def _compose(path: Path, text: str) -> yaml.Node | None:
    try:
        return yaml.compose(text, Loader=_FAST_LOADER)
    except yaml.YAMLError:
        pass  # the pure-Python loader says where and why more clearly than libyaml
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise BadInput(f"{path}:{line}: expected valid YAML, got {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise BadInput(f"{path}: expected valid YAML, got {exc}") from None


def _expected(err: ErrorDetails) -> str:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    table = {
        "missing": "a value (the field is required)",
        "extra_forbidden": "only known fields",
        "int_type": "an integer",
        "int_parsing": "an integer",
        "int_from_float": "an integer",
        "float_type": "a number",
        "float_parsing": "a number",
        "string_type": "text",
        "bool_type": "true or false",
        "list_type": "a list",
        "tuple_type": "a list",
        "set_type": "a list",
        "dict_type": "a mapping",
        "model_type": "a mapping",
        "model_attributes_type": "a mapping",
    }
    if kind in table:
        return table[kind]
    if kind == "enum" or kind == "literal_error":
        return f"one of {ctx.get('expected', '?')}"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        sign = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}
        limit = next(iter(ctx.values()), "?")
        return f"a value {sign[kind]} {limit}"
    if kind == "string_pattern_mismatch":
        return f"text matching {ctx.get('pattern')}"
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    return str(err["msg"]).lower()


# A quantity's unit is the last part of its field name (memory_mib, timeout_s, power_w).
UNITS = {
    "mib": "MiB",
    "gib": "GiB",
    "gb": "GB",
    "bytes": "bytes",
    "w": "watts",
    "v": "volts",
    "amps": "amperes",
    "s": "seconds",
    "mhz": "MHz",
    "mts": "MT/s",
    "gbs": "GB/s",
    "gbps": "Gb/s",
    "pct": "percent",
    "c": "degrees Celsius",
    "u": "rack units",
}
_NUMBER_TYPES = {"int_type", "int_parsing", "int_from_float", "float_type", "float_parsing"}


def _unit_hint(loc: Path_, kind: str) -> str:
    field = next((part for part in reversed(loc) if isinstance(part, str)), "")
    unit = UNITS.get(field.rsplit("_", 1)[-1]) if "_" in field else None
    return f" in {unit} (the unit is in the field's name)" if unit and kind in _NUMBER_TYPES else ""


def _data_loc(data: Any, loc: Iterable[str | int]) -> tuple[Path_, bool]:
    """`loc` without the union-member tags pydantic adds ('str', 'int', ...); and whether it had any.

    A part names a field while the data there is a mapping (present or missing), an index while it is
    a list; a part below a scalar can only be the tag of a union member.
    """
    out: list[str | int] = []
    node, tagged = data, False
    for part in loc:
        if isinstance(node, dict):
            out.append(part)
            node = node.get(part) if isinstance(part, str) else None
        elif isinstance(node, list) and isinstance(part, int):
            out.append(part)
            node = node[part] if 0 <= part < len(node) else None
        else:
            tagged = True
    return tuple(out), tagged


def validation_message(doc: Document, exc: ValidationError, prefix: Path_ = (), data: Any = None) -> str:
    """One line for the first error: file:line: field: expected ..., got ..."""
    errors = exc.errors(include_url=False)
    err = errors[0]
    payload = doc.data if data is None else data
    rel, tagged = _data_loc(payload, err["loc"])
    loc = (*prefix, *rel)
    got = "unknown field" if err["type"] == "extra_forbidden" else "nothing"
    if err["type"] != "missing" and err["type"] != "extra_forbidden":
        got = json.dumps(err.get("input"), default=str)
    if tagged:
        # A union: say every kind of value the field takes, once.
        kinds: list[str] = []
        for other in errors:
            if _data_loc(payload, other["loc"])[0] == rel and _expected(other) not in kinds:
                kinds.append(_expected(other))
        expected = ", ".join(kinds[:-1]) + (" or " if len(kinds) > 1 else "") + kinds[-1]
        return f"{doc.where(loc)}: {dotted(loc)}: expected {expected}, got {got}"
    if err["type"] == "value_error":
        return f"{doc.where(loc)}: {dotted(loc)}: {_expected(err)}"
    hint = _unit_hint(loc, err["type"])
    return f"{doc.where(loc)}: {dotted(loc)}: expected {_expected(err)}{hint}, got {got}"


def build(model: type[M], doc: Document, data: Any = None, prefix: Path_ = ()) -> M:
    """Validate plain data into a frozen model (strict, JSON semantics); errors name the line."""
    payload = doc.data if data is None else data
    try:
        return model.model_validate_json(json.dumps(payload, default=str), strict=True)
    except ValidationError as exc:
        raise BadInput(validation_message(doc, exc, prefix, payload)) from None
