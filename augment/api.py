"""The Python API of a recipe run: `augment.run(recipe, **overrides) -> RunOutcome`.

    import augment
    result = augment.run("recipes/speech_cafe_noise.yaml", budget=20, seed=3)
    result.status            # committed | rejected | up-to-date | dry-run
    result.ref, result.gate.passed, result.report

It is the spine `augment run` drives (augment.run: plan -> candidate -> gate -> commit or reject), with the same
validation before anything is written. A refusal by the gate is a result (status "rejected", the findings in
`gate`, the report in the rejected folder), not an exception; bad input (a recipe error, an unknown field, a bad
override) raises curate.exceptions.BadInput with one line naming what is wrong. Paths inside the recipe are read
relative to the current directory, as on the command line.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

from curate.exceptions import BadInput

_RUN_OPTIONS = ("seed", "output", "workers", "executor", "ray_address", "force", "dry_run", "progress", "set",
                "command", "on_plan")


@dataclass(frozen=True)
class RunOutcome:
    """What a run did. `status`: committed (a new version, `version`/`ref`), rejected (nothing written; the
    gate's findings in `gate`, the reports in `rejected_dir`), up-to-date (the plan adds nothing; `version` is the
    dataset's latest when there is one) or dry-run (only `plan`). `report` is the report.html written (the new
    version's, or the rejected run's); `counts` the items per label/tag/split/origin of what was written or
    refused; `evaluation` the stored per-tag evaluation (before/after, paired interval, McNemar p) when the
    recipe evaluates."""
    status: str
    plan: Any                                   # augment.run.plan.Plan
    new_items: int                              # items this run made (planned, for a dry run)
    gate: Any = None                            # curate.checks.GateResult
    version: Any = None                         # curate.store.Version
    rejected_dir: Optional[Path] = None
    evaluation: Optional[dict[str, Any]] = None
    counts: Optional[dict[str, Any]] = None
    forced: bool = False

    @property
    def ref(self) -> Optional[str]:
        """'PATH@vNNNN' of the version written (or found up to date); None otherwise."""
        return self.version.ref if self.version is not None else None

    @property
    def report(self) -> Optional[Path]:
        folder = self.version.path if self.status == "committed" else self.rejected_dir
        return folder / "report.html" if folder is not None else None

    @property
    def passed(self) -> Optional[bool]:
        """The gate's verdict (None when no gate ran: dry run, up to date)."""
        return self.gate.passed if self.gate is not None else None


def recipe_fields() -> list[str]:
    """The top-level recipe fields a keyword override may set (augment.recipe.Recipe)."""
    from augment.recipe import Recipe

    return list(Recipe.model_fields)


def overrides_of(fields: Mapping[str, Any], deep: Optional[Mapping[str, Any]]) -> dict[str, Any]:
    """{FIELD: value} for load_recipe: keyword overrides of top-level fields, then `set=` paths (which win)."""
    from curate.strict_yaml import suggest

    known = recipe_fields()
    for name in fields:
        if name not in known:
            raise BadInput(f"augment.run: {name!r} is neither a recipe field nor a run option"
                           f"{suggest(name, [*known, *_RUN_OPTIONS])}; set nested fields with "
                           "set={'pipeline[0].Gain.gain_db': [1, 2]}")
    if isinstance(deep, (list, tuple)) and all(isinstance(t, str) for t in deep):
        from augment.overrides import parse_override

        deep = dict(parse_override(text) for text in deep)   # the CLI's --set FIELD=VALUE texts
    if deep is not None and not isinstance(deep, Mapping):
        raise BadInput(f"augment.run: set= expects a mapping {{FIELD: value}} or a list of 'FIELD=VALUE' texts, got "
                       f"{type(deep).__name__}")
    for path in deep or {}:
        if not isinstance(path, str) or not path.strip():
            raise BadInput(f"augment.run: set= keys are field paths like 'pipeline[0].Gain.gain_db', got {path!r}")
    return {**fields, **(deep or {})}


