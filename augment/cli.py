"""`augment`: run recipes and list transforms. Exit codes: 0 ok, 1 a gate failed, 2 bad input or usage."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from curate.console import run_app

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Generate targeted training data: transforms and recipes.")


def _print_version(value: bool) -> None:
    if value:
        from curate.store import package_version

        print(f"rubbersheet {package_version()}")
        raise typer.Exit(0)


@app.callback()
def root(version: Optional[bool] = typer.Option(None, "--version", callback=_print_version, is_eager=True,
                                                help="Print the rubbersheet version and exit.")) -> None:
    """Generate targeted training data: transforms and recipes."""


@app.command()
def run(recipe: Path = typer.Argument(..., help="Recipe YAML (see recipes/)."),
        to: Optional[str] = typer.Option(None, "--to", help="Dataset to write to (default: the recipe's output, "
                                         "else its dataset)."),
        out: Optional[str] = typer.Option(None, "--out", hidden=True, help="Deprecated: --to."),
        workers: Optional[int] = typer.Option(None, "--workers", min=1, help="Worker processes (default: all cores)."),
        executor: str = typer.Option("local", "--executor", help="local (a process pool) or ray."),
        ray_address: Optional[str] = typer.Option(None, "--ray-address", help="With --executor ray: 'auto' or a "
                                                  "cluster address (default: a local Ray instance)."),
        seed: Optional[int] = typer.Option(None, "--seed", min=0, help="Override the recipe's seed."),
        overrides: list[str] = typer.Option([], "--set", metavar="FIELD=VALUE", help="Override a recipe field "
                                            "(repeatable), e.g. --set budget=0.5 --set "
                                            "pipeline[0].Gain.gain_db=[1,3]; VALUE is YAML."),
        dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan; write nothing."),
        force: bool = typer.Option(False, "--force", help="Write even if the gate fails (recorded as forced)."),
        sweep: Optional[str] = typer.Option(None, "--sweep", help="FIELD=V1,V2,...: build a candidate per value, "
                                            "evaluate each, commit one (e.g. budget=0.25,0.5,1.0)."),
        pick: str = typer.Option("best", "--pick", help="With --sweep: 'best' (largest weak-tag lift with no "
                                 "significant drop on an untargeted tag and a clean cost within --max-clean-cost) or "
                                 "one of the swept values."),
        max_clean_cost: float = typer.Option(1.0, "--max-clean-cost", min=0.0, help="With --sweep: the most "
                                             "points of accuracy the picked candidate may lose on its worst "
                                             "untargeted tag."),
        mlflow: bool = typer.Option(False, "--mlflow", help="Log the new version as an MLflow run (extra mlflow)."),
        mlflow_uri: str = typer.Option("./mlruns", "--mlflow-uri", help="MLflow tracking URI or folder."),
        as_json: bool = typer.Option(False, "--json", help="Print the result as JSON on stdout (version, counts, "
                                     "gate, evaluation, report path); the progress lines go to stderr.")) -> None:
    """Run a recipe: target weak tags, transform, gate, write a new version (exit 1 if the gate refuses it)."""
    import shlex

    from augment.api import run as run_api   # the CLI is a thin layer over augment.run(...)
    from augment.run.execute import make_executor
    from curate.cli_checks import print_gate
    from curate.console import EXIT_FAILED, interactive, progress
    from rich.console import Console

    console = Console(highlight=False, soft_wrap=True, stderr=as_json)
    out = to or out
    engine = make_executor(executor, workers, ray_address)
    if mlflow:
        from curate.tracking import require_mlflow

        require_mlflow(mlflow_uri)  # fail before the work if MLflow is missing
    with Heartbeat(console, enabled=not interactive()) as beat:
        tracker = beat if beat.enabled else progress

        def on_plan(plan) -> None:
            print_plan(plan, console)
            beat.start()   # the plan line first, then the clock

        if sweep is not None:
            beat.start()
            try:
                version = _run_sweep(recipe, sweep, pick, out, engine, seed, dry_run, force, console, max_clean_cost,
                                     overrides, tracker)
            except typer.Exit:
                _emit_sweep(as_json, None)
                raise
            _log(mlflow, version, mlflow_uri, console)
            _emit_sweep(as_json, version)
            return
        result = run_api(recipe, seed=seed, output=out, executor=engine, dry_run=dry_run, force=force,
                         set=overrides or None, progress=tracker, on_plan=on_plan,
                         command=shlex.join(["augment", "run", *sys.argv[2:]]) if len(sys.argv) > 1 else
                         shlex.join(["augment", "run", str(recipe)]))
    print_executor(engine, console)
    if result.status == "dry-run":
        console.print(f"dry run: {len(result.plan.tasks)} item(s) would be generated; nothing written")
        _emit(as_json, result)
        return
    if result.status == "up-to-date":
        where = result.version.ref if result.version is not None else "the dataset"
        console.print(f"{where}: up to date, nothing new to generate; nothing written", markup=False)
        _emit(as_json, result)
        return
    print_gate(result.gate, console)
    if result.evaluation:
        from curate.checks.evaluation import describe, display_order

        ev = result.evaluation
        unit = f"{ev.get('units')} {ev.get('unit')}s" if ev.get("unit") else "items"
        console.print(f"evaluation ({ev['model']}, {ev['split']}): paired, on the same items; 95 % interval by "
                      f"bootstrap over {unit}, verdict by McNemar's exact test; worst untargeted tag first",
                      markup=False)
        for row in display_order(ev):
            flag = "  <- significant drop" if row.get("mcnemar_p") is not None and row["mcnemar_p"] < 0.05 and \
                row["after"] < row["before"] else ""
            console.print(f"evaluation ({ev['model']}, {ev['split']}) {describe(row, ev['split'])}{flag}",
                          markup=False)
    if result.status == "rejected":
        console.print(f"nothing written; the gate's findings are in {result.rejected_dir}", markup=False)
        console.print(f"report: {result.rejected_dir / 'report.html'}", markup=False)
        _emit(as_json, result)
        raise typer.Exit(EXIT_FAILED)
    version = result.version
    forced = " (FORCED past a failing gate)" if version.info["gate"]["forced"] else ""
    console.print(f"{version.ref}: {len(result.plan.tasks)} new item(s), {version.info['counts']['items']} in all"
                  f"{forced}; fingerprint {version.info['fingerprint'][:16]}", markup=False)
    _log(mlflow, version, mlflow_uri, console)
    console.print(f"report: {version.path / 'report.html'}", markup=False)
    _emit(as_json, result)


def print_plan(plan, console) -> None:
    """The plan lines, printed as soon as the plan is made (before the long work)."""
    for tag, row in plan.per_tag.items():
        console.print(f"plan {tag}: {row.sources} source(s) x {row.per_source} (budget {row.budget or 'unlimited'}) "
                      f"-> {row.planned} new item(s)", markup=False)
    if plan.existing:
        console.print(f"{plan.existing} planned item(s) already in the dataset (same pipeline, seed, source, label "
                      "and tags) or rejected by a review: not made again", markup=False)
    if plan.previous:
        action = "kept beside the new ones (previous: keep)" if plan.keep_previous else \
            "replaced (previous: replace)"
        console.print(f"{len(plan.previous)} item(s) this recipe made before that the plan no longer makes (edited "
                      f"pipeline, seed, labels, budget or sources): {action}", markup=False)


def print_executor(engine, console) -> None:
    """Where a Ray run made its items: how many nodes, and whether they shared the driver's storage."""
    if getattr(engine, "name", None) != "ray" or getattr(engine, "shared", None) is None:
        return
    how = ("shared storage (the workers read the sources and wrote the objects in place)" if engine.shared else
           "no shared storage (the driver shipped the sources and file assets through Ray's object store and stored "
           "the results)")
    console.print(f"ray: {len(engine.nodes)} node(s), {how}", markup=False)


