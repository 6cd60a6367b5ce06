"""Recipes: YAML that says which weak tags to target, with which transforms, from which sources, how much, and how
to gate the result. Validated with pydantic; every error names the file, the line and the field:

    recipes/x.yaml:12: pipeline[1].AddBackgroundNoise.snr_db: expected [low, high] with low <= high, got [20, 5]

    name: speech_cafe_noise
    dataset: sample_media/speech      # a dataset reference, or a media folder with labels.csv (imported first)
    output: datasets/speech           # default: the dataset itself
    seed: 7
    target: {tags: [cafe_noise]}      # or {from_errors: errors.json, top: 2} (budget split by potential gain)
    pipeline: [{AddBackgroundNoise: {noise: sample_media/noise/cafe, snr_db: [0, 10]}}]
    # or pipelines: {cafe_noise: [...], car_noise: [...]}   (one per target tag), where a tag may also say which
    # sources it takes and how its items' tags change (merged over sources.where / added to the recipe's lists):
    #   pipelines: {car_noise: {steps: [...], where: {tags_any: [clean]}, remove_tags: [clean, low_bandwidth]}}
    sources: {where: {split: train, tags_any: [clean]}}
    per_source: 1                     # copies per source item
    budget: 60                        # most new items in all (split across targets), or {tag: items}
    add_tags: [augmented]             # tags = source tags - remove_tags + target tag + add_tags
    remove_tags: [clean]
    set_label: {scratch: defect}      # when the transform changes the class (default: the source's label)
    curation: {...}                   # the gate config (curate.checks.gate)
    evaluate: {baseline: {model: logreg}}   # or {command: "python train.py --train {train_dir} --dev {dev_dir}
                                      # --out {predictions}"} or {python: "package.module:function"}
    previous: replace                 # items this recipe made before with another pipeline/seed/label rule:
                                      # replace (drop them, the default) or keep (the new ones sit beside them)
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, ValidationError, field_validator

from curate.exceptions import BadInput

MAX_BUDGET = 10_000_000   # new items per recipe run: beyond it a typo, not a plan


class Target(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tags: Optional[list[str]] = None
    from_errors: Optional[str] = None
    top: int = Field(1, ge=1)

    @field_validator("tags")
    @classmethod
    def _non_empty(cls, value):
        if value is not None and (not value or any(not t or ";" in t for t in value)):
            raise ValueError("expected a non-empty list of tags (no ';')")
        return value

    def model_post_init(self, _context: Any) -> None:
        if (self.tags is None) == (self.from_errors is None):
            raise ValueError("give either tags or from_errors")


class Sources(BaseModel):
    model_config = ConfigDict(extra="forbid")
    where: dict[str, Any] = {}

    @field_validator("where")
    @classmethod
    def _train_only(cls, value):
        return check_where(value)


def check_where(value: dict[str, Any]) -> dict[str, Any]:
    """`where` filters: a column (or label, origin) -> a value or a list of values; tags_any/tags_none -> a list of
    tags; split may only be train."""
    split = value.get("split")
    if split is not None and split != "train" and split != ["train"]:
        raise ValueError("only train items may be sources (split must be train)")
    for key, wanted in value.items():
        if key in ("tags_any", "tags_none"):
            if not isinstance(wanted, list) or not all(isinstance(t, str) and t for t in wanted):
                raise ValueError(f"{key}: expected a list of tags, got {wanted!r}")
            continue
        values = wanted if isinstance(wanted, list) else [wanted]
        if not values or not all(isinstance(v, (str, int, float, bool)) for v in values):
            raise ValueError(f"{key}: expected a value or a list of values, got {wanted!r}")
    return value


def check_tag_list(value: list[str]) -> list[str]:
    bad = [t for t in value if not t.strip() or ";" in t or t != t.strip()]
    if bad:
        raise ValueError(f"expected tags without ';' or surrounding spaces, got {bad[0]!r}")
    return value


class TargetPipeline(BaseModel):
    """One target tag's pipeline with its own source filter and tag rules (the mapping form of a pipelines entry)."""
    model_config = ConfigDict(extra="forbid")
    steps: list[dict[str, Any]]
    where: dict[str, Any] = {}
    add_tags: list[str] = []
    remove_tags: list[str] = []

    @field_validator("where")
    @classmethod
    def _train_only(cls, value):
        return check_where(value)

    @field_validator("add_tags", "remove_tags")
    @classmethod
    def _tags(cls, value):
        return check_tag_list(value)


