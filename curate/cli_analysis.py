"""`curate baseline`, `curate errors`, `curate audit`: what the model gets wrong, where, and what to fix first."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from curate.cli import JSON_HELP, make_console, app
from curate.console import print_json, progress, warn, write_json

JSON_OUT_HELP = "Also write the JSON to this file."


def _pct(value) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


@app.command()
def baseline(ref: str = typer.Argument(..., help="Dataset reference PATH[@vNNNN|@latest]."),
             model: str = typer.Option("logreg", "--model", help="logreg or knn."),
             to: Optional[Path] = typer.Option(None, "--to", help="Predictions CSV to write (default: "
                                               "baseline-<dataset>-<version>.csv here)."),
             out: Optional[Path] = typer.Option(None, "--out", hidden=True, help="Deprecated: --to."),
             seed: int = typer.Option(0, "--seed", help="Seed for folds and the model."),
             features: str = typer.Option("auto", "--features", help="auto (chosen by group-aware CV) or a feature "
                                          "set: audio logmel_stats, embedding; image pixels, gradients, embedding; "
                                          "'+' joins several."),
             mlflow: bool = typer.Option(False, "--mlflow", help="Log the baseline as an MLflow run (extra mlflow)."),
             mlflow_uri: str = typer.Option("./mlruns", "--mlflow-uri", help="MLflow tracking URI or folder."),
             as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """Quick out-of-sample baseline from cheap features; writes predictions for `curate errors`."""
    from curate.baseline import run_baseline, summary
    from curate.store import load_ref

    version = load_ref(ref)
    predictions = run_baseline(version, model=model, seed=seed, progress=progress, features=features)
    target = to or out or Path(f"baseline-{version.dataset.name}-{version.name}.csv")
    predictions.to_csv(target, index=False)
    figures = summary(predictions)
    if as_json:
        run_id = None
        if mlflow:
            from curate.tracking import log_baseline

            run_id = log_baseline(version, target, figures, model, seed, mlflow_uri)
        print_json({"version": version.ref, "model": model, "predictions": str(target), **figures,
                    "mlflow_run": run_id})
        return
    for name, cv in figures["selection"].items():
        mark = "  <- chosen" if name == figures["features"] and len(figures["selection"]) > 1 else ""
        print(f"features {name}: cross-validated accuracy {_pct(cv['accuracy'])} (95% {_pct(cv['low'])}-"
              f"{_pct(cv['high'])}, n={cv['n']}{_drawn(cv)}, {cv['folds']} group folds){mark}")
    splits = ", ".join(f"{k} {_pct(v)}" for k, v in figures["per_split"].items())
    print(f"{version.ref}: {model} baseline on {figures['features']} features ({figures['scheme']}): accuracy "
          f"{_pct(figures['accuracy'])} on {figures['n']} out-of-sample items ({splits}); predictions written to "
          f"{target}")
    if mlflow:
        from curate.tracking import log_baseline

        print(f"MLflow run {log_baseline(version, target, figures, model, seed, mlflow_uri)} logged to {mlflow_uri}")


def _drawn(cv: dict) -> str:
    """' drawn from N' when the choice was made on a sample of whole groups (see curate.baseline.SELECT_MAX)."""
    return f" drawn from {cv['of']}" if cv.get("of", cv["n"]) > cv["n"] else ""


@app.command()
def errors(predictions: Path = typer.Argument(..., help="Predictions CSV: id,prediction[,label][,tags][,human_label]"
                                             "[,p_*] (see curate.predictions)."),
           dataset: Optional[str] = typer.Option(None, "--dataset", help="Dataset reference to take tags from."),
           hlp: Optional[Path] = typer.Option(None, "--hlp", help="Human-level performance per tag (CSV tag,hlp "
                                              "or YAML)."),
           importance: Optional[Path] = typer.Option(None, "--importance", help="Weight per tag (CSV tag,importance "
                                                     "or YAML; default 1)."),
           as_json: bool = typer.Option(False, "--json", help=JSON_HELP + " It is what recipes read "
                                        "(from_errors)."),
           json_out: Optional[Path] = typer.Option(None, "--json-out", help="Write the analysis as JSON to this "
                                                   "file (what recipes read)."),
           top: int = typer.Option(0, "--top", min=0, help="Show only the top N tags (0: all).")) -> None:
    """Error analysis by tag: accuracy, HLP, gap, share of errors, potential gain, ranked; per-class metrics."""
    from rich.markup import escape
    from rich.table import Table

    from curate.errors import analyse, read_tag_values
    from curate.predictions import read_predictions, tag_lists
    from curate.store import load_ref

    version = load_ref(dataset) if dataset else None
    frame = read_predictions(predictions, version)
    if version is None and "tags" not in frame.columns:
        warn("curate", f"{predictions} has no tags column and no --dataset was given: every item is untagged, so "
             "no weak tag can be found (give --dataset DATASET to take the tags from it)")
    tags = tag_lists(frame)
    report = analyse(frame, tags, read_tag_values(hlp, "hlp") if hlp else None,
                     read_tag_values(importance, "importance") if importance else None, source=str(predictions))
    if json_out:
        write_json(json_out, report)
    if as_json:
        print_json(report)
        return
    console = make_console()
    o = report["overall"]
    console.print(f"{o['n']} items: accuracy {_pct(o['accuracy'])}, {o['errors']} errors, macro F1 "
                  f"{_pct(o['macro_f1'])}, weighted F1 {_pct(o['weighted_f1'])}")
    table = Table(title="by tag, ranked by potential gain = gap to HLP x share of data x importance",
                  title_justify="left")
    for column in ("rank", "tag", "n", "share", "accuracy", "HLP", "gap", "share of errors", "gain (pts)"):
        table.add_column(column, justify="left" if column == "tag" else "right")
    rows = report["tags"] if top == 0 else report["tags"][:top]
    for r in rows:
        hlp_text = _pct(r["hlp"]) + ("*" if r["hlp_source"] == "assumed" else "")
        table.add_row(str(r["rank"] or "-"), escape(r["tag"]), str(r["n"]), _pct(r["share_of_data"]), _pct(r["accuracy"]),
                      hlp_text, _pct(r["gap_to_hlp"]), _pct(r["share_of_errors"]), f"{100 * r['potential_gain']:.2f}")
    if any(r["hlp_source"] == "assumed" for r in rows):
        table.caption = "* no HLP given: 100 % assumed"
    console.print(table)
    classes = Table(title="per class", title_justify="left")
    for column in ("label", "precision", "recall", "F1", "support"):
        classes.add_column(column, justify="left" if column == "label" else "right")
    for r in report["per_class"]:
        classes.add_row(escape(r["label"]), _pct(r["precision"]), _pct(r["recall"]), _pct(r["f1"]), str(r["support"]))
    for name, avg in report["averages"].items():
        classes.add_row(f"({name} avg)", _pct(avg["precision"]), _pct(avg["recall"]), _pct(avg["f1"]), "")
    console.print(classes)
    if json_out:
        print(f"analysis written to {json_out}")


@app.command()
def audit(predictions: Path = typer.Argument(..., help="Predictions CSV: id,prediction[,label][,...] (see "
                                             "curate.predictions)."),
          by: str = typer.Option(..., "--by", help="Column(s) to slice by, comma-separated (prediction columns or "
                                 "dataset metadata; 'tags' splits per tag)."),
          dataset: Optional[str] = typer.Option(None, "--dataset", help="Dataset reference for metadata columns."),
          min_size: int = typer.Option(10, "--min-size", min=1, help="Slices smaller than this are not flagged."),
          as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
          json_out: Optional[Path] = typer.Option(None, "--json-out", help="Write the audit as JSON to this file.")
          ) -> None:
    """Accuracy per slice with Wilson 95 % intervals; flags slices significantly below overall accuracy."""
    from rich.markup import escape
    from rich.table import Table

    from curate.errors import audit as run_audit
    from curate.exceptions import BadInput
    from curate.predictions import read_predictions, tag_lists
    from curate.store import load_ref

    columns = [c.strip() for c in by.split(",") if c.strip()]
    version = load_ref(dataset) if dataset else None
    frame = read_predictions(predictions, version)
    if "tags" in columns:
        frame["tags"] = tag_lists(frame)
    if version is not None:
        meta = version.manifest.set_index("id")
        for column in columns:
            if column not in frame.columns and column in meta.columns:
                frame[column] = [meta.at[i, column] for i in frame["id"]]
    for column in columns:
        if column not in frame.columns:
            where = f" or {version.ref}" if version is not None else " (pass --dataset for metadata columns)"
            raise BadInput(f"--by: column {column!r} is not in {predictions}{where}")
    report = run_audit(frame, columns, min_size=min_size)
    if json_out:
        write_json(json_out, report)
    if as_json:
        print_json(report)
        return
    o = report["overall"]
    table = Table(title=f"accuracy by {', '.join(columns)} (overall {_pct(o['accuracy'])}, n={o['n']})",
                  title_justify="left")
    for column in (*columns, "n", "accuracy", "95% interval", "flag"):
        table.add_column(column, justify="right" if column in ("n", "accuracy") else "left")
    for s in report["slices"]:
        flag = "BELOW" if s["flagged"] else ("small" if s["small"] else "")
        table.add_row(*[escape(str(s["slice"][c])) for c in columns], str(s["n"]), _pct(s["accuracy"]),
                      f"{_pct(s['ci_low'])} - {_pct(s['ci_high'])}", flag)
    make_console().print(table)
    flagged = sum(s["flagged"] for s in report["slices"])
    print(f"{flagged} slice(s) significantly below overall accuracy")


@app.command()
def history(dataset: str = typer.Argument(..., help="Dataset directory, or URL (s3://bucket/prefix/name)."),
            as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """Lineage of versions: parent, recipe, seed, items added/removed, gate verdict, accuracy before -> after."""
    from rich.markup import escape
    from rich.table import Table

    from curate.history import history as lineage
    from curate.storage import location
    from curate.store import open_dataset

    ds = open_dataset(location(dataset))
    rows = lineage(ds)
    if as_json:
        print_json(rows)
        return
    table = Table(title=f"history of {escape(ds.name)}", title_justify="left", show_lines=True)
    for column in ("version", "parent", "made by", "seed", "+/-", "gate", "evaluation (dev accuracy, 95% CI)"):
        table.add_column(column)
    for r in rows:
        made = r["recipe"] or r["source"] or "-"
        evaluation = "\n".join(
            f"{tag}: {_pct(e['before'])} [{_pct(e['before_ci'][0])}-{_pct(e['before_ci'][1])}] -> {_pct(e['after'])} "
            f"[{_pct(e['after_ci'][0])}-{_pct(e['after_ci'][1])}] n={e['n']}"
            for tag, e in (r["evaluation"] or {}).items()) or "-"
        if r["sweep"]:
            evaluation += f"\nsweep: {len(r['sweep']['candidates'])} candidates, picked {r['sweep']['picked']}"
        table.add_row(r["version"], r["parent"] or "-", escape(made), str(r["seed"] if r["seed"] is not None else "-"),
                      f"+{r['added']}/-{r['removed']}", r["gate"] or "-", evaluation)
    make_console().print(table)