PROGRESS_ENV = "RUBBERSHEET_PROGRESS_S"


class Heartbeat:
    """Progress without a terminal (CI logs, files): a plain line at least every 30 s (RUBBERSHEET_PROGRESS_S)
    from the plan line on while the run works, e.g. `progress: augment speech: 1200/50000 items, 41.0/s, about 19
    min left (30 s elapsed)`, and a closing line for a step that printed any. Quiet for work shorter than the
    interval. It is the `progress` callable of the spine; `start()` starts the clock, leaving the context stops it."""

    def __init__(self, console, interval: float | None = None, enabled: bool = True):
        import os
        import threading

        from curate.exceptions import BadInput

        text = os.environ.get(PROGRESS_ENV, "30") if interval is None else str(interval)
        try:
            self.interval = float(text)
        except ValueError:
            raise BadInput(f"{PROGRESS_ENV}={text!r}: expected a number of seconds") from None
        if not self.interval > 0:
            raise BadInput(f"{PROGRESS_ENV}={text!r}: expected a number of seconds above 0")
        self.console, self.enabled = console, enabled
        self.step: list | None = None        # [description, done, total, started, lines printed]
        self.last = "starting"
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._beat, name="augment-progress", daemon=True)

    def __enter__(self) -> "Heartbeat":
        return self

    def start(self) -> None:
        """Start the clock (once; nothing happens when disabled, e.g. on a terminal, where Rich draws a bar)."""
        import time

        if self.enabled and not self._thread.is_alive() and not self._stop.is_set():
            self.started = time.monotonic()
            self._thread.start()

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def __call__(self, items, description: str, total: int | None = None):
        from collections.abc import Sized

        total = total if total is not None else (len(items) if isinstance(items, Sized) else None)
        return self._track(items, description, total)

    def _track(self, items, description, total):
        import time

        step = [description, 0, total, time.monotonic(), 0]
        with self._lock:
            self.step = step
        try:
            for item in items:
                yield item
                step[1] += 1
        finally:
            with self._lock:
                if step[4]:
                    self._say(f"{description}: {step[1]}{'/' + str(total) if total else ''} done in "
                              f"{_duration(time.monotonic() - step[3])}")
                self.last = f"{description} ({step[1]}{'/' + str(total) if total else ''})"
                if self.step is step:
                    self.step = None

    def _beat(self) -> None:
        import time

        while not self._stop.wait(self.interval):
            with self._lock:
                elapsed = _duration(time.monotonic() - self.started)
                step = self.step
                if step is None:
                    self._say(f"working, {elapsed} elapsed (last step: {self.last})")
                    continue
                description, done, total, started, _ = step
                rate = done / max(time.monotonic() - started, 1e-9)
                left = f", about {_duration((total - done) / rate)} left" if total and rate > 0 else ""
                self._say(f"{description}: {done}{'/' + str(total) if total else ''} items, {rate:.1f}/s{left} "
                          f"({elapsed} elapsed)")
                step[4] += 1

    def _say(self, text: str) -> None:
        self.console.print(f"progress: {text}", markup=False)
        self.console.file.flush()


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def _emit(enabled: bool, result) -> None:
    """`augment run --json`: the run's result as one JSON document on stdout."""
    if not enabled:
        return
    from curate.console import print_json

    version, plan = result.version, result.plan
    info = version.info if version is not None and result.status == "committed" else None
    report = (result.rejected_dir / "report.html" if result.status == "rejected" and result.rejected_dir else
              version.path / "report.html" if info is not None else None)
    print_json({
        "status": result.status,
        "version": version.ref if version is not None else None,
        "fingerprint": info["fingerprint"] if info else None,
        "counts": {"new": len(plan.tasks), "existing": plan.existing, "previous": len(plan.previous),
                   "items": info["counts"]["items"] if info else None, **({"dataset": info["counts"]} if info else {})},
        "plan": {tag: {"sources": row.sources, "per_source": row.per_source, "budget": row.budget,
                       "planned": row.planned} for tag, row in plan.per_tag.items()},
        "gate": result.gate.to_dict() if result.gate is not None else None,
        "forced": bool(info["gate"].get("forced")) if info and info.get("gate") else False,
        "evaluation": result.evaluation,
        "report": str(report) if report is not None else None,
        "rejected_dir": str(result.rejected_dir) if result.status == "rejected" and result.rejected_dir else None,
    })


