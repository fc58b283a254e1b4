"""Adapter: read a YAML file written by a person, keeping the line of every node.

Typed models are built from the plain data; when they reject it, `locate` turns the model's field
path back into the line in the file, so every message names file, line, field, expected and got.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from provision.model.errors import BadInput
from provision.model.files import MAX_INPUT_BYTES, FileRefused, read_regular, size_text

Path_ = tuple[str | int, ...]
# libyaml composes ~20x faster; the pure-Python loader, where libyaml is missing, gives the same nodes.
_FAST_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
M = TypeVar("M", bound=BaseModel)

# Bounds on what one file may cost to load, whoever wrote it.
MAX_BYTES = MAX_INPUT_BYTES
MAX_DEPTH = 32  # the deepest shipped field is 6 levels down
# Aliases are expanded (a profile may reuse a block of its own), but what they copy counts against
# one budget per file: a chain of aliases of aliases (a "billion laughs") multiplies at every link
# and would otherwise take minutes and all memory; with the budget it stops within milliseconds.
ALIAS_BUDGET = 10_000  # nodes copied by aliases, in all
# A field that holds, or may hold, a secret: its value is never echoed back, only its type.
SECRET_FIELD = re.compile(r"password|passwd|passphrase|secret|token|community|credential|private_key", re.I)


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


def is_secret(loc: Iterable[str | int]) -> bool:
    return any(isinstance(part, str) and SECRET_FIELD.search(part) for part in loc)


def type_of(value: Any) -> str:
    """What a value is, without what it says: for fields that may hold a secret."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return f"text of {len(value)} characters"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return type(value).__name__


@dataclass
class _Walk:
    """Plain data from a composed node graph, refusing what would make it unbounded.

    The composer hands back a graph: an alias is the very node its anchor names. So a node met a
    second time is an alias being expanded, and a node met inside itself is a recursive alias.
    """

    file: Path
    lines: dict[Path_, int] = field(default_factory=dict)
    seen: set[int] = field(default_factory=set)
    inside: list[int] = field(default_factory=list)  # the nodes being walked, outermost first
    copied: int = 0

    def _refuse(self, node: yaml.Node, path: Path_, expected: str, got: str) -> BadInput:
        line = self.lines.get(path, node.start_mark.line + 1)
        return BadInput(f"{self.file}:{line}: {dotted(path)}: expected {expected}, got {got}")

    def scalar(self, node: yaml.Node, path: Path_) -> Any:
        # A fresh constructor per scalar: the same tag resolution as safe_load, without re-parsing.
        try:
            return yaml.constructor.SafeConstructor().construct_object(node, deep=True)
        except yaml.YAMLError:  # a tag safe_load does not build (!!python/..., a merge key <<)
            got = "a merge key (<<)" if node.tag.endswith(":merge") else f"a value tagged {node.tag}"
            raise self._refuse(node, path, "plain YAML values", got) from None

    def walk(self, node: yaml.Node, path: Path_ = (), copying: bool = False) -> Any:
        self.lines.setdefault(path, node.start_mark.line + 1)
        key = id(node)
        if key in self.inside:
            raise self._refuse(node, path, "data", "an alias inside its own anchor (a recursive structure)")
        if len(self.inside) >= MAX_DEPTH:
            raise self._refuse(node, path, f"at most {MAX_DEPTH} levels of nesting", "more")
        copying = copying or key in self.seen
        if copying:
            self.copied += 1
            if self.copied > ALIAS_BUDGET:
                raise self._refuse(
                    node, path, f"aliases that expand to at most {ALIAS_BUDGET} values in all", "more"
                )
        self.seen.add(key)
        if not isinstance(node, yaml.MappingNode | yaml.SequenceNode):
            return self.scalar(node, path)
        self.inside.append(key)
        try:
            if isinstance(node, yaml.SequenceNode):
                return [self.walk(item, (*path, i), copying) for i, item in enumerate(node.value)]
            return self.mapping(node, path, copying)
        finally:
            self.inside.pop()

    def mapping(self, node: yaml.MappingNode, path: Path_, copying: bool) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode):  # never built: it could be an alias bomb
                got = "a mapping" if isinstance(key_node, yaml.MappingNode) else "a list"
                raise BadInput(f"{self.file}:{line}: {dotted(path)}: expected a text key, got {got}")
            key = self.scalar(key_node, path)
            if not isinstance(key, str):
                got = type_of(key) if is_secret(path) else repr(key)
                raise BadInput(f"{self.file}:{line}: {dotted(path)}: expected a text key, got {got}")
            if key in out:
                raise BadInput(
                    f"{self.file}:{line}: {dotted((*path, key))}: "
                    f"expected each key once, got a duplicate of line {self.lines[(*path, key)]}"
                )
            self.lines[(*path, key)] = line
            out[key] = self.walk(value_node, (*path, key), copying)
        return out


def read_yaml(path: Path) -> Document:
    """Parse `path` into plain data plus line numbers. Each problem becomes one BadInput line."""
    try:
        blob, _ = read_regular(path, MAX_BYTES)
        text = blob.decode("utf-8")
    except FileNotFoundError:
        raise BadInput(f"{path}: expected a YAML file, got no such file") from None
    except FileRefused as exc:
        raise BadInput(
            f"{path}: expected a regular YAML file of at most {size_text(MAX_BYTES)}, got {exc.got}"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path}: expected a readable UTF-8 YAML file, got {exc}") from None
    root = _compose(path, text)
    walker = _Walk(path)
    data = {} if root is None else walker.walk(root)
    return Document(path=path, data=data, lines=walker.lines)


def _compose(path: Path, text: str) -> yaml.Node | None:
    try:
        return yaml.compose(text, Loader=_FAST_LOADER)
    except yaml.MarkedYAMLError as exc:
        # libyaml stops at 1000 levels; the pure-Python scanner takes time quadratic in the depth.
        if "nesting depth" in str(exc.problem):
            line = exc.problem_mark.line + 1 if exc.problem_mark else 1
            raise BadInput(
                f"{path}:{line}: expected at most {MAX_DEPTH} levels of nesting, got more"
            ) from None
        # else the pure-Python loader says where and why more clearly than libyaml
    except yaml.YAMLError:
        pass
    except RecursionError:
        pass  # the pure-Python loader, where libyaml is missing
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise BadInput(f"{path}:{line}: expected valid YAML, got {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise BadInput(f"{path}: expected valid YAML, got {exc}") from None
    except RecursionError:
        # Its composer recurses once per level: nesting deep enough for that is never a profile.
        raise BadInput(f"{path}: expected at most {MAX_DEPTH} levels of nesting, got more") from None


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
        value = err.get("input")
        got = type_of(value) if is_secret(loc) else json.dumps(value, default=str)
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
