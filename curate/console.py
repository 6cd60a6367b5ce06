"""What both CLIs share: one-line errors with exit codes, and progress that only shows on a terminal."""
from __future__ import annotations

import os
import sys
from typing import Iterable, Sequence, TypeVar

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