def _emit_sweep(enabled: bool, version) -> None:
    """`augment run --sweep ... --json`: the committed candidate and the sweep record of its version.json."""
    if not enabled:
        return
    from curate.console import print_json

    info = version.info if version is not None else {}
    print_json({"status": "committed" if version is not None else "not-committed",
                "version": version.ref if version is not None else None,
                "fingerprint": info.get("fingerprint"), "counts": info.get("counts"), "sweep": info.get("sweep"),
                "gate": info.get("gate"), "report": str(version.path / "report.html") if version is not None else None})


def _log(enabled: bool, version, uri: str, console) -> None:
    if enabled and version is not None:
        from curate.tracking import log_version

        console.print(f"MLflow run {log_version(version, uri)} logged to {uri}", markup=False)


def _run_sweep(recipe, sweep, pick, out, executor, seed, dry_run, force, console, max_clean_cost,
               overrides=None, progress=None) -> None:
    from augment.run import connected
    from augment.sweep import run_sweep
    from curate.console import EXIT_FAILED
    from curate.exceptions import BadInput

    if dry_run or force:
        raise BadInput("--sweep cannot be combined with --dry-run or --force")
    with connected(executor):   # a cluster that cannot be reached fails before anything is written
        result, record = run_sweep(recipe, sweep, pick, out, executor, seed, progress,
                                   max_clean_cost=max_clean_cost, overrides=overrides)
    if result.status == "up-to-date" and record["picked"] is None:
        console.print(f"sweep of {record['field']}: every candidate is already in the dataset; nothing written",
                      markup=False)
        return None
    for line in sweep_table(record):
        console.print(line, markup=False)
    if result.status == "rejected":
        console.print(f"no candidate qualifies; nothing written ({result.rejected_dir})", markup=False)
        console.print(f"report: {result.rejected_dir / 'report.html'}", markup=False)
        raise typer.Exit(EXIT_FAILED)
    if result.status == "up-to-date":
        console.print(f"the picked candidate {record['field']}={record['picked']:g} adds nothing; nothing written",
                      markup=False)
        return None
    console.print(f"{result.version.ref}: committed the candidate {record['field']}={record['picked']:g}; the sweep "
                  "is recorded in its version.json", markup=False)
    console.print(f"report: {result.version.path / 'report.html'}", markup=False)
    return result.version


