"""YAML for trustlane's data files, with line numbers for error messages.

PyYAML's ``safe_load`` forgets where things were and keeps the last of two equal keys. Here mappings load as
:class:`LineDict` (a ``dict`` that remembers its own line and each key's line) and a repeated key is an
error, so a mapping or category file can be checked and every complaint can name ``file:line``.
"""

from __future__ import annotations

from typing import Any

import yaml

from trustlane.errors import MalformedInput

MAX_YAML_BYTES = 4 << 20


class LineDict(dict[Any, Any]):
    """A YAML mapping: ``line`` is where it starts, ``key_lines[key]`` where each key is (1-based)."""

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.key_lines: dict[Any, int] = {}

    def line_of(self, key: object) -> int:
        return self.key_lines.get(key, self.line)


class _Loader(yaml.SafeLoader):
    source = "<yaml>"


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    result = LineDict(node.start_mark.line + 1)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        try:
            hash(key)
        except TypeError:
            raise MalformedInput(f"{loader.source}:{line}: a mapping key must be a scalar") from None
        if key in result:
            raise MalformedInput(
                f"{loader.source}:{line}: key {key!r} repeats the one on line {result.key_lines[key]}",
                hint="YAML would silently keep only the last one; merge the two entries",
            )
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = line
    return result


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_yaml(text: str, *, source: str) -> Any:
    """Parse one YAML document with :class:`LineDict` mappings; errors name ``source`` and the line."""
    if len(text.encode("utf-8")) > MAX_YAML_BYTES:
        raise MalformedInput(f"{source}: larger than {MAX_YAML_BYTES} bytes")
    loader = _Loader(text)
    loader.source = source
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = f":{mark.line + 1}" if mark else ""
        raise MalformedInput(f"{source}{line}: {err.problem or err.context}", hint="fix the YAML syntax") from None
    except yaml.YAMLError as err:
        raise MalformedInput(f"{source}: {err}", hint="fix the YAML syntax") from None
    finally:
        loader.dispose()


def require_map(value: object, *, where: str, what: str) -> LineDict:
    """``value`` as a :class:`LineDict`, or a :class:`MalformedInput` saying ``what`` should be a mapping."""
    if not isinstance(value, LineDict):
        raise MalformedInput(f"{where}: {what} must be a mapping, not {type(value).__name__}")
    return value


def check_keys(mapping: LineDict, allowed: frozenset[str], *, source: str, what: str) -> None:
    """Refuse keys outside ``allowed``, naming the line of the first unknown one."""
    for key in mapping:
        if key not in allowed:
            raise MalformedInput(
                f"{source}:{mapping.line_of(key)}: unknown key {key!r} in {what}",
                hint=f"allowed keys: {', '.join(sorted(allowed))}",
            )


__all__ = ["LineDict", "check_keys", "load_yaml", "require_map"]
