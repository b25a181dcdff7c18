"""Hyperparameter sweeps: W&B sweep files run locally and offline on Optuna.

    from encoderlab.sweep import load_sweep, run_sweep, make_report
    result = run_sweep("sweep.yaml", "base.yaml", count=8, workers=2)

See docs/sweeps.md. Modules: config (sweep file -> SweepSpec -> Optuna sampler/pruner/distributions),
storage (study + storage), runner (workers), trial (the per-trial process), report (table, best config, plots).
"""
from .config import SweepSpec, load_sweep, parse_sweep  # noqa: F401
from .report import make_report  # noqa: F401
from .runner import SweepRunner, run_sweep  # noqa: F401
