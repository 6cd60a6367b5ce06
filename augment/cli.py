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


def main(argv: list[str] | None = None) -> int:
    return run_app(app, "augment", argv)


if __name__ == "__main__":
    sys.exit(main())
