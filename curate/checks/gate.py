"""The curation gate: run the configured checks, decide whether the candidate may be written.

Config (YAML file for `curate check --config`, or the recipe's `curation:` block); every key is optional:

    checks: [realism, consistency, splits, ambiguity, leakage]   # which checks run (default: all)
    block_on: error            # error | warning: the severities that stop the write
    predictions: preds.csv     # optional model predictions (consistency: cleanlab label issues; ambiguity: pairs)
    max_items: 50              # items listed per finding
    realism:     {target_tags: [], min_reference: 10, envelope_margin: 0.25, envelope_max_share: 0.1,
                  auc_warn: 0.85, neighbours: 5, label_kept_max_drop: 0.25}
    consistency: {exact_duplicate_severity: error, image_hamming_radius: 6, audio_cosine: 0.995,
                  min_agreement: 0.6, min_kappa: 0.4}
    splits:      {min_per_label: 2, max_prevalence_deviation: 0.1}
    ambiguity:   {max_prior_shift: 0.2, min_neighbour_share: 0.1, min_confusion: 0.1}
    leakage:     {near_duplicates: true, image_hamming_radius: 6, audio_cosine: 0.995}
    evaluation:  {drop_severity: warning}   # when a recipe evaluates: a significant accuracy drop on a target tag,
                                            # or on the untargeted items, is a finding of this severity

Result: {"passed": bool, "block_on": [...], "counts": {severity: n}, "findings": [{check, severity, message, items,
figures}]}, the input to reports.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from curate.checks import Finding
from curate.exceptions import BadInput

CHECK_NAMES = ("realism", "consistency", "splits", "ambiguity", "leakage")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_items: int = Field(50, ge=1)
    predictions: Optional[str] = None


class RealismConfig(_Section):
    target_tags: list[str] = []
    min_reference: int = Field(10, ge=2)
    envelope_margin: float = Field(0.25, ge=0)
    envelope_max_share: float = Field(0.1, ge=0, le=1)
    auc_warn: float = Field(0.85, ge=0.5, le=1)
    neighbours: int = Field(5, ge=1)
    label_kept_max_drop: float = Field(0.25, ge=0, le=1)


class ConsistencyConfig(_Section):
    exact_duplicate_severity: Literal["info", "warning", "error"] = "error"
    image_hamming_radius: int = Field(6, ge=0, le=256)
    audio_cosine: float = Field(0.995, gt=0, le=1)
    min_agreement: float = Field(0.6, ge=0, le=1)
    min_kappa: float = Field(0.4, ge=-1, le=1)


class SplitsConfig(_Section):
    min_per_label: int = Field(2, ge=1)
    max_prevalence_deviation: float = Field(0.1, ge=0, le=1)


class AmbiguityConfig(_Section):
    max_prior_shift: float = Field(0.2, ge=0)
    min_neighbour_share: float = Field(0.1, ge=0, le=1)
    min_confusion: float = Field(0.1, ge=0, le=1)


class LeakageConfig(_Section):
    near_duplicates: bool = True
    image_hamming_radius: int = Field(6, ge=0, le=256)
    audio_cosine: float = Field(0.995, gt=0, le=1)


class EvaluationConfig(_Section):
    drop_severity: Literal["info", "warning", "error"] = "warning"


class GateConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    checks: list[Literal["realism", "consistency", "splits", "ambiguity", "leakage"]] = list(CHECK_NAMES)
    block_on: Literal["error", "warning"] = "error"
    predictions: Optional[str] = None
    max_items: int = Field(50, ge=1)
    realism: RealismConfig = RealismConfig()
    consistency: ConsistencyConfig = ConsistencyConfig()
    splits: SplitsConfig = SplitsConfig()
    ambiguity: AmbiguityConfig = AmbiguityConfig()
    leakage: LeakageConfig = LeakageConfig()
    evaluation: EvaluationConfig = EvaluationConfig()

    def section(self, name: str) -> _Section:
        section = getattr(self, name)
        updates = {"max_items": self.max_items} if "max_items" not in section.model_fields_set else {}
        if section.predictions is None and self.predictions:
            updates["predictions"] = self.predictions
        return section.model_copy(update=updates)


def parse_config(data: dict[str, Any] | None, where: str = "curation") -> GateConfig:
    """Validate a gate config; an error names the field, e.g. `curation.realism.auc_warn: ...`."""
    try:
        return GateConfig.model_validate(data or {})
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise BadInput(f"{where}.{field}: {first['msg']}") from None


def load_config(path: str | Path | None) -> GateConfig:
    if path is None:
        return GateConfig()
    import yaml

    path = Path(path)
    if not path.is_file():
        raise BadInput(f"{path}: config file does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise BadInput(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if data is not None and not isinstance(data, dict):
        raise BadInput(f"{path}: expected a mapping of gate settings")
    return parse_config(data, where=str(path))


def run_gate(candidate, parent, config: GateConfig | dict | None = None, progress=None) -> dict[str, Any]:
    from curate.checks import ambiguity, consistency, leakage, realism, splits

    if not isinstance(config, GateConfig):
        config = parse_config(config)
    modules = {"realism": realism, "consistency": consistency, "splits": splits, "ambiguity": ambiguity,
               "leakage": leakage}
    findings: list[Finding] = []
    timings = {}
    for name in (progress(config.checks, "checks") if progress else config.checks):
        start = time.perf_counter()
        findings += modules[name].check(candidate, parent, config.section(name))
        timings[name] = round(time.perf_counter() - start, 3)
    blocking = ("error",) if config.block_on == "error" else ("error", "warning")
    result = {"block_on": list(blocking), "checks": list(config.checks), "seconds": timings, "findings": []}
    return add_findings(result, findings)


def add_findings(result: dict[str, Any], findings: list[Finding]) -> dict[str, Any]:
    """Add findings to a gate result and recompute its counts and verdict."""
    result["findings"] = result["findings"] + [f.to_dict() for f in findings]
    result["counts"] = {s: sum(f["severity"] == s for f in result["findings"]) for s in ("error", "warning", "info")}
    result["passed"] = not any(f["severity"] in result["block_on"] for f in result["findings"])
    return result
