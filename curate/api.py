"""The Python form of `curate check`: `curate.check(ref, config=None, predictions=None) -> GateResult`.

The same judgement as the command: the version is gated against the version it was made from (its recipe's source
when that still resolves, else its lineage parent; none for a first import), with the gate config given as None
(the defaults), a mapping (the `curation:` block of a recipe), a GateConfig, or the path of a gate-config YAML.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

from curate.exceptions import BadInput


def source_of(version):
    """The version a version was made from: the recipe's source when it still resolves, else the lineage parent
    (None for a first import)."""
    from curate.store import load_ref

    ref = (version.info.get("source") or {}).get("dataset")
    if ref:
        try:
            return load_ref(ref)
        except BadInput:
            pass
    parent = version.info.get("parent")
    return version.dataset.load(parent) if parent and parent in version.dataset.versions() else None


def gate_config_of(config: Any = None, predictions: Optional[str | os.PathLike] = None):
    """A validated GateConfig from None, a mapping, a GateConfig or a YAML path; `predictions` (a predictions CSV
    for label issues and confusable pairs) must exist."""
    from curate.checks.gate import GateConfig, load_config, parse_config

    if config is None or isinstance(config, (str, os.PathLike)):
        if config is not None and not Path(config).is_file():
            raise BadInput(f"config: {config} does not exist")
        gate_config = load_config(config)
    elif isinstance(config, GateConfig):
        gate_config = config
    elif isinstance(config, Mapping):
        gate_config = parse_config(dict(config), where="config")
    else:
        raise BadInput(f"config: expected None, a mapping of gate settings or a gate-config YAML path, got "
                       f"{type(config).__name__}")
    if predictions is not None:
        if not Path(predictions).is_file():
            raise BadInput(f"predictions: {predictions} does not exist")
        gate_config = gate_config.model_copy(update={"predictions": os.fspath(predictions)})
    return gate_config


def check(ref: Any, config: Any = None, predictions: Optional[str | os.PathLike] = None,
          progress: Optional[Callable] = None):
    """Run the curation gate on `ref` (a 'PATH[@vNNNN|@latest]' reference or a loaded Version) against the version
    it was made from -> curate.checks.GateResult (`passed`, `new`/`inherited` findings, `to_dict()`). A failing
    gate is a result, not an exception; a bad reference, config or predictions path raises BadInput."""
    from curate.checks.gate import run_gate
    from curate.store import Version, load_ref

    version = ref if isinstance(ref, Version) else load_ref(_ref_text(ref))
    gate_config = gate_config_of(config, predictions)
    return run_gate(version, source_of(version), gate_config, progress=progress)


def _ref_text(ref: Any) -> str:
    if not isinstance(ref, (str, os.PathLike)):
        raise BadInput(f"ref: expected 'PATH[@vNNNN|@latest]' or a curate Version, got {type(ref).__name__}")
    return os.fspath(ref)
