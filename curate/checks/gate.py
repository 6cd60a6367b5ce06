"""The curation gate: run the configured checks, decide whether the candidate may be written.

Config (YAML file for `curate check --config`, or the recipe's `curation:` block); every key is optional:

    checks: [realism, consistency, splits, ambiguity, leakage, change]   # which checks run (default: all)
    block_on: error            # error | warning: the severities that stop the write
    block_on_inherited: false  # true: findings the source version already had block too (strict mode)
    predictions: preds.csv     # optional model predictions (consistency: cleanlab label issues; ambiguity: pairs)
    max_items: 50              # items listed per finding
    realism:     {target_tags: [], min_reference: 10, envelope_margin: 0.25, envelope_max_share: 0.1,
                  auc_warn: 0.85, neighbours: 5, label_kept_max_drop: 0.25, label_kept_alpha: 0.01}
                 # label kept: a drop above label_kept_max_drop with Fisher p < label_kept_alpha blocks
    consistency: {exact_duplicate_severity: error, near_duplicate_ratio: 0.25, min_agreement: 0.6, min_kappa: 0.4,
                  derived_copies: true}   # images: a moved/rotated/brightened copy under another label
    splits:      {min_per_label: 2, max_prevalence_deviation: 0.1}
    ambiguity:   {max_prior_shift: 0.2, min_neighbour_share: 0.1, min_confusion: 0.1}
    leakage:     {near_duplicates: true, near_duplicate_ratio: 0.25, derived_copies: true}
                 # derived_copies: look for dev/test items copied into train under noise, gain, resampling, a codec,
                 # a move, a small rotation or a brightness change (curate.checks.copies, with its calibration)
    change:      {noop_db: 50, noop_pixel: 1, max_noop_share: 0.05, saturation_margin: 0.02,
                  max_saturated_share: 0.05, max_prior_ratio: 2.0}
                 # what the new items add: no-op copies, saturation, class flooding (curate.checks.change)
                 # near_duplicate_ratio (both sections, same default): two different objects are near-duplicates
                 # when their distance is <= this x the dataset's typical nearest-neighbour distance (that threshold
                 # clamped to [0.03, 0.35] in unit-vector distance); see curate.checks.similarity for the calibration
    evaluation:  {drop_severity: error, accept_cost: {}}
                 # when a recipe evaluates: a significant paired accuracy drop (McNemar p < 0.05) on any dev tag is
                 # a finding of drop_severity (it blocks by default); accept_cost {tag: points} states a cost the
                 # recipe accepts: a drop of at most that many points on that tag is a warning instead

Result: a typed curate.checks.GateResult (findings marked new or inherited, per-check status, verdict); by default
only NEW findings can block: what the source version already had is reported as a known issue of the source.
"""
from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, field_validator

from curate.checks import Finding, GateResult
from curate.exceptions import BadInput

CHECK_NAMES = ("realism", "consistency", "splits", "ambiguity", "leakage", "change")
# the order checks run in: those sharing a memoised computation (their SHARED) next to each other
RUN_ORDER = ("realism", "ambiguity", "consistency", "leakage", "splits", "change")
SEVERITY_RANK = {"info": 0, "warning": 1, "error": 2}
MAX_LISTED = 50


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_items: StrictInt = Field(50, ge=1, le=100_000)
    predictions: Optional[str] = None


class RealismConfig(_Section):
    target_tags: list[str] = []
    min_reference: int = Field(10, ge=2)
    envelope_margin: float = Field(0.25, ge=0)
    envelope_max_share: float = Field(0.1, ge=0, le=1)
    auc_warn: float = Field(0.85, ge=0.5, le=1)
    neighbours: int = Field(5, ge=1)
    label_kept_max_drop: float = Field(0.25, ge=0, le=1)
    label_kept_alpha: float = Field(0.01, gt=0, lt=1)


class ConsistencyConfig(_Section):
    exact_duplicate_severity: Literal["info", "warning", "error"] = "error"
    near_duplicate_ratio: float = Field(0.25, gt=0, le=1)
    min_agreement: float = Field(0.6, ge=0, le=1)
    min_kappa: float = Field(0.4, ge=-1, le=1)
    derived_copies: bool = True


