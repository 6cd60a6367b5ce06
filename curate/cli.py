"""`curate`: datasets and judgement about them. Exit codes: 0 ok, 1 a check failed, 2 bad input or usage."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from curate.console import (EXIT_FAILED, make_console, print_json, progress, rename_deprecated, run_app,
                            version_callback)

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  rich_markup_mode=None,
                  help="Versioned datasets and judgement about them: import, inspect, diff, verify, export.")

JSON_HELP = "Print the result as JSON on stdout (nothing else goes to stdout)."

# Old spellings that still work (hidden): `--json PATH` wrote a file on these commands; now `--json` prints JSON and
# `--json-out PATH` writes it. See curate.console.rename_deprecated.
DEPRECATED = {name: {"--json": "--json-out"} for name in ("errors", "audit", "check", "drift")}


@app.callback()
def root(version: Optional[bool] = typer.Option(None, "--version", callback=version_callback, is_eager=True,
                                                help="Print the rubbersheet version and exit.")) -> None:
    """Versioned datasets and judgement about them: import, inspect, diff, verify, export."""


def _counts_table(title: str, counts: dict[str, int], items: int):
    """Counts with each key's share of the items (tags can overlap, so tag shares need not sum to 100 %)."""
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    table.add_column(title.split()[0].lower())
    table.add_column("items", justify="right")
    total = items or 1
    table.add_column("share", justify="right")
    for key, n in counts.items():
        table.add_row(key, str(n), f"{100 * n / total:.1f}%")
    return table


