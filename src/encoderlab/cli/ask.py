"""`encoderlab ask`: top-k answers with confidence, one-shot or interactive."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from . import app, fail, precision_option

HELP = ("Type a question and press Enter. Commands: ':context TEXT' sets a new context, ':file PATH' reads one "
        "from a file, ':show' prints the context, ':quit' (or Ctrl-D) leaves.")


@app.command("ask")
def ask_cmd(
    model: str = typer.Option("builtin:minilm-l6", "--model", "-m", help="A fine-tuned QA model: RUN/model, a directory or a Hub name."),
    context: Optional[str] = typer.Option(None, "--context", help="The text to answer from."),
    context_file: Optional[Path] = typer.Option(None, "--context-file", help="Read the context from a UTF-8 file."),
    question: Optional[list[str]] = typer.Option(None, "--question", "-q", help="A question (repeat for several). Without it: interactive session."),
    top_k: int = typer.Option(3, "--top-k", "-k", min=1, max=50, help="Answers per question."),
    max_seq_length: Optional[int] = typer.Option(None, "--max-seq-length", help="Window length; longer contexts are split into overlapping windows \\[as the model was trained, else 384]."),
    doc_stride: Optional[int] = typer.Option(None, "--doc-stride", help="Context tokens shared by consecutive windows \\[as trained, else 128]."),
    precision: str = precision_option(),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object per question."),
) -> None:
    """Answer questions about a context with the top-k answers and their confidence.

    Example: encoderlab ask -m runs/qa/model --context-file article.txt -q "Who won?" --top-k 3
    """
    from ..data.io import read_text
    from ..qa.predict import QuestionAnswerer, untrained_note

    if context is not None and context_file is not None:
        fail("give --context or --context-file, not both")
    if context_file is not None:
        context = read_text(context_file)
    if question and not (context and context.strip()):
        fail("empty context: give --context TEXT or --context-file FILE")
    qa = QuestionAnswerer(model, max_seq_length=max_seq_length, doc_stride=doc_stride, precision=precision)
    note = untrained_note(model, qa.info)
    if note:
        typer.echo(f"note: {note}", err=True)
    if question:
        for q in question:
            _show(q, qa(question=q, context=context, top_k=top_k), json_out)
        return
    _interactive(qa, context, top_k, json_out)


def _show(question: str, answers: list[dict], json_out: bool) -> None:
    if json_out:
        typer.echo(json.dumps({"question": question, "answers": answers}, ensure_ascii=False))
        return
    typer.echo(f"Q: {question}")
    for i, a in enumerate(answers, 1):
        text = a["answer"] if a["answer"] else "(no answer)"
        where = f"  [chars {a['start']}-{a['end']}]" if a.get("start") is not None else ""
        typer.echo(f"  {i}. {text}  ({100 * a['score']:.1f}%){where}")
    if answers and "no_answer_score" in answers[0]:
        typer.echo(f"  no-answer probability: {100 * answers[0]['no_answer_score']:.1f}%")


def _interactive(qa, context: str | None, top_k: int, json_out: bool) -> None:
    from ..data.io import read_text
    from ..errors import EncoderlabError

    typer.echo(HELP)
    while True:
        try:
            line = input("context> " if not context else "question> ").strip()
        except EOFError:
            typer.echo("")
            return
        if not line:
            continue
        if line in (":quit", ":q", ":exit"):
            return
        try:
            if line.startswith(":context "):
                context = line[len(":context "):].strip()
            elif line.startswith(":file "):
                context = read_text(Path(line[len(":file "):].strip()).expanduser())
                typer.echo(f"context: {len(context):,} characters")
            elif line == ":show":
                typer.echo(context or "(no context yet)")
            elif line.startswith(":"):
                typer.echo(HELP)
            elif not context:
                context = line
            else:
                _show(line, qa(question=line, context=context, top_k=top_k), json_out)
        except EncoderlabError as exc:   # stay in the session on bad input
            typer.echo(f"error: {exc}", err=True)