class SplitsConfig(_Section):
    min_per_label: int = Field(2, ge=1)
    max_prevalence_deviation: float = Field(0.1, ge=0, le=1)


class AmbiguityConfig(_Section):
    max_prior_shift: float = Field(0.2, ge=0)
    min_neighbour_share: float = Field(0.1, ge=0, le=1)
    min_confusion: float = Field(0.1, ge=0, le=1)


class LeakageConfig(_Section):
    near_duplicates: bool = True
    derived_copies: bool = True
    near_duplicate_ratio: float = Field(0.25, gt=0, le=1)


class ChangeConfig(_Section):
    noop_db: float = Field(50.0, gt=0)
    noop_pixel: int = Field(1, ge=0, le=255)
    max_noop_share: float = Field(0.05, ge=0, le=1)
    saturation_margin: float = Field(0.02, ge=0, le=1)
    max_saturated_share: float = Field(0.05, ge=0, le=1)
    max_prior_ratio: float = Field(2.0, gt=1)


class EvaluationConfig(_Section):
    drop_severity: Literal["info", "warning", "error"] = "error"
    accept_cost: dict[str, float] = {}   # {tag: points}: a significant drop of at most this many points is accepted

    @field_validator("accept_cost")
    @classmethod
    def _points(cls, value):
        bad = [t for t, v in value.items() if not (isinstance(v, (int, float)) and 0 <= v <= 100)]
        if bad:
            raise ValueError(f"accept_cost.{bad[0]}: expected points of accuracy in [0, 100]")
        return value


class GateConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    checks: list[Literal["realism", "consistency", "splits", "ambiguity", "leakage", "change"]] = list(CHECK_NAMES)
    block_on: Literal["error", "warning"] = "error"
    block_on_inherited: bool = False
    predictions: Optional[str] = None
    max_items: StrictInt = Field(50, ge=1, le=100_000)
    realism: RealismConfig = RealismConfig()
    consistency: ConsistencyConfig = ConsistencyConfig()
    splits: SplitsConfig = SplitsConfig()
    ambiguity: AmbiguityConfig = AmbiguityConfig()
    leakage: LeakageConfig = LeakageConfig()
    change: ChangeConfig = ChangeConfig()
    evaluation: EvaluationConfig = EvaluationConfig()

    def section(self, name: str) -> _Section:
        section = getattr(self, name)
        updates = {"max_items": self.max_items} if "max_items" not in section.model_fields_set else {}
        if section.predictions is None and self.predictions:
            updates["predictions"] = self.predictions
        return section.model_copy(update=updates)


def parse_config(data: dict[str, Any] | None, where: str = "curation", node=None, base: tuple = ()) -> GateConfig:
    """Validate a gate config. An error is one line: `FILE:LINE: field.path: what is wrong` when the YAML node
    tree of the file is given (`base`: where the config sits in it, e.g. ("curation",) in a recipe), else
    `WHERE: field.path: ...`; an unknown key says which known key it resembles."""
    from curate.strict_yaml import line, suggest

    if data is not None and not isinstance(data, dict):
        raise BadInput(f"{where}: expected a mapping of gate settings")
    try:
        return GateConfig.model_validate(data or {})
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            model = GateConfig
            for part in loc[:-1]:
                field = model.model_fields.get(str(part))
                model = field.annotation if field is not None and isinstance(field.annotation, type) and \
                    issubclass(field.annotation, BaseModel) else model
            message = "unknown key" + suggest(loc[-1], model.model_fields)
        dotted = ".".join(str(p) for p in (*base, *loc))
        found = line(node, (*base, *loc)) if node is not None else None
        prefix = f"{where.split(': ')[0]}:{found}:" if found else f"{where}:"
        raise BadInput(f"{prefix} {dotted}: {message}") from None