@app.command("import")
def import_(
    src: Path = typer.Argument(..., help="Folder with media files and labels.csv (path,label[,tags][,split]...)."),
    to: str = typer.Option(..., "--to", help="Dataset directory or URL such as s3://bucket/prefix/name (created "
                           "if absent)."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Skip (and list) rows whose media file is missing, "
                                  "unreadable, corrupt or empty; a bad labels.csv row still fails the import."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Import a folder of media + labels.csv as the dataset's next version."""
    from curate.importer import import_folder
    from curate.storage import location

    result = import_folder(src, location(to), skip_bad=skip_bad, progress=progress,
                           on_skip=lambda line: print(f"curate: skipped {line}", file=sys.stderr))
    version = result.version
    if as_json:
        print_json({"version": version.ref, "dataset": str(to), "imported": result.imported,
                    "skipped": [str(s) for s in result.skipped], "unchanged": bool(result.unchanged),
                    "fingerprint": version.info["fingerprint"]})
        return
    if result.unchanged:
        print(f"{version.ref}: unchanged ({result.imported} items, same fingerprint); no new version written")
        return
    skipped = f", {len(result.skipped)} skipped" if result.skipped else ""
    print(f"{version.ref}: imported {result.imported} items{skipped}; fingerprint {version.info['fingerprint'][:16]}")


@app.command()
def versions(dataset: str = typer.Argument(..., help="Dataset directory, or URL (s3://bucket/prefix/name)."),
             as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """List the versions of a dataset, oldest first."""
    from rich.table import Table

    from curate.store import open_dataset

    from curate.storage import location

    ds = open_dataset(location(dataset))
    latest = ds.latest()
    rows = []
    for name in ds.versions():
        info = ds.load(name).info
        rows.append({"version": name, "parent": info.get("parent"), "created": info.get("created"),
                     "items": info.get("counts", {}).get("items"), "fingerprint": info.get("fingerprint"),
                     "recipe": (info.get("recipe") or {}).get("name"),
                     "gate": (info.get("gate") or {}).get("verdict"), "latest": name == latest})
    if as_json:
        print_json(rows)
        return
    table = Table(title=f"{ds.name} ({ds.location})", title_justify="left")
    for column in ("version", "parent", "created", "items", "fingerprint", "recipe", "gate"):
        table.add_column(column, justify="right" if column == "items" else "left")
    for row in rows:
        mark = "*" if row["latest"] else ""
        created = (row["created"] or "-").replace("T", " ")[:16]
        table.add_row(row["version"] + mark, row["parent"] or "-", created, str(row["items"]),
                      (row["fingerprint"] or "")[:12], row["recipe"] or "-", row["gate"] or "-")
    table.caption = "* latest"
    make_console().print(table)


@app.command()
def show(ref: str = typer.Argument(..., help="Dataset reference PATH[@vNNNN|@latest]."),
         as_json: bool = typer.Option(False, "--json", help="Print version.json on stdout.")) -> None:
    """Show a version: lineage, fingerprint, and counts per label, tag, split and origin."""
    from rich.markup import escape

    from curate.store import load_ref

    version = load_ref(ref)
    info = version.info
    if as_json:
        print_json(info)
        return
    console = make_console()
    counts = info.get("counts", {})
    console.print(f"[bold]{escape(str(info.get('name')))}@{info.get('version')}[/bold]  parent {info.get('parent') or '-'}  "
                  f"created {info.get('created')}  items {counts.get('items')}")
    console.print(f"fingerprint {info.get('fingerprint')}")
    recipe = info.get("recipe") or {}
    if recipe:
        console.print(f"recipe {recipe.get('name')} (sha256 {str(recipe.get('sha256'))[:12]}) seed {info.get('seed')}")
    for kind, title in (("label", "label counts"), ("tag", "tag counts"), ("split", "split counts"),
                        ("origin", "origin counts")):
        if counts.get(kind):
            console.print(_counts_table(title, counts[kind], counts.get("items", 0)))


@app.command()
def diff(a: str = typer.Argument(..., help="Before: PATH[@vNNNN|@latest]."),
         b: str = typer.Argument(..., help="After: PATH[@vNNNN|@latest]."),
         as_json: bool = typer.Option(False, "--json", help="Print the full diff as JSON on stdout."),
         limit: int = typer.Option(20, "--limit", min=0, help="Items listed per section (0: all).")) -> None:
    """Items added, removed and changed between two versions, and count deltas per label/tag/split/origin."""
    from rich.table import Table

    from curate.diff import diff_versions
    from curate.store import load_ref

    result = diff_versions(load_ref(a), load_ref(b))
    if as_json:
        print_json(result)
        return
    console = make_console()
    console.print(f"{result['a']} -> {result['b']}: +{len(result['added'])} added, -{len(result['removed'])} "
                  f"removed, ~{len(result['changed'])} changed"
                  + (" (same fingerprint)" if result["same_fingerprint"] else ""))
    sections = (("added", result["added"]), ("removed", result["removed"]),
                ("changed", [f"{k} ({', '.join(v)})" for k, v in result["changed"].items()]))
    for title, items in sections:
        shown = items if limit == 0 else items[:limit]
        for item in shown:
            console.print(f"  {title[0] if title != 'changed' else '~'} {item}", markup=False)
        if len(items) > len(shown):
            console.print(f"  ... {len(items) - len(shown)} more {title} (--limit 0 lists all)")
    for kind, rows in result["count_deltas"].items():
        if rows:
            table = Table(title=f"{kind} counts", title_justify="left")
            for column in (kind, "before", "after", "delta"):
                table.add_column(column, justify="left" if column == kind else "right")
            for key, r in rows.items():
                table.add_row(key, str(r["before"]), str(r["after"]), f"{r['delta']:+d}")
            console.print(table)


@app.command()
def verify(dataset: str = typer.Argument(..., help="Dataset directory, or URL (s3://bucket/prefix/name)."),
           quick: bool = typer.Option(False, "--quick", help="Skip re-hashing the media objects."),
           as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """Check objects, manifests, version.json, reports, the parent chain and LATEST; exit 1 naming each problem."""
    from curate.storage import location
    from curate.store import open_dataset
    from curate.verify import verify as verify_dataset

    dataset = location(dataset)
    problems, figures = verify_dataset(open_dataset(dataset), quick=quick)
    if as_json:
        print_json({"ok": not problems, "problems": [str(p) for p in problems], "figures": figures})
        if problems:
            raise typer.Exit(EXIT_FAILED)
        return
    for problem in problems:
        print(f"FAIL {problem}")
    checked = "objects not re-hashed (--quick)" if quick else f"{figures['objects_checked']} objects checked"
    summary = f"{figures['versions']} versions, {checked}, {figures['objects_unreferenced']} unreferenced"
    if figures["objects_unreferenced"]:
        summary += f" (`curate gc {dataset}` removes them)"
    if problems:
        print(f"verify failed: {len(problems)} problem(s); {summary}")
        raise typer.Exit(EXIT_FAILED)
    print(f"ok: {summary}")


@app.command()
def gc(dataset: str = typer.Argument(..., help="Dataset directory, or URL (s3://bucket/prefix/name)."),
       dry_run: bool = typer.Option(False, "--dry-run", help="List what would be removed; remove nothing."),
       as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """Remove media objects no version references (left by interrupted or refused runs), with their sizes."""
    from curate.storage import location
    from curate.store import open_dataset
    from curate.verify import collect

    garbage, size, shared = collect(open_dataset(location(dataset)), dry_run=dry_run)
    if as_json:
        print_json({"dry_run": dry_run, "objects": len(garbage), "bytes": size, "shared_bytes": shared,
                    "removed": [{"path": str(path), "bytes": n} for path, n in garbage]})
        return
    for path, bytes_ in garbage[:20]:
        print(f"{bytes_ / 1024:10.1f} KB  {path}")
    if len(garbage) > 20:
        print(f"... and {len(garbage) - 20} more")
    verb = "would remove" if dry_run else "removed"
    kept = f" ({shared / 1e6:.2f} MB of it stays on disk: another dataset holds the same files as hard links)" \
        if shared else ""
    print(f"{verb} {len(garbage)} unreferenced object(s), {size / 1e6:.2f} MB{kept}")


@app.command()
def export(ref: str = typer.Argument(..., help="PATH[@vNNNN|@latest]."),
           to: str = typer.Option(..., "--to", help="New folder to write split/label/file + labels.csv into."),
           as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
           format: str = typer.Option("labels", "--format", help="labels: labels.csv that `curate import` reads "
                                      "back; hf: split folders with metadata.csv (datasets imagefolder/audiofolder)."),
           ) -> None:
    """Export a version as plain folders split/label/file plus labels.csv (or the Hugging Face folder layout)."""
    from curate.exceptions import BadInput
    from curate.export import export_version
    from curate.storage import is_url
    from curate.store import load_ref, refuse_inside_dataset

    if is_url(to):  # typer would fold 's3://b/x' into a local folder 's3:/b/x'
        raise BadInput(f"--to: {to} is a URL; curate export writes a local folder (copy it to object storage "
                       "afterwards, or import it into an s3:// dataset)")
    to = Path(to)
    refuse_inside_dataset(to, "--to")
    version = load_ref(ref)
    n = export_version(version, to, format)
    if as_json:
        print_json({"version": version.ref, "to": str(to), "format": format, "items": n})
        return
    print(f"{version.ref}: exported {n} items to {to}")


def main(argv: list[str] | None = None) -> int:
    import curate.cli_analysis  # noqa: F401  (registers baseline, errors, audit)
    import curate.cli_checks  # noqa: F401  (registers check, split, report)
    import curate.cli_drift  # noqa: F401  (registers metrics, drift)
    import curate.cli_review  # noqa: F401  (registers review apply, review summary)

    args = list(sys.argv[1:] if argv is None else argv)
    return run_app(app, "curate", rename_deprecated("curate", args, app, DEPRECATED))


if __name__ == "__main__":
    sys.exit(main())