def sweep_table(record) -> list[str]:
    """Plain lines (never cut when piped): per candidate, the lift, then every tag's paired difference in points
    (untargeted tags first, '*' = McNemar p < 0.05), then the verdict."""
    candidates = record["candidates"]
    tags: list[str] = []
    for c in candidates:
        tags += [t for t in c.get("tags", {}) if t not in tags]
    targeted = {t for c in candidates for t, r in c.get("tags", {}).items() if r["targeted"]}
    tags = sorted(tags, key=lambda t: (t == "all", t in targeted, t))
    head = ["value", "items", "gate", "lift (pts) [95 %]", *[f"{t}{' (target)' if t in targeted else ''}"
                                                              for t in tags], "pick"]
    rows = []
    for c in candidates:
        lift = c["lift"]
        cells = [f"{c['value']:g}", str(c["items"]), "passed" if c["gate_passed"] else "FAILED",
                 f"{100 * lift['value']:+.1f} [{100 * lift['low']:+.1f}, {100 * lift['high']:+.1f}]"]
        for t in tags:
            r = c.get("tags", {}).get(t)
            cells.append("-" if r is None or r["difference"] is None else
                         f"{100 * r['difference']:+.1f}{'*' if r['p'] is not None and r['p'] < 0.05 else ''}")
        picked = c["value"] == record["picked"]
        cells.append("<- picked" if picked else ("eligible" if c.get("eligible") else
                                                   "passed over: " + "; ".join(c.get("passed_over", []))))
        rows.append(cells)
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head) - 1)]
    out = [f"sweep of {record['field']} (max clean cost {record.get('max_clean_cost', 1.0):g} pts; tag columns: "
           "paired difference after - before in points, * = McNemar p < 0.05):"]
    for r in [head, *rows]:
        out.append("  " + "  ".join(cell.rjust(w) for cell, w in zip(r[:-1], widths)) + "  " + r[-1])
    return out


