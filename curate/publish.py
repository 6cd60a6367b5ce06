"""The last stage of every writer (augment run, sweeps, curate split, curate review apply, curate import):
candidate manifest + GateResult -> staged version -> report rendered from the staged version -> commit or reject.

    outcome = publish(dataset, manifest, source=source_view, gate=gate_result, info={...}, label="speech_cafe")

Nothing-to-do means nothing written: a candidate whose fingerprint equals the lineage parent's is `unchanged`. A
candidate the gate refuses is staged as rejected and moved, with its reports, to DATASET/rejected/<time>-<label>/
unless `force` (then it is committed and its version.json says it was forced).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Mapping, Optional

from curate.checks import GateResult


@dataclass(frozen=True)
class Outcome:
    status: Literal["committed", "rejected", "unchanged"]
    gate: Optional[GateResult]
    version: Any = None                  # the committed Version, or the unchanged parent
    rejected_dir: Optional[Path] = None
    forced: bool = False


def unchanged(dataset, manifest) -> Any:
    """The latest version when `manifest` is the same content (fingerprint) as it, else None."""
    from curate import manifest as mf

    latest = dataset.latest()
    if latest is None:
        return None
    version = dataset.load(latest)
    return version if mf.fingerprint(mf.normalise(manifest)) == version.info.get("fingerprint") else None


def _in(dataset, view) -> bool:
    return view is not None and Path(view.dataset.path).resolve() == Path(dataset.path).resolve() and \
        view.name in dataset.versions()


def publish(dataset, manifest, *, source, gate: GateResult | None, info: Mapping[str, Any], label: str,
            media: Mapping[str, Any] | None = None, force: bool = False, reports: bool = True,
            evidence: Mapping[str, bytes] | None = None, logs: Mapping[str, bytes] | None = None) -> Outcome:
    """Write `manifest` as the next version of `dataset` (whose latest version is its lineage parent) when `gate`
    passes or `force`; otherwise leave the evidence (reports, gate.json, and the writer's `evidence` files such as
    the recipe) in rejected/. `logs` (e.g. the evaluation model's output) are kept either way. `source` is the
    version the change was made from (what the gate compared with)."""
    with dataset.lock():
        same = unchanged(dataset, manifest)
        if same is not None:
            return Outcome("unchanged", gate, version=same)
        passed = gate is None or gate.passed
        record = {**info, "gate": gate.summary(forced=not passed and force) if gate is not None else None}
        if _in(dataset, source):  # made from a version of this dataset: it must be the latest (stage refuses)
            record["parent"] = source.name
        staged = dataset.stage(manifest, media, record, rejected=not passed and not force)
        try:
            files: dict[str, bytes] = dict(logs or {})
            if staged.rejected:
                files |= dict(evidence or {})
                files["gate.json"] = (json.dumps(gate.to_dict(), indent=2) + "\n").encode()
            if reports:
                from curate.report import build_report, report_files

                files |= report_files(build_report(staged, source, gate, staged.info), staged, source)
            staged.add_files(files)
        except BaseException:
            staged.discard()
            raise
        if staged.rejected:
            return Outcome("rejected", gate, rejected_dir=staged.reject(label))
        return Outcome("committed", gate, version=staged.commit(), forced=not passed)
