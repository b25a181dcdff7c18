"""--time-budget: parsing, the learning-rate horizon, a budgeted run that ends on time, sweep trials."""
from __future__ import annotations

import re
import time

import pytest
from _helpers import assert_one_line_error, run_cli

from encoderlab.config import parse_duration
from encoderlab.errors import EncoderlabError


@pytest.mark.timeout(10)
@pytest.mark.parametrize("text, seconds", [("30m", 1800), ("1h30m", 5400), ("90s", 90), ("45", 45), (45, 45),
                                           (2.5, 2.5), ("1h2m3s", 3723), ("1.5h", 5400), (" 2M ", 120)])
def test_durations_parse_to_seconds(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.timeout(10)
@pytest.mark.parametrize("text", ["0", "-5", "0s", "soon", "", "30x", "m", "1m1h", "inf", "nan", True, None, [30]])
def test_bad_durations_are_refused_in_one_line(text):
    with pytest.raises(EncoderlabError) as info:
        parse_duration(text, "time_budget (--time-budget)")
    message = str(info.value)
    assert "\n" not in message and message.startswith("time_budget (--time-budget): expected a positive duration")
    assert repr(text) in message


@pytest.mark.timeout(60)
def test_cli_bad_budget_is_one_line_error_before_anything_is_written(capsys, tmp_path):
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", "qa", "--model", "scratch:bert-tiny", "--train", "builtin:squad-sample",
                           "--time-budget", "soon", "--output-dir", out)
    assert_one_line_error(code, err, "--time-budget", "'soon'")
    assert not out.exists()


@pytest.mark.timeout(60)
def test_schedule_horizon_moves_so_the_learning_rate_ends_at_zero():
    from types import SimpleNamespace

    import torch
    from transformers import get_scheduler

    from encoderlab.training import set_schedule_horizon

    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=1.0)
    scheduler = get_scheduler("linear", optimizer=opt, num_warmup_steps=10, num_training_steps=100)
    for _ in range(12):
        opt.step()
        scheduler.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(88 / 90)        # the 100-step schedule
    trainer = SimpleNamespace(lr_scheduler=scheduler, args=SimpleNamespace(get_warmup_steps=lambda n: 2))
    set_schedule_horizon(trainer, 20)
    assert opt.param_groups[0]["lr"] == pytest.approx(8 / 18)          # applied at once: (20 - 12) / (20 - 2)
    lrs = []
    for _ in range(8):
        opt.step()
        scheduler.step()
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs[-2] == pytest.approx(1 / 18) and lrs[-1] == 0.0          # step 20: the schedule has ended


@pytest.mark.timeout(30)
def test_resumed_run_gets_the_rest_of_the_budget_and_the_interrupted_plan():
    from types import SimpleNamespace

    import torch

    from encoderlab.training import TimeBudgetCallback

    callback = TimeBudgetCallback(60.0)
    callback.trainer = SimpleNamespace(run_started=1000.0, seconds_before=45.0, resume_state={"max_steps": 30},
                                       lr_scheduler=None, steps_before_budget=0, model=torch.nn.Linear(3, 2))
    state = SimpleNamespace(max_steps=500, global_step=20)
    callback.on_train_begin(SimpleNamespace(gradient_accumulation_steps=1), state, None, train_dataloader=range(50))
    assert callback.deadline == 1015.0                   # 60 s budget - 45 s spent before the checkpoint
    assert state.max_steps == 30 and callback.cap == 500 and callback.steps_per_epoch == 50
    assert callback.trainer.steps_before_budget == 500 and callback.parameters == 8
    assert callback.save_cost() == pytest.approx(12 * 8 / 100e6 + 0.5)   # estimated until one is measured