@app.command()
def transforms(media: Optional[str] = typer.Option(None, "--media", help="Only audio, image or any."),
               as_json: bool = typer.Option(False, "--json", help="Print the catalogue as JSON.")) -> None:
    """List every transform with its parameters and defaults (the names recipes use)."""
    import json

    from augment.core import catalogue

    if media is not None and media not in ("audio", "image", "any"):
        raise typer.BadParameter(f"{media!r} is not one of audio, image, any", param_hint="--media")
    rows = [r for r in catalogue() if media is None or r["media"] == media]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    from rich.table import Table

    table = Table(title="transforms", title_justify="left", show_lines=True)
    for column in ("name", "media", "parameters (default)", "what it does"):
        table.add_column(column)
    for row in rows:
        params = "\n".join(p["name"] + (" (required)" if p["required"] else f" = {json.dumps(p['default'])}")
                           for p in row["params"])
        table.add_row(row["name"], row["media"], params, row["doc"])
    from curate.console import make_console

    make_console().print(table)


recipe_app = typer.Typer(add_completion=False, no_args_is_help=True, help="Inspect recipes: the resolved recipe and "
                         "the JSON schema editors complete them with.")
app.add_typer(recipe_app, name="recipe")


@recipe_app.command("show")
def recipe_show(recipe: Path = typer.Argument(..., help="Recipe YAML."),
                overrides: list[str] = typer.Option([], "--set", metavar="FIELD=VALUE", help="Override a recipe "
                                                    "field (repeatable), as with `augment run`."),
                seed: Optional[int] = typer.Option(None, "--seed", min=0, help="Override the recipe's seed."),
                as_json: bool = typer.Option(False, "--json", help="Print it as JSON instead: {recipe, overrides}.")) \
        -> None:
    """Print the recipe as it would run (validated, overrides applied) as YAML."""
    import json

    import yaml

    from augment.recipe import load_recipe

    loaded = load_recipe(recipe, seed=seed, overrides=overrides)
    if as_json:
        print(json.dumps({"recipe": loaded.resolved(), "overrides": list(loaded.overrides)}, indent=2))
        return
    for text in loaded.overrides:
        print(f"# --set {text}")
    print(yaml.safe_dump(loaded.resolved(), sort_keys=False), end="")


@recipe_app.command("schema")
def recipe_schema() -> None:
    """Print the JSON schema of recipes (every transform's parameters included) for editors:
    `augment recipe schema > recipe.schema.json`, then `# yaml-language-server: $schema=recipe.schema.json`."""
    import json

    from augment.schema import recipe_schema as schema

    print(json.dumps(schema(), indent=2))


def main(argv: list[str] | None = None) -> int:
    return run_app(app, "augment", argv)


if __name__ == "__main__":
    sys.exit(main())
