"""`make demo` / `encoderlab demo`: fine-tune the offline default model on the bundled SQuAD sample,
report EM/F1 on held-out articles, and compare base vs fine-tuned answers side by side."""
from __future__ import annotations

import time
from typing import Callable

DEMO_QUESTIONS = 6


def run_demo(output_dir: str = "runs/demo", *, epochs: float = 2.0, limit: int | None = None,
             model: str = "builtin:minilm-l6", log: Callable[[str], None] = print) -> dict:
    from rich.console import Console
    from rich.table import Table

    from .data.squad import load_squad, select
    from .qa.predict import QuestionAnswerer
    from .qa.train import QATrainConfig, train_qa

    console = Console()
    t0 = time.time()
    sample = load_squad("builtin:squad-sample")
    held_out = select(sample, part="test")
    shown = held_out.examples[:: max(1, len(held_out) // DEMO_QUESTIONS)][:DEMO_QUESTIONS]
    console.rule("[bold]encoderlab demo")
    console.print(f"Model {model} · data builtin:squad-sample (SQuAD v1.1, CC BY-SA 4.0): training on articles "
                  f"{', '.join(select(sample, part='train').titles)}; held out: {', '.join(held_out.titles)}")

    console.print("\n[bold]1. The base model[/] (its QA head is untrained) answers held-out questions:")
    base = QuestionAnswerer(model)
    base_answers = [base(question=e.question, context=e.context, top_k=1)[0] for e in shown]
    del base

    console.print("\n[bold]2. Fine-tuning[/] on the training articles (progress below)…")
    cfg = QATrainConfig(model=model, output_dir=output_dir, train="builtin:squad-sample", train_split="train",
                        eval_split="test", num_train_epochs=epochs, limit=limit,
                        # small data, few minutes: a high learning rate and small batches (more steps)
                        # learn far more than the usual 5e-5 x 32 in the same time
                        learning_rate=4e-4, train_batch_size=8, max_seq_length=256, doc_stride=64,
                        warmup_ratio=0.1, logging_steps=20, seed=42)
    metrics = train_qa(cfg, overwrite=True, log=log)

    console.print(f"\n[bold]3. Held-out evaluation[/] ({metrics['total']} questions, official SQuAD v1.1 metric): "
                  f"[bold green]EM {metrics['exact']:.2f} · F1 {metrics['f1']:.2f}[/] "
                  f"(correct {metrics['correct']}, similar {metrics['similar']}, incorrect {metrics['incorrect']})")
    tuned = QuestionAnswerer(f"{output_dir}/model")
    table = Table(title="Base vs fine-tuned on held-out questions", show_lines=True)
    for col in ("question", "gold answer", "base model", "fine-tuned"):
        table.add_column(col, overflow="fold")
    for e, b in zip(shown, base_answers):
        t = tuned(question=e.question, context=e.context, top_k=1)[0]
        table.add_row(e.question, e.answers[0].text, f"{b['answer']} ({100 * b['score']:.0f}%)",
                      f"{t['answer']} ({100 * t['score']:.0f}%)")
    console.print(table)
    console.print(f"Done in {(time.time() - t0) / 60:.1f} min. The run directory is {output_dir}/ — try:\n"
                  f"  encoderlab ask --model {output_dir}/model --context-file FILE --question 'Who ...?'")
    return metrics