@pytest.mark.timeout(150)
def test_budgeted_run_ends_on_time_with_its_schedule_ended(tmp_path):
    from encoderlab.qa.train import QATrainConfig, train_qa
    from encoderlab.runs import RunDir
    from encoderlab.training import find_checkpoint, read_resume_state

    budget, lr = 40.0, 1e-3
    out = tmp_path / "run"
    # ~560 features x 50 epochs at batch 4: thousands of steps, tens of minutes without the budget
    cfg = QATrainConfig(model="scratch:bert-tiny", output_dir=str(out), train="builtin:squad-sample",
                        train_split="train", eval_split="test", limit=300, eval_limit=24, num_train_epochs=50,
                        logging_steps=1, train_batch_size=4, eval_batch_size=32, max_seq_length=128, doc_stride=32,
                        precision="fp32", learning_rate=lr, time_budget="40s")
    lines: list[str] = []
    t0 = time.time()
    metrics = train_qa(cfg, log=lines.append)
    wall = time.time() - t0
    assert wall <= budget + 12, (wall, lines)             # generous for a loaded machine; unbudgeted: minutes
    history = RunDir(out).history()
    plan, end = [h for h in history if "time_budget_steps" in h]     # the first plan, then what was trained
    assert plan["time_budget"] == end["time_budget"] == budget and plan["seconds_per_step"] > 0
    assert any(f"-> {plan['time_budget_steps']} steps" in line for line in lines), lines
    steps = end["time_budget_steps"]
    assert metrics["global_step"] == steps and steps >= 3, (steps, "\n".join(lines))
    # the budget cut the 50 epochs short (a faster machine plans more steps: ~1,000 = 6.5 epochs on CI's)
    features = int(re.search(r"train: \d+ questions -> (\d+) features", "\n".join(lines)).group(1))
    assert end["time_budget_epochs"] == pytest.approx(steps / -(-features // 4), abs=1e-4)
    assert end["time_budget_epochs"] < 25, (end, "\n".join(lines))
    assert end["stopped_by_time"] is False, "\n".join(lines)   # the plan ended the run, not the safety net
    warmup = -(-steps // 10)                              # warmup_ratio 0.1 of the chosen steps
    last = [h for h in history if "learning_rate" in h and "train_runtime" not in h][-1]
    assert last["step"] == steps
    assert last["learning_rate"] == pytest.approx(lr / (steps - warmup))   # the linear schedule's last step
    assert RunDir(out).status == "completed" and (out / "model" / "model.safetensors").is_file()
    assert history[-1]["final"] is True and history[-1]["step"] == steps
    state = read_resume_state(find_checkpoint(RunDir(out)))      # what a resumed run takes over
    assert state["max_steps"] == steps and 0 < state["seconds"] <= wall
    done = [h for h in history if "train_runtime" in h][-1]     # Trainer's speed, over the budget's steps
    assert done["train_samples_per_second"] == pytest.approx(4 * steps / done["train_runtime"], rel=0.05)


@pytest.mark.timeout(30)
def test_sweep_trials_get_the_base_configs_budget():
    from encoderlab.sweep.trial import trial_config

    cfg = trial_config("qa", {"model": "scratch:bert-tiny", "train": "builtin:squad-sample", "time_budget": "2m"},
                       {}, {"learning_rate": 3e-4}, "runs/t0")
    cfg.validate()
    assert cfg.time_budget == "2m" and cfg.time_budget_seconds() == 120 and cfg.learning_rate == 3e-4
    bad = trial_config("qa", {"time_budget": "forever"}, {}, {}, "runs/t1")
    with pytest.raises(EncoderlabError, match="time_budget"):
        bad.validate()


class _TokenClock(__import__("torch").nn.Module):
    """A stand-in model whose forward pass takes `per_token` seconds per (padded) input token."""

    def __init__(self, per_token: float):
        import torch

        super().__init__()
        self.per_token, self.calls = per_token, []
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def forward(self, input_ids, attention_mask=None, **kwargs):
        self.calls.append(tuple(input_ids.shape))
        time.sleep(self.per_token * input_ids.numel())
        return {"logits": input_ids.float()}


@pytest.mark.timeout(30)
def test_padded_tokens_counts_each_batch_at_its_longest_row():
    import numpy as np

    from encoderlab.training import padded_tokens

    assert padded_tokens(np.array([9, 7, 3, 2, 2]), 2) == 2 * 9 + 2 * 3 + 1 * 2
    assert padded_tokens(np.array([5]), 64) == 5 and padded_tokens(np.array([], dtype=np.int64), 4) == 0


@pytest.mark.timeout(60)
def test_evaluation_time_is_estimated_from_one_timed_batch_scaled_by_padded_tokens():
    import numpy as np
    import torch

    from encoderlab.models import load_model
    from encoderlab.training import DynamicPadCollator, estimate_forward_seconds, padded_tokens

    tokenizer = load_model("scratch:bert-tiny", "qa").tokenizer
    rng = np.random.default_rng(3)
    rows = [[101] + [1000 + int(t) for t in rng.integers(0, 500, size=n)] + [102]
            for n in rng.integers(20, 300, size=400)]
    lengths = np.array([len(r) for r in rows])
    model = _TokenClock(per_token=2e-6)
    state = torch.random.get_rng_state()
    estimate = estimate_forward_seconds(model, rows, DynamicPadCollator(tokenizer), batch_size=32,
                                        device=torch.device("cpu"), precision="fp32")
    assert model.calls and model.calls[0][0] == 32 and len(model.calls) == 1     # one batch timed
    assert torch.equal(torch.random.get_rng_state(), state)                       # training RNG untouched
    whole = padded_tokens(np.sort(lengths)[::-1], 32) * 2e-6     # what the longest-first evaluation would sleep
    assert 0.9 * whole <= estimate <= 1.25 * whole, (estimate, whole)
    assert estimate_forward_seconds(model, [], DynamicPadCollator(tokenizer), batch_size=32,
                                    device=torch.device("cpu"), precision="fp32") == 0.0


@pytest.mark.timeout(60)
def test_first_plan_times_the_evaluation_instead_of_guessing():
    from types import SimpleNamespace

    import torch

    from encoderlab.models import load_model
    from encoderlab.training import TimeBudgetCallback

    tokenizer = load_model("scratch:bert-tiny", "qa").tokenizer
    rows = [[101] + [2000] * 98 + [102]] * 256
    model = _TokenClock(per_token=1e-5)                  # a batch of 64 x 100 tokens: 0.064 s
    callback = TimeBudgetCallback(600.0, eval_input_ids=rows, log=lambda m: None)
    args = SimpleNamespace(eval_strategy="steps", eval_steps=1000, per_device_train_batch_size=8,
                           gradient_accumulation_steps=1, per_device_eval_batch_size=64, device=torch.device("cpu"),
                           load_best_model_at_end=False, get_warmup_steps=lambda n: 0)
    callback.trainer = SimpleNamespace(run_started=time.time(), seconds_before=0.0, resume_state={}, lr_scheduler=None,
                                       steps_before_budget=0, model=model, args=args, processing_class=tokenizer,
                                       accelerator=SimpleNamespace(num_processes=1))
    state = SimpleNamespace(max_steps=10_000, global_step=0, is_world_process_zero=True)
    control = SimpleNamespace(should_training_stop=False)
    callback.on_train_begin(args, state, control, train_dataloader=range(500))
    callback.step_times = [2.0] * 5                      # 2 s a step: the guess would be 8 rows x 2 s / 3 x 256
    guess = callback.eval_cost()
    assert guess == pytest.approx(2.0 / 8 / 3 * 256)
    callback.last_end = time.time()
    state.global_step = 6
    callback.on_step_end(args, state, control)
    assert len(model.calls) == 1 and callback.measured and callback.paused
    assert callback.eval_cost() == pytest.approx(4 * 64 * 100 * 1e-5, rel=0.5)    # four batches of 64 x 100
    assert callback.eval_cost() < guess / 20


@pytest.mark.timeout(30)
def test_seconds_per_step_hold_steady_over_length_grouped_mega_batches():
    # Trainer's length-grouped sampler orders each mega-batch of 50 batches longest first: step times fall
    # several-fold within it and jump back at the next one. The plan (and the schedule's horizon) must not
    # follow that saw-tooth: over the 5th and 6th mega-batches, the estimate stays within 10 % of the mean.
    from encoderlab.training import TimeBudgetCallback

    tooth = [3.0 - 2.5 * i / 49 for i in range(50)]          # 3.0 s down to 0.5 s, mean 1.75 s
    callback = TimeBudgetCallback(600.0, log=lambda m: None)
    estimates = []
    for i, seconds in enumerate(tooth * 6):
        callback.step_times.append(seconds)
        if i >= 200:
            estimates.append(callback.step_seconds())
    assert min(estimates) >= 0.9 * 1.75 and max(estimates) <= 1.1 * 1.75, (min(estimates), max(estimates))
