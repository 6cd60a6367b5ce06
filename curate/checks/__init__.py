"""Curation checks: each module holds one check, a function (candidate, source, config) -> list[Finding].

`candidate` and `source` are dataset views (curate.view.DatasetView): the candidate is what would be written, the
source is the version the change was made from (None for a first import). `config` is the check's own section of
the gate config (a pydantic model, see curate.checks.gate).

The gate judges the CHANGE: a finding is `new` when the change introduced or worsened it and `inherited` when the
source has it already. To make that decidable without each check knowing about the other side, a finding carries
  key       what kind of problem it is ("leakage.near_duplicates", "splits.label_absent.dev", ...);
  subjects  every item, pair, group or label it implicates (all of them, not the capped `items` list);
  measure   for an aggregate problem (a deviation, a rate), a number where larger is worse.
The gate compares these with the source's findings of the same key (curate.checks.gate). A check that already
compares candidate with source (realism judges only new items; the prior-shift guard compares ratios) marks its
findings `relative=True`: they are new by construction.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal, Optional

SEVERITIES = ("info", "warning", "error")
Status = Literal["new", "inherited"]


@dataclass(frozen=True)
class Finding:
    check: str
    severity: str
    message: str
    items: list[Any] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    key: str = ""
    subjects: frozenset = frozenset()
    measure: Optional[float] = None
    relative: bool = False
    status: Optional[Status] = None

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity: {self.severity!r} is not one of {', '.join(SEVERITIES)}")

    def with_status(self, status: Status, **figures: Any) -> "Finding":
        return replace(self, status=status, figures={**self.figures, **figures} if figures else self.figures)

    def to_dict(self) -> dict[str, Any]:
        return _plain({"check": self.check, "severity": self.severity, "status": self.status,
                       "message": self.message, "items": self.items, "figures": self.figures})


def _plain(value: Any) -> Any:
    from curate.manifest import jsonable

    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    return jsonable(value)


@dataclass(frozen=True)
class CheckStatus:
    """One row of the per-check status table: the worst severity of its new and of its inherited findings."""
    check: str
    status: str          # blocking | warning | inherited | ok
    new: int
    inherited: int
    reason: str
    seconds: Optional[float] = None


@dataclass(frozen=True)
class GateResult:
    findings: tuple[Finding, ...]
    block_on: tuple[str, ...] = ("error",)
    checks: tuple[str, ...] = ()
    seconds: dict[str, float] = field(default_factory=dict)
    block_on_inherited: bool = False

    def blocks(self, finding: Finding) -> bool:
        return finding.severity in self.block_on and (finding.status != "inherited" or self.block_on_inherited)

    @property
    def blocking(self) -> list[Finding]:
        return [f for f in self.findings if self.blocks(f)]

    @property
    def passed(self) -> bool:
        return not self.blocking

    @property
    def counts(self) -> dict[str, int]:
        return {s: sum(f.severity == s for f in self.findings) for s in ("error", "warning", "info")}

    @property
    def new(self) -> list[Finding]:
        return [f for f in self.findings if f.status != "inherited"]

    @property
    def inherited(self) -> list[Finding]:
        return [f for f in self.findings if f.status == "inherited"]

    def add(self, findings: list[Finding], check: str | None = None, seconds: float | None = None) -> "GateResult":
        checks = self.checks + ((check,) if check and check not in self.checks else ())
        timing = {**self.seconds, **({check: seconds} if check and seconds is not None else {})}
        marked = tuple(f if f.status else f.with_status("new") for f in findings)  # added after the gate: the change's
        return replace(self, findings=self.findings + marked, checks=checks, seconds=timing)

    def statuses(self) -> list[CheckStatus]:
        rows = []
        for check in self.checks:
            mine = [f for f in self.findings if f.check == check]
            new = [f for f in mine if f.status != "inherited" and f.severity != "info"]
            old = [f for f in mine if f.status == "inherited" and f.severity != "info"]
            blocking = [f for f in mine if self.blocks(f)]
            worst = blocking or new or old
            status = "blocking" if blocking else ("warning" if new else ("inherited" if old else "ok"))
            reason = worst[0].message if worst else (mine[0].message if mine else "nothing to report")
            rows.append(CheckStatus(check, status, len(new), len(old), reason, self.seconds.get(check)))
        return rows

    def summary(self, forced: bool = False) -> dict[str, Any]:
        """The short form stored in version.json."""
        return {"verdict": "forced" if forced else ("passed" if self.passed else "failed"), "passed": self.passed,
                "forced": forced, "counts": self.counts, "block_on": list(self.block_on),
                "block_on_inherited": self.block_on_inherited,
                "findings": [{"check": f.check, "severity": f.severity, "status": f.status, "message": f.message}
                             for f in self.findings if f.severity != "info"]}

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "block_on": list(self.block_on), "block_on_inherited": self.block_on_inherited,
                "checks": list(self.checks), "seconds": dict(self.seconds), "counts": self.counts,
                "status": [asdict(s) for s in self.statuses()],
                "findings": [f.to_dict() | {"blocking": self.blocks(f)} for f in self.findings]}


def train_mask(manifest):
    """Items that count as training data: split == train, or every item when no split is assigned at all."""
    import numpy as np

    splits = list(manifest["split"])
    if all(s is None for s in splits):
        return np.ones(len(splits), bool)
    return np.array([s == "train" for s in splits])