def _engine(executor, workers: Optional[int], ray_address: Optional[str]):
    from augment.run.execute import make_executor

    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise BadInput(f"augment.run: workers must be a positive integer, got {workers!r}")
    if executor is None or isinstance(executor, str):
        return make_executor(executor or "local", workers, ray_address)
    if not callable(getattr(executor, "map", None)):
        raise BadInput(f"augment.run: executor must be 'local', 'ray' or an executor with map(), got "
                       f"{type(executor).__name__}")
    return executor


def _call_text(recipe, options: Mapping[str, Any]) -> str:
    """How the run was asked for, recorded as the version's command (like the CLI's command line)."""
    args = [repr(os.fspath(recipe))] + [f"{k}={v!r}" for k, v in options.items() if v is not None and v is not False]
    return f"augment.run({', '.join(args)})"


def run(recipe: str | os.PathLike, *, seed: Optional[int] = None, output: Optional[str | os.PathLike] = None,
        workers: Optional[int] = None, executor: Any = None, ray_address: Optional[str] = None,
        force: bool = False, dry_run: bool = False,
        set: Optional[Mapping[str, Any] | Sequence[str]] = None,  # noqa: A002 - the documented keyword
        progress: Optional[Callable] = None, command: Optional[str] = None,
        on_plan: Optional[Callable[[Any], Any]] = None, **fields: Any) -> RunOutcome:
    """Run the recipe at `recipe` (a YAML path) through the spine and return what happened.

    Keyword `fields` override top-level recipe fields (`budget=20`, `per_source=2`, `target={"tags": [...]}`);
    `set={"pipeline[0].Gain.gain_db": [1, 2]}` overrides any field by its path (the sweep syntax; wins over a
    keyword; a list of 'FIELD=VALUE' texts, as `--set` takes them, works too). `seed` replaces the recipe's seed,
    `output` the dataset written to. `workers` (processes of the local pool), `executor` ('local', 'ray' or an
    executor object) and `ray_address` choose where items are made; `force` commits past a failing gate (recorded
    as forced); `dry_run` plans and writes nothing. `progress`, when
    given, wraps long iterables (as the CLI's progress bar does); `on_plan(plan)`, when given, is called as soon as
    the plan is made, before the long work; `command` is what version.json records as the command (default: this
    call, e.g. "augment.run('r.yaml', budget=6)")."""
    from augment.recipe import load_recipe
    from augment.run import run_recipe

    if not isinstance(recipe, (str, os.PathLike)):
        raise BadInput(f"augment.run: recipe must be the path of a recipe YAML, got {type(recipe).__name__}")
    overrides = overrides_of(fields, set)
    engine = _engine(executor, workers, ray_address)
    loaded = load_recipe(recipe, seed=seed, overrides=overrides or None)
    if command is None:
        command = _call_text(recipe, {"seed": seed, "output": os.fspath(output) if output is not None else None,
                                      "force": force, "dry_run": dry_run, "workers": workers,
                                      "set": set or None, **fields})
    result = run_recipe(loaded, output=os.fspath(output) if output is not None else None, executor=engine,
                        dry_run=dry_run, force=force, progress=progress, command=command, on_plan=on_plan)
    return outcome_of(result)


def outcome_of(result) -> RunOutcome:
    """The public form of the spine's result (augment.run.RunResult)."""
    plan = result.plan
    version = result.version
    counts = forced = None
    if result.status == "committed":
        counts = version.info.get("counts")
        forced = bool((version.info.get("gate") or {}).get("forced"))
    elif result.status == "rejected" and result.rejected_dir is not None:
        record = result.rejected_dir / "version.json"
        if record.is_file():
            counts = json.loads(record.read_text(encoding="utf-8")).get("counts")
    elif result.status == "up-to-date" and version is not None:
        counts = version.info.get("counts")
    new_items = len(plan.tasks) if result.status in ("committed", "dry-run") else 0
    return RunOutcome(result.status, plan, new_items, gate=result.gate, version=version,
                      rejected_dir=result.rejected_dir, evaluation=result.evaluation, counts=counts,
                      forced=bool(forced))