@dataclass(frozen=True)
class TargetRule:
    """What a target tag's new items are made from and how their tags change (recipe-wide rules included)."""
    where: dict[str, Any]
    add_tags: tuple[str, ...]
    remove_tags: tuple[str, ...]


class Baseline(BaseModel):
    """The built-in baseline (curate.baseline): cheap features + a scikit-learn classifier."""
    model_config = ConfigDict(extra="forbid")
    model: Literal["logreg", "knn"] = "logreg"
    features: str = "auto"            # auto (chosen by group-aware CV on the source) or a set of curate.features
    seed: Optional[StrictInt] = Field(None, ge=0, le=2 ** 32 - 1)   # default: the recipe's seed

    @field_validator("features")
    @classmethod
    def _known(cls, value):
        from curate.features import BASELINE_CANDIDATES

        names = sorted({n for sets in BASELINE_CANDIDATES.values() for n in sets})
        if value != "auto" and value not in names:
            raise ValueError(f"unknown feature set {value!r} (auto, {', '.join(names)})")
        return value


class Evaluate(BaseModel):
    """Which model scores the change (exactly one of baseline, command, python; see augment.run.evaluate)."""
    model_config = ConfigDict(extra="forbid")
    baseline: Optional[Baseline] = None
    command: Optional[str] = None     # "python train.py --train {train_dir} --dev {dev_dir} --out {predictions}"
    python: Optional[str] = Field(None, pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")   # "package.module:function"
    split: str = Field("dev", min_length=1)   # the split both models predict (any split but train)
    resamples: StrictInt = Field(2000, ge=100, le=100_000)   # paired-bootstrap resamples of the interval
    timeout_s: Optional[Union[StrictInt, StrictFloat]] = Field(None, gt=0, le=7 * 86400)  # command only

    @field_validator("command")
    @classmethod
    def _placeholders(cls, value):
        from augment.run.evaluate import check_command

        return check_command(value)

    def model_post_init(self, _context: Any) -> None:
        given = [k for k in ("baseline", "command", "python") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of baseline, command or python"
                             + (f" (got {', '.join(given)})" if given else ""))
        if self.split == "train":
            raise ValueError("split: the scored split cannot be train (the models are trained on it)")
        if self.timeout_s is not None and given != ["command"]:
            raise ValueError("timeout_s applies to a command only")

    @property
    def kind(self) -> str:
        return next(k for k in ("baseline", "command", "python") if getattr(self, k) is not None)


class Recipe(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=100)
    dataset: str
    output: Optional[str] = None
    seed: StrictInt = Field(0, ge=0, le=2 ** 32 - 1)   # numpy and scikit-learn take seeds below 2**32
    target: Target
    pipeline: Optional[list[dict[str, Any]]] = None
    pipelines: Optional[dict[str, Union[list[dict[str, Any]], TargetPipeline]]] = None
    sources: Sources = Sources()
    per_source: StrictInt = Field(1, ge=1, le=1000)
    budget: Optional[Union[StrictInt, dict[str, StrictInt]]] = None
    add_tags: list[str] = []
    remove_tags: list[str] = []       # source tags the new items must not inherit (e.g. clean, once noise is added)
    set_label: Optional[Union[str, dict[str, str]]] = None   # new items' label (all, or per target tag)
    curation: dict[str, Any] = {}
    evaluate: Optional[Union[Evaluate, str]] = None
    previous: Literal["replace", "keep"] = "replace"   # this recipe's earlier items that an edit no longer makes

    @field_validator("add_tags", "remove_tags")
    @classmethod
    def _tags(cls, value):
        return check_tag_list(value)

    @field_validator("budget")
    @classmethod
    def _positive_budget(cls, value):
        budgets = value.values() if isinstance(value, dict) else [value]
        if any(b is not None and (isinstance(b, bool) or not 1 <= b <= MAX_BUDGET) for b in budgets):
            raise ValueError(f"expected a positive number of items (at most {MAX_BUDGET:,}), or {{tag: number}}")
        return value

    def model_post_init(self, _context: Any) -> None:
        if (self.pipeline is None) == (self.pipelines is None):
            raise ValueError("give either pipeline (for every target) or pipelines (one per target tag)")
        labels = [self.set_label] if isinstance(self.set_label, str) else list((self.set_label or {}).values())
        if any(not label.strip() for label in labels):
            raise ValueError("set_label: expected a non-empty label or {tag: non-empty label}")
        if isinstance(self.evaluate, str):
            if self.evaluate != "baseline":
                raise ValueError("evaluate: expected 'baseline', {baseline: {model: ...}}, {command: ...} or "
                                 "{python: module:function}")
            self.evaluate = Evaluate(baseline=Baseline())


class LoadedRecipe:
    """A validated recipe with its source text, its file, the overrides applied to it ('FIELD=VALUE', see
    augment.overrides) and its transforms built (one pipeline per tag)."""

    def __init__(self, recipe: Recipe, text: str, path: Path, pipelines: dict[str, Any],
                 budgets: dict[str, int | None], overrides: tuple[str, ...] = ()):
        self.recipe, self.text, self.path = recipe, text, path
        self.pipelines, self.budgets, self.overrides = pipelines, budgets, overrides

    def resolved(self) -> dict[str, Any]:
        """The recipe as it runs (file + overrides), as plain data in the recipe's own keys."""
        return self.recipe.model_dump(mode="json", exclude_unset=True)

    def at(self, *loc) -> str:
        """'FILE:LINE:' of a place in the recipe (for errors found after validation, e.g. against the dataset)."""
        from curate.strict_yaml import parse

        return _where(self.path, _line(parse(self.text, self.path)[0], loc))

    def rule(self, tag: str) -> TargetRule:
        """The target tag's source filter (its own `where` merged over sources.where) and tag rules."""
        recipe = self.recipe
        entries = recipe.pipelines or {}
        entry = entries.get(tag, entries.get("*"))
        own = entry if isinstance(entry, TargetPipeline) else TargetPipeline(steps=[])
        return TargetRule({**recipe.sources.where, **own.where},
                          tuple(dict.fromkeys([*recipe.add_tags, *own.add_tags])),
                          tuple(dict.fromkeys([*recipe.remove_tags, *own.remove_tags])))

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


def _line(node, loc: tuple) -> int | None:
    from curate.strict_yaml import line

    return line(node, loc)


def _where(path: Path, line: int | None) -> str:
    return f"{path}:{line}:" if line else f"{path}:"


def _dotted(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def load_recipe(path: str | os.PathLike, seed: int | None = None, overrides=None) -> LoadedRecipe:
    """Read and validate a recipe. `overrides`: 'FIELD=VALUE' strings (`--set`) or {FIELD: value}, applied before
    validation (augment.overrides); `seed` overrides the seed last."""
    from augment.overrides import apply_overrides

    path, text, node, data = read_recipe(path)
    data, applied = apply_overrides(data, overrides)
    if seed is not None:
        data["seed"] = seed
    return validate_recipe(data, node, path, text, tuple(applied))


def read_recipe(path: str | os.PathLike, seed: int | None = None, overrides=None):
    """(path, text, YAML node tree, plain data) of a recipe file, before validation; `seed` and `overrides` (see
    load_recipe) applied to the data. Strict YAML (curate.strict_yaml): not UTF-8, duplicate keys, non-plain types
    and deep nesting are refused."""
    from augment.overrides import apply_overrides
    from curate.strict_yaml import read_text

    path = Path(path)
    text = read_text(path, "recipe")
    node, data = parse_recipe(text, path)
    data, _ = apply_overrides(data, overrides)
    if seed is not None:
        data["seed"] = seed
    return path, text, node, data


def parse_recipe(text: str, path: Path):
    """(YAML node tree for line numbers, plain data) of a recipe's text."""
    from curate.strict_yaml import parse

    node, data = parse(text, path)
    if not isinstance(data, dict):
        raise BadInput(f"{path}: a recipe is a mapping (name, dataset, target, pipeline, ...)")
    return node, data


def _known_keys(loc: tuple) -> list[str]:
    """The field names of the recipe model found at `loc` (for "did you mean")."""
    import typing

    def models(annotation):
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            return [annotation]
        return [m for arg in typing.get_args(annotation) for m in models(arg)]

    def values(annotation):  # what a dict or list holds
        origin = typing.get_origin(annotation)
        if origin in (dict, list):
            return typing.get_args(annotation)[-1]
        return typing.Union[tuple(values(a) for a in typing.get_args(annotation))] if typing.get_args(annotation) \
            else annotation

    current: Any = Recipe
    for part in loc:
        found = [m for m in models(current) if isinstance(part, str) and part in m.model_fields]
        current = found[0].model_fields[part].annotation if found else values(current)
    return sorted({name for m in models(current) for name in m.model_fields})


_UNION_BRANCHES = {"Evaluate", "TargetPipeline", "str", "int"}  # pydantic names the Union member in an error's loc


def validate_recipe(data: dict[str, Any], node, path: Path, text: str, overrides: tuple[str, ...] = ()) \
        -> LoadedRecipe:
    try:
        recipe = Recipe.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = tuple(p for p in error["loc"] if not (isinstance(p, str) and (p.startswith("function-") or "[" in p
                                                                           or p in _UNION_BRANCHES)))
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden" and loc:
            from curate.strict_yaml import suggest

            message = "unknown key" + suggest(loc[-1], _known_keys(loc[:-1]))
        field = _dotted(loc) or "recipe"
        raise BadInput(f"{_place(path, node, loc, overrides)} {field}: {message}") from None
    pipelines = _build_pipelines(recipe, node, path, overrides)
    budgets = _target_budgets(recipe, path, node)
    for tag in budgets:
        if tag not in pipelines and "*" not in pipelines:
            raise BadInput(f"{_where(path, _line(node, ('pipelines',)))} pipelines: no pipeline for target tag {tag!r}")
    if isinstance(recipe.set_label, dict):
        unknown = sorted(set(recipe.set_label) - set(budgets))
        if unknown:
            raise BadInput(f"{_where(path, _line(node, ('set_label', unknown[0])))} set_label.{unknown[0]}: not a "
                           f"target tag ({', '.join(budgets)})")
    return LoadedRecipe(recipe, text, path, pipelines, budgets, overrides)


def _place(path: Path, node, loc: tuple, overrides: tuple[str, ...]) -> str:
    """Where an error at `loc` comes from: the override that set it (or a field above it), else FILE:LINE."""
    from augment.overrides import field_path

    for text in reversed(overrides):
        field = text.partition("=")[0]
        if tuple(field_path(field))[:len(loc)] == loc[:len(field_path(field))]:
            return f"--set {text}:"
    return _where(path, _line(node, loc))


def _build_pipelines(recipe: Recipe, node, path: Path, overrides: tuple[str, ...] = ()) -> dict[str, Any]:
    from augment.core import Compose, ParameterError

    specs = {"*": ("pipeline", recipe.pipeline)} if recipe.pipeline is not None else \
        {tag: (("pipelines", tag, "steps"), steps.steps) if isinstance(steps, TargetPipeline) else
         (("pipelines", tag), steps) for tag, steps in recipe.pipelines.items()}
    built = {}
    for tag, (base, steps) in specs.items():
        base = base if isinstance(base, tuple) else (base,)
        if not steps:
            raise BadInput(f"{_where(path, _line(node, base))} {_dotted(base)}: a pipeline needs at least one step")
        try:
            built[tag] = Compose(steps, seed=recipe.seed)
            built[tag].pipeline_media()  # audio and image steps in one pipeline: refused here, not once per item
        except ParameterError as exc:
            # exc.loc is a place inside the Compose ("transforms", step, Name, param, ...), where the recipe's list of
            # steps stands for "transforms". Name the deepest part the YAML has; a parameter left at its default
            # (e.g. the band a rate conflicts with) is named in the message instead.
            loc, data = list(base), steps
            rest = list(exc.loc[1:] if exc.loc[:1] == ("transforms",) else exc.loc)
            while rest and ((isinstance(data, dict) and rest[0] in data) or
                            (isinstance(data, list) and isinstance(rest[0], int) and rest[0] < len(data))):
                data = data[rest[0]]
                loc.append(rest.pop(0))
            message = f"{_dotted(tuple(rest))}: {exc.message}" if rest else exc.message
            raise BadInput(f"{_place(path, node, tuple(loc), overrides)} {_dotted(tuple(loc))}: {message}") from None
    return built


def _target_budgets(recipe: Recipe, path: Path, node) -> dict[str, int | None]:
    """{tag: budget or None (unlimited)}; from_errors splits the budget in proportion to potential gain."""
    target = recipe.target
    if target.tags is not None:
        tags = target.tags
        weights = {t: 1.0 for t in tags}
    else:
        tags, weights = _tags_from_errors(Path(target.from_errors), target.top, path, node)
    if recipe.budget is None:
        return {t: None for t in tags}
    if isinstance(recipe.budget, dict):
        unknown = sorted(set(recipe.budget) - set(tags))
        if unknown:
            raise BadInput(f"{_where(path, _line(node, ('budget', unknown[0])))} budget.{unknown[0]}: not a target tag "
                           f"({', '.join(tags)})")
        return {t: recipe.budget.get(t) for t in tags}
    total = sum(weights.values())
    shares = {t: recipe.budget * weights[t] / total for t in tags}
    budgets = {t: int(shares[t]) for t in tags}
    for t in sorted(tags, key=lambda t: -(shares[t] - budgets[t]))[: recipe.budget - sum(budgets.values())]:
        budgets[t] += 1  # largest remainders, so the budgets add up exactly
    return budgets


def _tags_from_errors(errors_path: Path, top: int, path: Path, node) -> tuple[list[str], dict[str, float]]:
    where = f"{_where(path, _line(node, ('target', 'from_errors')))} target.from_errors"
    if not errors_path.is_file():
        raise BadInput(f"{where}: {errors_path} does not exist (write it with `curate errors ... --json`)")
    try:
        report = json.loads(errors_path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise BadInput(f"{where}: {errors_path} is not JSON ({exc})") from None
    if not isinstance(report, dict) or report.get("schema") != "rubbersheet.errors" or \
            report.get("schema_version") != 1:
        raise BadInput(f"{where}: {errors_path} is not a `curate errors --json` file (schema rubbersheet.errors, "
                       "version 1)")
    ranked = [r for r in report.get("tags", []) if r.get("rank") and r.get("potential_gain", 0) > 0]
    ranked.sort(key=lambda r: r["rank"])
    chosen = ranked[:top]
    if not chosen:
        raise BadInput(f"{where}: {errors_path} has no tag with a positive potential gain")
    return [r["tag"] for r in chosen], {r["tag"]: float(r["potential_gain"]) for r in chosen}
