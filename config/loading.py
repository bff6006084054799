"""YAML → ServiceSpec, keeping line numbers so that every problem names ``file:line: path``.

PyYAML's composed node tree carries marks; values are built from it by walking the attrs models,
so a wrong type, an unknown key or a bad ``${VAR}`` is reported where it is written. All problems
are collected before `ConfigError` is raised: an operator fixes a file in one pass.
"""
from __future__ import annotations

import difflib
import os
import re
import types
import typing
from typing import Any, Literal, Mapping

import attrs
import yaml

from config.models import CONSTRAINT_OPERATORS, Constraint, ServiceSpec
from kmfwire.errors import KmfError

MAX_BYTES = 1 << 20
MAX_NODES = 20_000
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_SECRET_KEYS = {"secret", "password", "token"}


@attrs.frozen
class Problem:
    source: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line else self.source
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ConfigError(KmfError, ValueError):
    """The configuration is not valid; `problems` lists every one found."""

    def __init__(self, problems: list[Problem] | tuple[Problem, ...]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class _Builder:
    def __init__(self, source: str, env: Mapping[str, str]) -> None:
        self.source = source
        self.env = env
        self.problems: list[Problem] = []

    def fail(self, node: yaml.Node | None, path: str, message: str) -> None:
        line = node.start_mark.line + 1 if node is not None else None
        self.problems.append(Problem(self.source, line, path, message))

    # -- scalars -------------------------------------------------------------------------------

    def text(self, node: yaml.Node, path: str) -> str | None:
        if not isinstance(node, yaml.ScalarNode):
            self.fail(node, path, f"expected a single value, got {_kind(node)}")
            return None
        return self.interpolate(node, path, node.value)

    def interpolate(self, node: yaml.Node, path: str, value: str) -> str | None:
        missing: list[str] = []

        def sub(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in self.env:
                return str(self.env[name])
            if default is not None:
                return str(default)
            missing.append(name)
            return ""

        out = _VAR.sub(sub, value)
        for name in missing:
            self.fail(node, path, f"environment variable {name} is not set and has no default "
                                  f"(write ${{{name}:-default}} to give one)")
        return None if missing else out

    def scalar(self, node: yaml.Node, path: str, typ: Any) -> Any:
        raw = self.text(node, path)
        if raw is None:
            return None
        plain = isinstance(node, yaml.ScalarNode) and node.style is None
        if typ is str:
            return raw
        if typ is bool:
            low = raw.lower()
            if low in ("true", "yes", "on"):
                return True
            if low in ("false", "no", "off"):
                return False
            self.fail(node, path, f"expected true or false, got {raw!r}")
            return None
        if typ is int:
            try:
                if not plain and not _VAR.search(node.value):
                    raise ValueError
                return int(raw, 10)
            except ValueError:
                self.fail(node, path, f"expected a whole number, got {raw!r}")
                return None
        if typ is float:
            try:
                if not plain and not _VAR.search(node.value):
                    raise ValueError
                value = float(raw)
            except ValueError:
                self.fail(node, path, f"expected a number, got {raw!r}")
                return None
            if value != value or value in (float("inf"), float("-inf")):
                self.fail(node, path, f"expected a finite number, got {raw!r}")
                return None
            return value
        raise TypeError(typ)  # pragma: no cover - models only use the types above

    # -- structure -----------------------------------------------------------------------------

    def value(self, node: yaml.Node, path: str, typ: Any) -> Any:
        origin = typing.get_origin(typ)
        args = typing.get_args(typ)
        if origin in (typing.Union, types.UnionType):
            inner = [a for a in args if a is not type(None)]
            if isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null"):
                return None
            return self.value(node, path, inner[0])
        if origin is Literal:
            raw = self.text(node, path)
            if raw is None:
                return None
            if raw not in args:
                self.fail(node, path, f"{raw!r} is not one of {', '.join(args)}")
                return None
            return raw
        if origin is tuple:
            item = args[0]
            if item is Constraint:
                return self.constraints(node, path)
            if not isinstance(node, yaml.SequenceNode):
                self.fail(node, path, f"expected a list, got {_kind(node)}")
                return None
            items = [self.value(n, f"{path}[{i}]", item) for i, n in enumerate(node.value)]
            return tuple(items)
        if origin is dict:
            if not isinstance(node, yaml.MappingNode):
                self.fail(node, path, f"expected a mapping, got {_kind(node)}")
                return None
            out: dict[str, str] = {}
            for key_node, value_node in node.value:
                key = self.text(key_node, path)
                if key is None:
                    continue
                if not isinstance(value_node, yaml.ScalarNode):
                    self.fail(value_node, f"{path}.{key}", f"expected a single value, got {_kind(value_node)}")
                    continue
                val = self.text(value_node, f"{path}.{key}")
                if val is not None:
                    out[key] = val
            return out
        if attrs.has(typ):
            if isinstance(node, yaml.ScalarNode) and hasattr(typ, "from_text"):
                # the short form of a model that is mostly one value (an app's URI)
                raw = self.text(node, path)
                return None if raw is None else typ.from_text(raw)
            return self.model(node, path, typ)
        return self.scalar(node, path, typ)

    def model(self, node: yaml.Node, path: str, cls: type) -> Any:
        where = path or "document"
        if not isinstance(node, yaml.MappingNode):
            self.fail(node, where, f"expected a mapping, got {_kind(node)}")
            return None
        fields = {f.name: f for f in attrs.fields(cls)}
        hints = typing.get_type_hints(cls)
        seen: dict[str, Any] = {}
        before = len(self.problems)
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                self.fail(key_node, where, "keys must be plain names")
                continue
            key = key_node.value
            sub = f"{path}.{key}" if path else key
            if key in seen:
                self.fail(key_node, sub, "given twice")
                continue
            if key not in fields:
                if key in _SECRET_KEYS or key.endswith(("_secret", "_password")):
                    self.fail(key_node, sub, "secrets are never written in the YAML; "
                                             f"put it in a file and give {key.split('_')[0]}_file")
                    continue
                hint = difflib.get_close_matches(key, fields, n=1)
                extra = f" (did you mean {hint[0]!r}?)" if hint else ""
                self.fail(key_node, sub, f"unknown key{extra}; known keys: {', '.join(fields)}")
                continue
            seen[key] = self.value(value_node, sub, hints[key])
        for name, field in fields.items():
            if name not in seen and field.default is attrs.NOTHING:
                self.fail(node, f"{path}.{name}" if path else name, "is required")
        if len(self.problems) > before:
            return None
        return cls(**{k: v for k, v in seen.items() if v is not None or _optional(hints[k])})

    def constraints(self, node: yaml.Node, path: str) -> tuple[Constraint, ...] | None:
        if isinstance(node, yaml.ScalarNode) and not node.value:
            return ()
        items = node.value if isinstance(node, yaml.SequenceNode) else [node]
        out = []
        for i, item in enumerate(items):
            sub = f"{path}[{i}]" if isinstance(node, yaml.SequenceNode) else path
            parts: list[str | None]
            if isinstance(item, yaml.SequenceNode):
                parts = [self.text(n, sub) for n in item.value]
            elif isinstance(item, yaml.ScalarNode):
                raw = self.text(item, sub)
                parts = list(raw.split(":", 2)) if raw is not None else [None]
            elif isinstance(item, yaml.MappingNode):
                # {field, operator, value}: how kmf writes a stored config (`kmf config target`)
                keys = {self.text(k, sub): v for k, v in item.value}
                if not {"field", "operator"} <= set(keys) <= {"field", "operator", "value"}:
                    self.fail(item, sub, "expected the keys field, operator and (optionally) value")
                    continue
                value = keys.get("value")
                parts = [self.text(keys["field"], f"{sub}.field"), self.text(keys["operator"], f"{sub}.operator")]
                if value is not None and not (isinstance(value, yaml.ScalarNode) and value.tag.endswith(":null")):
                    parts.append(self.text(value, f"{sub}.value"))
            else:
                self.fail(item, sub, 'expected "field:OPERATOR[:value]" or [field, OPERATOR, value]')
                continue
            fields = [p for p in parts if p is not None]
            if len(fields) != len(parts):
                continue
            if len(fields) not in (2, 3) or not fields[0]:
                self.fail(item, sub, 'expected "field:OPERATOR[:value]" or [field, OPERATOR, value]')
                continue
            op = fields[1].upper()
            if op not in CONSTRAINT_OPERATORS:
                self.fail(item, sub, f"operator {fields[1]!r} is not one of {', '.join(CONSTRAINT_OPERATORS)}")
                continue
            out.append(Constraint(fields[0], op, fields[2] if len(fields) == 3 else None))
        return tuple(out)


def _optional(typ: Any) -> bool:
    return type(None) in typing.get_args(typ)


def _kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return f"{node.value!r}"


def _count_nodes(node: yaml.Node, budget: list[int], depth: int = 0) -> None:
    # aliases share nodes: walking the tree counts each use, which bounds alias bombs
    budget[0] -= 1
    if budget[0] < 0 or depth > 50:
        raise OverflowError
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            _count_nodes(k, budget, depth + 1)
            _count_nodes(v, budget, depth + 1)
    elif isinstance(node, yaml.SequenceNode):
        for v in node.value:
            _count_nodes(v, budget, depth + 1)


def compose(text: str | bytes, source: str) -> yaml.Node:
    """Parse YAML into a node tree, refusing oversized, over-deep or alias-bomb documents."""
    if isinstance(text, bytes):
        if len(text) > MAX_BYTES:
            raise ConfigError([Problem(source, None, "", f"larger than {MAX_BYTES} bytes")])
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError([Problem(source, None, "", f"not UTF-8 text ({exc.reason} at byte {exc.start})")]) from None
    if len(text) > MAX_BYTES:
        raise ConfigError([Problem(source, None, "", f"larger than {MAX_BYTES} characters")])
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else None
        raise ConfigError([Problem(source, line, "", f"not valid YAML: {exc.problem}")]) from None
    except (yaml.YAMLError, RecursionError, ValueError) as exc:
        raise ConfigError([Problem(source, None, "", f"not valid YAML: {exc}")]) from None
    if node is None:
        raise ConfigError([Problem(source, None, "", "the document is empty")])
    try:
        _count_nodes(node, [MAX_NODES])
    except (OverflowError, RecursionError):
        raise ConfigError([Problem(source, None, "", f"too large or too deep once aliases are expanded "
                                                      f"(limit {MAX_NODES} nodes, depth 50)")]) from None
    return node


def build(text: str | bytes, source: str = "<string>", env: Mapping[str, str] | None = None) -> ServiceSpec:
    """Parse and structure, without the semantic rules of `config.rules`."""
    node = compose(text, source)
    builder = _Builder(source, os.environ if env is None else env)
    spec = builder.model(node, "", ServiceSpec)
    if builder.problems or not isinstance(spec, ServiceSpec):
        raise ConfigError(builder.problems or [Problem(source, None, "", "not a service spec")])
    return spec


def line_of(text: str | bytes, source: str, dotted: str) -> int | None:
    """The line where a dotted path (``kafka.brokers``, ``apps[1].name``) is written, if it is."""
    try:
        node = compose(text, source)
    except ConfigError:
        return None
    line = node.start_mark.line + 1
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", dotted):
        if part.startswith("["):
            if not isinstance(node, yaml.SequenceNode):
                return line
            index = int(part[1:-1])
            if index >= len(node.value):
                return line
            node = node.value[index]
        else:
            if not isinstance(node, yaml.MappingNode):
                return line
            match = next((v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == part), None)
            if match is None:
                return line
            node = match
        line = node.start_mark.line + 1
    return line