def load_config(path: str | Path | None) -> GateConfig:
    """A gate config file, strict YAML (curate.strict_yaml) and validated with file:line errors."""
    if path is None:
        return GateConfig()
    from curate.strict_yaml import load

    node, data = load(path, "gate config")
    return parse_config(data, where=str(path), node=node)


def run_gate(candidate, source, config: GateConfig | dict | None = None, progress=None) -> GateResult:
    """Run the configured checks on `candidate` against `source` (the version the change was made from; None for a
    first import) and mark every finding new or inherited (see curate.checks). The checks run in RUN_ORDER, so
    those that share a memoised computation run one after the other, and each computation is dropped once no check
    left needs it (peak memory is then the largest of them, not their sum); findings come in the config's order."""
    from curate.checks import ambiguity, change, consistency, leakage, realism, splits
    from curate.checks.similarity import forget

    if not isinstance(config, GateConfig):
        config = parse_config(config)
    modules = {"realism": realism, "consistency": consistency, "splits": splits, "ambiguity": ambiguity,
               "leakage": leakage, "change": change}
    blocking = ("error",) if config.block_on == "error" else ("error", "warning")
    order = sorted(dict.fromkeys(config.checks), key=RUN_ORDER.index)
    done: dict[str, tuple[list[Finding], float]] = {}
    try:
        for name in (progress(order, "checks") if progress else order):
            start = time.perf_counter()
            section = config.section(name)
            found = modules[name].check(candidate, source, section)
            before = None
            if source is not None and any(f.severity != "info" and not f.relative for f in found):
                before = modules[name].check(source, None, section)  # what the source already had
            done[name] = (classify(found, before), round(time.perf_counter() - start, 3))
            needed = frozenset().union(*(modules[later].SHARED for later in order[order.index(name) + 1:]))
            for view in (candidate, source):
                forget(view, needed)
    finally:
        for view in (candidate, source):   # nothing is kept past the gate, whatever happened
            forget(view)
    result = GateResult((), blocking, (), {}, config.block_on_inherited)
    for name in dict.fromkeys(config.checks):
        result = result.add(done[name][0], name, done[name][1])
    return result


def classify(findings: list[Finding], before: list[Finding] | None) -> list[Finding]:
    """Mark each finding `new` or `inherited` by comparing it with the source's findings of the same key: inherited
    when the source has it with the same or a higher severity and the change adds no subject to it (nor, for an
    aggregate, makes its measure worse)."""
    by_key: dict[str, list[Finding]] = {}
    for old in before or []:
        by_key.setdefault(old.key or old.message, []).append(old)
    out = []
    for finding in findings:
        olds = by_key.get(finding.key or finding.message, [])
        if finding.relative or finding.severity == "info" or not olds:
            out.append(finding.with_status("new", **({"new_subject_count": len(finding.subjects)}
                                                     if finding.subjects else {})))
            continue
        worse = SEVERITY_RANK[finding.severity] > max(SEVERITY_RANK[o.severity] for o in olds)
        known = frozenset().union(*(o.subjects for o in olds))
        fresh = sorted(finding.subjects - known)
        measures = [o.measure for o in olds if o.measure is not None]
        grown = finding.measure is not None and measures and finding.measure > max(measures) + 1e-9
        if worse or fresh or grown:
            extra = {"new_subjects": fresh[: MAX_LISTED], "new_subject_count": len(fresh)} if fresh else {}
            if grown:
                extra["source_measure"] = max(measures)
            out.append(replace(finding.with_status("new", **extra),
                               message=finding.message + _what_changed(finding, fresh, known, grown, measures)))
        else:
            out.append(finding.with_status("inherited"))
    return out


def _what_changed(finding: Finding, fresh: list, known: frozenset, grown: bool, measures: list[float]) -> str:
    if fresh:
        shown = ", ".join(map(str, fresh[:3])) + (", ..." if len(fresh) > 3 else "")
        return f" [new in this change: {len(fresh)} of {len(finding.subjects)} ({shown})]"
    if grown:
        return f" [worse than the source's {max(measures):.3g}]"
    return " [more severe than in the source]"
