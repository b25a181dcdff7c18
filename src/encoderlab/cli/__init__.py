"""The `encoderlab` command: a thin Typer layer over the library. Errors print one line, exit 2."""
from __future__ import annotations

import os
import sys

import typer

from ..errors import EncoderlabError

app = typer.Typer(name="encoderlab", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Fine-tune, evaluate and query pretrained transformer encoders — offline by default.\n\n"
                       "Models: builtin:minilm-l6 (offline default), scratch:<preset>, a local directory "
                       "(e.g. RUN/model) or a Hugging Face Hub name.")
train_app = typer.Typer(no_args_is_help=True, help="Fine-tune a model (qa, classify).")
app.add_typer(train_app, name="train")


def _quiet_libraries() -> None:
    """Keep Transformers' load reports and advisory warnings out of the user's terminal."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import warnings

    warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\..*")
    warnings.filterwarnings("ignore", category=FutureWarning)
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()


def fail(message: str) -> None:
    """Print one error line and exit non-zero (used for bad CLI combinations)."""
    raise EncoderlabError(message)


from . import ask, classify, compare, data, demo, evaluate, inspect, models, plot, pretrain, serve, sweep, train  # noqa: E402,F401  (register the commands)


def main(argv: list[str] | None = None) -> int:
    import click

    try:
        _quiet_libraries()
        rv = app(args=argv, standalone_mode=False)
        # without standalone mode Click *returns* the exit code of an aborted command (130 on Ctrl-C)
        if isinstance(rv, int) and rv == 130:
            print("interrupted", file=sys.stderr)
        return rv if isinstance(rv, int) else 0
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except (click.exceptions.Abort, KeyboardInterrupt):
        print("interrupted", file=sys.stderr)
        return 130
    except EncoderlabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:  # library validation errors (e.g. the SQuAD metric's file checks)
        print(f"error: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}", file=sys.stderr)
        return 2
    except MemoryError:
        print("error: out of memory; lower --train-batch-size / --eval-batch-size or --max-seq-length", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: {exc.strerror or exc}{f': {exc.filename}' if exc.filename else ''}", file=sys.stderr)
        return 2


def entry() -> None:
    sys.exit(main())
