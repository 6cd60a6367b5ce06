"""`curate metrics` (input metrics per slice) and `curate drift` (a version against production data)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from curate.cli import JSON_HELP, make_console, app
from curate.console import EXIT_FAILED, print_json, progress, write_json


@app.command()
def metrics(ref: str = typer.Argument(..., help="Dataset reference PATH[@vNNNN|@latest]."),
            by: Optional[str] = typer.Option(None, "--by", help="Slice by tag, label or split."),
            as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """Input metrics per slice: duration, level, peak, clipping, SNR, silence; image size, brightness, ..."""
    from rich.markup import escape
    from rich.table import Table

    from curate.drift import input_metrics, metric_table
    from curate.exceptions import BadInput
    from curate.store import load_ref

    if by not in (None, "tag", "label", "split"):
        raise BadInput(f"--by: {by!r} is not one of tag, label, split")
    version = load_ref(ref)
    table = metric_table(input_metrics(version, progress=progress), version, by)
    if as_json:
        print(table.to_json(orient="records", indent=2))
        return
    # one row per metric, one column per slice: metric names stay readable however many there are
    view = Table(title=f"input metrics of {escape(version.ref)}" + (f" by {by}" if by else "") + " (means)",
                 title_justify="left")
    view.add_column("metric")
    for name in table["slice"]:
        view.add_column(escape(str(name)), justify="right")
    for column in [c for c in table.columns if c != "slice"]:
        view.add_row(column, *["-" if v != v else f"{v:.4g}" for v in table[column]])  # NaN: other media kind
    make_console().print(view)


@app.command()
def drift(ref: str = typer.Argument(..., help="Reference: dataset PATH[@vNNNN|@latest]."),
          against: str = typer.Option(..., "--against", help="Production data: another version, or a folder of "
                                      "media (read-only, nothing imported)."),
          as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
          json_out: Optional[Path] = typer.Option(None, "--json-out", help="Write the drift result as JSON to this "
                                                  "file."),
          report_dir: Optional[Path] = typer.Option(None, "--report", help="Write report.json/.md/.html here."),
          include_augmented: bool = typer.Option(False, "--include-augmented", help="Also compare augmented "
                                                 "items (default: the real items of a version only).")) -> None:
    """PSI and Kolmogorov-Smirnov per input metric; exit 1 on significant drift (a CI/cron gate)."""
    from rich.markup import escape
    from rich.table import Table

    from curate.drift import drift_result, load_side

    reference = load_side(ref, include_augmented, progress, folder_allowed=False)
    production = load_side(against, include_augmented, progress)
    result = drift_result(reference, production)
    ref_metrics, prod_metrics, unreadable, production_name = (reference.metrics, production.metrics,
                                                              production.unreadable, production.name)
    if json_out:
        write_json(json_out, result)
    if report_dir:
        _write_drift_report(report_dir, result, ref_metrics, prod_metrics)
    if as_json:
        print_json(result)
        if not result["passed"]:
            raise typer.Exit(EXIT_FAILED)
        return
    console = make_console()
    table = Table(title=escape(f"drift of {production_name} against {reference.name}"), title_justify="left")
    for column in ("metric", "PSI", "KS", "p-value", "median ref", "median prod", "verdict"):
        table.add_column(column, justify="left" if column in ("metric", "verdict") else "right")
    for name, m in result["metrics"].items():
        table.add_row(name, f"{m['psi']:.3f}", f"{m['ks']:.2f}", f"{m['p_value']:.2g}", f"{m['reference_median']:.3g}",
                      f"{m['production_median']:.3g}", m["verdict"])
    console.print(table)
    for item in unreadable:
        console.print(f"unreadable: {item['path']}: {item['error']}", markup=False)
    for finding in result["findings"]:
        console.print(f"{finding['severity'].upper()} {finding['message']}", markup=False)
    console.print(f"{len(unreadable)} unreadable production file(s); "
                  + ("no significant drift" if result["passed"] else "SIGNIFICANT DRIFT"))
    if not result["passed"]:
        raise typer.Exit(EXIT_FAILED)


def _write_drift_report(folder: Path, result: dict, reference, production) -> None:
    from curate.report.html import render_drift_html

    folder.mkdir(parents=True, exist_ok=True)
    values = {m: {"reference": [float(v) for v in reference[m].astype(float).dropna()][:2000],
                  "production": [float(v) for v in production[m].astype(float).dropna()][:2000]}
              for m in result["metrics"]}
    (folder / "report.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [f"# Drift of {result['production']} against {result['reference']}: "
             + ("no significant drift" if result["passed"] else "SIGNIFICANT DRIFT"), "",
             "| metric | PSI | KS | p | verdict |", "|---|---:|---:|---:|---|"]
    lines += [f"| {k} | {m['psi']:.3f} | {m['ks']:.2f} | {m['p_value']:.2g} | {m['verdict']} |"
              for k, m in result["metrics"].items()]
    (folder / "report.md").write_text("\n".join(lines) + "\n")
    (folder / "report.html").write_text(render_drift_html(result, values))
