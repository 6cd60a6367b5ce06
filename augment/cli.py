"""`augment`: run recipes and list transforms. Exit codes: 0 ok, 1 a gate failed, 2 bad input or usage."""
from __future__ import annotations

import sys
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
    from rich.console import Console
    from rich.table import Table

    table = Table(title="transforms", title_justify="left", show_lines=True)
    for column in ("name", "media", "parameters (default)", "what it does"):
        table.add_column(column)
    for row in rows:
        params = "\n".join(p["name"] + (" (required)" if p["required"] else f" = {json.dumps(p['default'])}")
                           for p in row["params"])
        table.add_row(row["name"], row["media"], params, row["doc"])
    Console(highlight=False).print(table)


def main(argv: list[str] | None = None) -> int:
    return run_app(app, "augment", argv)


if __name__ == "__main__":
    sys.exit(main())
