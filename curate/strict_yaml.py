"""Strict YAML for the files users write (recipes, gate configs): what PyYAML would quietly accept is refused with
the file and line.

  - the file is UTF-8 (a byte that is not names its line) and at most MAX_BYTES;
  - a key given twice in one mapping (PyYAML keeps the last one silently);
  - explicit or implicit types other than string, integer, float, boolean, null, list and mapping (`!!binary`,
    `!!python/...`, a bare date such as 2024-01-01: quote it);
  - nesting deeper than MAX_DEPTH.

`load(path, what)` returns (node tree, plain data); `line(node, loc)` finds the line of a key path for messages.
"""
from __future__ import annotations

import re
from pathlib import Path

from curate.exceptions import BadInput

MAX_BYTES = 1_000_000
MAX_DEPTH = 32
MAX_SCALAR = 4_096   # characters of one value: a path or a label, not a document
_DECIMAL = re.compile(r"^[-+]?(0|[1-9][0-9_]*)$")
_PLAIN = {f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "seq", "map")}
_NAMES = {"tag:yaml.org,2002:timestamp": "a date or time (quote it to keep it as text)",
          "tag:yaml.org,2002:binary": "binary data", "tag:yaml.org,2002:set": "a set",
          "tag:yaml.org,2002:omap": "an ordered map", "tag:yaml.org,2002:pairs": "a list of pairs"}


def read_text(path: Path, what: str) -> str:
    if not path.is_file():
        raise BadInput(f"{path}: {what} file does not exist")
    raw = path.read_bytes()
    if len(raw) > MAX_BYTES:
        raise BadInput(f"{path}: {len(raw):,} bytes; a {what} is at most {MAX_BYTES:,}")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise BadInput(f"{path}:{line}: not UTF-8 text (byte 0x{raw[exc.start]:02x}); save the {what} as UTF-8") \
            from None


def parse(text: str, path: Path):
    """(node tree, plain data) of YAML text, refusing what the module docstring lists."""
    import yaml

    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise BadInput(f"{where}: not valid YAML ({getattr(exc, 'problem', None) or exc})") from None
    except RecursionError:
        raise BadInput(f"{path}: nested more than {MAX_DEPTH} levels deep") from None
    if node is not None:
        _check(node, path)
    try:
        data = yaml.load(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:  # a value a plain type cannot hold (e.g. an int that is not one)
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise BadInput(f"{where}: not valid YAML ({getattr(exc, 'problem', None) or exc})") from None
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        raise BadInput(f"{path}: a value is out of range ({str(exc).splitlines()[0][:200]})") from None
    return node, data


def load(path: str | Path, what: str):
    path = Path(path)
    return parse(read_text(path, what), path)


def _check(root, path: Path) -> None:
    import yaml

    stack = [(root, 1)]
    seen_nodes: set[int] = set()
    while stack:
        node, depth = stack.pop()
        if id(node) in seen_nodes:  # an alias: checked where it was defined (and never walked twice)
            continue
        seen_nodes.add(id(node))
        where = f"{path}:{node.start_mark.line + 1}"
        if depth > MAX_DEPTH:
            raise BadInput(f"{where}: nested more than {MAX_DEPTH} levels deep")
        if node.tag not in _PLAIN:
            kind = _NAMES.get(node.tag, f"the type {node.tag!r}")
            raise BadInput(f"{where}: {kind} is not allowed here; use plain text, numbers, true/false, lists and "
                           "mappings")
        if node.tag == "tag:yaml.org,2002:int" and isinstance(node, yaml.ScalarNode) and node.style is None \
                and not _DECIMAL.match(node.value):
            raise BadInput(f"{where}: {node.value[:40]!r} is a YAML 1.1 octal, hex, binary or base-60 number; write "
                           "it in decimal, or quote it to keep it as text")
        if isinstance(node, yaml.ScalarNode) and len(node.value) > MAX_SCALAR:
            raise BadInput(f"{where}: a value of {len(node.value):,} characters; at most {MAX_SCALAR:,}")
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key, value in node.value:
                name = key.value if isinstance(key, yaml.ScalarNode) else None
                if name is not None and name in seen:
                    raise BadInput(f"{path}:{key.start_mark.line + 1}: key {name!r} is given twice in one mapping "
                                   f"(first on line {seen[name]})")
                if name is not None:
                    seen[name] = key.start_mark.line + 1
                stack += [(key, depth + 1), (value, depth + 1)]
        elif isinstance(node, yaml.SequenceNode):
            stack += [(child, depth + 1) for child in node.value]


def line(node, loc: tuple) -> int | None:
    """1-based line of the YAML node at `loc` (keys and list indices), or of the deepest node found."""
    import yaml

    found = node.start_mark.line + 1 if node is not None else None
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if k.value == str(key)), None)
            if match is None:
                break
            found = match[0].start_mark.line + 1
            node = match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
            found = node.start_mark.line + 1
        else:
            break
    return found


def suggest(name: str, options) -> str:
    """' (did you mean X?)' for a close match among `options`, else ''."""
    import difflib

    close = difflib.get_close_matches(str(name), [str(o) for o in options], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""

