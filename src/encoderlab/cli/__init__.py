"""The `encoderlab` command: a thin Typer layer over the library. Errors print one line, exit 2."""
from __future__ import annotations

import os
import sys
import traceback

import typer

from ..errors import EncoderlabError

app = typer.Typer(name="encoderlab", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Fine-tune, evaluate and query pretrained transformer encoders — offline by default.\n\n"
                       "Models: builtin:minilm-l6 (offline default), scratch:<preset>, a local directory "
                       "(e.g. RUN/model) or a Hugging Face Hub name.")
train_app = typer.Typer(no_args_is_help=True, help="Fine-tune or pretrain a model: one command per task of the "
                                                      "registry (encoderlab.tasks).")
app.add_typer(train_app, name="train")


def _quiet_libraries() -> None:
    """Keep Transformers' load reports, advisory warnings and download bars out of the user's terminal —
    through their environment switches, so that a command that never loads a model imports no ML library."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    import warnings

    warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\..*")
    warnings.filterwarnings("ignore", category=FutureWarning)


def debug_enabled() -> bool:
    """`--debug` or ENCODERLAB_DEBUG=1: show the traceback of user errors too."""
    return os.environ.get("ENCODERLAB_DEBUG", "").strip().lower() not in ("", "0", "false", "no")


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="Show the full traceback of every error, user errors "
                                     "included (same as ENCODERLAB_DEBUG=1).")) -> None:
    if debug:
        os.environ["ENCODERLAB_DEBUG"] = "1"


def precision_option(what: str = "Inference precision"):
    """The --precision option of the commands that predict (the training commands take theirs from the config)."""
    return typer.Option("auto", "--precision", help=f"{what}: auto (bf16 autocast on CPUs with AVX-512 BF16 "
                        "or AMX and on GPUs, about 2x the features/s of fp32 there; else fp32), fp32 or bf16.")


def fail(message: str) -> None:
    """Print one error line and exit non-zero (used for bad CLI combinations)."""
    raise EncoderlabError(message)


from . import ask, classify, compare, data, demo, evaluate, inspect, models, plot, serve, sweep, train  # noqa: E402,F401  (register the commands)

train.register_task_commands(app)


def _click_exception_types() -> tuple[type, ...]:
    """Click's exception base as the installed Typer raises it: recent Typer vendors Click (typer._click),
    older Typer re-exports click's own classes; both are caught whatever the version."""
    found = [cls for cls in typer.BadParameter.__mro__ if cls.__name__ == "ClickException"]
    try:
        import click

        found.append(click.ClickException)
    except ImportError:  # pragma: no cover - Typer without Click
        pass
    return tuple(dict.fromkeys(found))


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code. Usage mistakes: Click's usage message, exit 2. User errors
    (EncoderlabError): one `error:` line, exit 2. Anything else is a bug of ours: its traceback is shown."""
    click_exceptions = _click_exception_types()
    debug_before = os.environ.get("ENCODERLAB_DEBUG")     # --debug lasts for this call only
    try:
        _quiet_libraries()
        rv = app(args=argv, prog_name="encoderlab", standalone_mode=False)
        # without standalone mode Click *returns* the exit code of an aborted command (130 on Ctrl-C)
        if isinstance(rv, int) and rv == 130:
            print("interrupted", file=sys.stderr)
        return rv if isinstance(rv, int) else 0
    except typer.Exit as exc:
        return exc.exit_code
    except click_exceptions as exc:
        exc.show()
        return exc.exit_code
    except (typer.Abort, KeyboardInterrupt):
        print("interrupted", file=sys.stderr)
        return 130
    except EncoderlabError as exc:
        if debug_enabled():
            traceback.print_exc()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except MemoryError:
        if debug_enabled():
            traceback.print_exc()
        print("error: out of memory; lower --train-batch-size / --eval-batch-size or --max-seq-length", file=sys.stderr)
        return 2
    finally:
        if debug_before is None:
            os.environ.pop("ENCODERLAB_DEBUG", None)
        else:
            os.environ["ENCODERLAB_DEBUG"] = debug_before


def entry() -> None:
    sys.exit(main())
