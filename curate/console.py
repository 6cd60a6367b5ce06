"""What both CLIs share: one-line errors with exit codes, progress that only shows on a terminal, tables that are
never cut when piped, `--json` output, and the deprecated flag spellings that still work."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Iterable, Sequence, TypeVar

T = TypeVar("T")

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def fail(prog: str, message: str) -> int:
    """Print one line on stderr and return the bad-input exit code."""
    text = " ".join(str(message).split())
    print(f"{prog}: error: {text}", file=sys.stderr)
    return EXIT_BAD_INPUT


def warn(prog: str, message: str) -> None:
    """Print one warning line on stderr (the command goes on)."""
    print(f"{prog}: warning: {' '.join(str(message).split())}", file=sys.stderr)


def _click_exceptions():
    """Typer's click exception classes, wherever this Typer keeps them (click itself, or its vendored copy)."""
    import typer

    mro = {c.__name__: c for c in typer.BadParameter.__mro__}
    module = sys.modules[mro["UsageError"].__module__]
    return mro["UsageError"], mro["ClickException"], getattr(module, "NoArgsIsHelpError", None)


def run_app(app, prog: str, argv: Sequence[str] | None = None) -> int:
    """Run a Typer app; bad input and usage errors become one stderr line and exit 2, never a traceback."""
    import typer

    from curate.exceptions import RubbersheetError

    usage_error, click_exception, no_args_is_help = _click_exceptions()
    _plain_help(app)
    command = typer.main.get_command(app)
    try:
        result = command.main(args=list(sys.argv[1:] if argv is None else argv), prog_name=prog,
                              standalone_mode=False)
    except usage_error as exc:
        if no_args_is_help is not None and isinstance(exc, no_args_is_help):
            print(exc.ctx.get_help() if exc.ctx else "")
            return EXIT_OK
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
        return fail(prog, exc.format_message() + hint)
    except click_exception as exc:
        return fail(prog, exc.format_message())
    except typer.Exit as exc:
        return exc.exit_code
    except (typer.Abort, KeyboardInterrupt):
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except RubbersheetError as exc:
        return fail(prog, str(exc))
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        return fail(prog, f"{where}{exc.strerror or exc}")
    return result if isinstance(result, int) else EXIT_OK


def interactive() -> bool:
    return sys.stderr.isatty() and not os.environ.get("CI")


def progress(items: Iterable[T], description: str, total: int | None = None) -> Iterable[T]:
    """A Rich progress bar on a terminal; plain iteration (quiet logs) otherwise. `total` for iterators."""
    total = total if total is not None else (len(items) if isinstance(items, Sequence) else None)
    if not interactive() or (total is not None and total < 2):
        return items
    from rich.progress import track

    return track(items, description=description, total=total, transient=True, console=_stderr_console())


def _stderr_console():
    from rich.console import Console

    return Console(stderr=True)



def _plain_help(app) -> None:
    """Help as plain text: no Rich markup (so `PATH[@vNNNN|@latest]` shows literally) and no `<bool>` type column."""
    app.rich_markup_mode = None
    for group in app.registered_groups:
        if group.typer_instance is not None:
            _plain_help(group.typer_instance)


# Piped output (CI logs, `| cat`, files) has no width to fit: tables print at their natural width, never cut or wrapped.
PIPED_WIDTH = 100_000


def make_console():
    """The Rich console for stdout: the terminal's width on a terminal; unlimited width when piped."""
    from rich.console import Console

    if sys.stdout.isatty():
        return Console(highlight=False, soft_wrap=True)
    return Console(highlight=False, soft_wrap=True, width=PIPED_WIDTH)


def _jsonable(value: Any):
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def dumps(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False, default=_jsonable)


def print_json(data: Any) -> None:
    """`--json`: the command's result as JSON on stdout (nothing else goes to stdout)."""
    print(dumps(data))


def write_json(path: Path, data: Any) -> None:
    """`--json-out PATH`: the same JSON written to a file."""
    Path(path).write_text(dumps(data) + "\n")


def version_callback(value: bool) -> None:
    """`--version` on both CLIs: the installed rubbersheet version."""
    if value:
        import typer

        from curate.store import package_version

        print(f"rubbersheet {package_version()}")
        raise typer.Exit(0)


def rename_deprecated(prog: str, argv: Sequence[str], app, renames: dict[str, dict[str, str]]) -> list[str]:
    """Old flag spellings that still work: `renames[command][old] = new` for a top-level command whose option `old`
    once took a value, e.g. `curate errors P --json FILE` (old: write FILE) -> `--json-out FILE`, with one warning
    line on stderr.

    `--json` is now a flag (print JSON to stdout), so `--json X` is read the old way only when the command line has
    more positional arguments than the command takes: `curate errors preds.csv --json out.json` writes out.json as
    before, while `curate errors --json preds.csv` prints the analysis of preds.csv as JSON."""
    args = list(argv)
    names = [a for a in args if not a.startswith("-")]
    table = renames.get(names[0]) if names else None
    if not table:
        return args
    start = args.index(names[0]) + 1
    out, i, extra = args[:start], start, None
    while i < len(args):
        arg = args[i]
        old, eq, value = arg.partition("=")
        if old in table and eq:
            warn(prog, f"{old}={value}: {old} PATH is deprecated; use {table[old]} PATH")
            out.append(f"{table[old]}={value}")
        elif old in table and i + 1 < len(args) and not args[i + 1].startswith("-"):
            if extra is None:
                extra = _has_extra_arguments(app, names[0], args[start:])
            if extra:
                warn(prog, f"{old} {args[i + 1]}: {old} PATH is deprecated; use {table[old]} PATH")
                out += [table[old], args[i + 1]]
                i += 1
            else:
                out.append(arg)
        else:
            out.append(arg)
        i += 1
    return out


def _has_extra_arguments(app, name: str, args: list[str]) -> bool:
    """Whether `args` give the command more positional arguments than it takes (parsed without running it)."""
    import typer

    command = getattr(typer.main.get_command(app), "commands", {}).get(name)
    if command is None:
        return False
    try:
        ctx = command.make_context(name, list(args), resilient_parsing=True)
    except Exception:  # noqa: BLE001 - undecidable here: read it the new way and let the real parse report
        return False
    return bool(ctx.args)
