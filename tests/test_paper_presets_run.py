"""Every preset of Haarnoja et al. 2017's experiments (§5: multi-goal, swimmer, maze, pretraining,
hallways, U-maze), App. D scale and ``-quick``, trains through the real inline runtime at its own
settings (networks, particles, schedules, env) for a few steps: it builds, updates, evaluates and
checkpoints. Fine-tuning presets start ``--init-from`` a run of their pretraining preset, as the
README's commands do. Only the budget and the warm-up are shortened, and the evaluation episodes."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from distributed.checkpoint import load_checkpoint
from launch.cli import main
from launch.config import load_config, preset_names

STEPS, WARMUP = 150, 100
SHORT = [f"run.total_env_steps={STEPS}", f"replay.min_size={WARMUP}", f"run.eval_every={STEPS}",
         "run.eval_episodes=1", "env.max_episode_steps=50", "run.log_every=50",
         "run.image_every=0", "replay.capacity=1000"]
PAPER_PRESETS = sorted(n for n in preset_names()
                       if load_config(n).env.id.startswith("softq/") and load_config(n).algo in
                       ("sql", "ddpg"))


def _pretraining_preset(name: str) -> str | None:
    """The pretraining preset a fine-tuning preset starts from (same networks), else None."""
    quick = "-quick" if name.endswith("-quick") else ""
    if "-sql-finetune" in name:
        return f"ant-pretrain-sql{quick}"
    if "-ddpg-pretrained" in name:
        return f"ant-pretrain-ddpg{quick}"
    return None


def _train(preset: str, out: Path, init_from: Path | None = None) -> dict:
    argv = ["train", preset, "--inline", "--out", str(out)]
    if init_from is not None:
        argv += ["--init-from", str(init_from)]
    for item in SHORT:
        argv += ["--set", item]
    assert main(argv) == 0
    return json.loads((out / "summary.json").read_text())


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory) -> dict[str, Path]:
    """One short run of each pretraining preset, shared by the fine-tuning presets."""
    root = tmp_path_factory.mktemp("pretrained")
    runs = {}
    for preset in sorted({_pretraining_preset(n) for n in PAPER_PRESETS} - {None}):
        _train(preset, root / preset)
        runs[preset] = root / preset
    return runs


def test_the_list_covers_every_experiment():
    for family in ("multigoal", "swimmer-finish-line", "ant-maze", "ant-pretrain",
                   "ant-hallway-wide", "ant-hallway-narrow", "ant-umaze"):
        names = [n for n in PAPER_PRESETS if n.startswith(family)]
        assert any(n.endswith("-quick") for n in names), family
        assert any(not n.endswith("-quick") for n in names), family
        assert {load_config(n).algo for n in names} == {"sql", "ddpg"}, family


@pytest.mark.parametrize("preset", PAPER_PRESETS)
def test_paper_preset_trains_updates_and_evaluates(preset, pretrained, tmp_path):
    cfg = load_config(preset)
    if preset in pretrained:  # ran in the fixture
        out = pretrained[preset]
        summary = json.loads((out / "summary.json").read_text())
    else:
        out = tmp_path / "run"
        init = _pretraining_preset(preset)
        summary = _train(preset, out, pretrained[init] if init else None)
    assert summary["env_steps"] == STEPS
    learner = load_checkpoint(out)["runner"]["learner"]
    expected = math.floor((STEPS - WARMUP) * cfg.replay.updates_per_step)
    assert abs(learner["num_updates"] - expected) <= 1, (learner["num_updates"], expected)
    assert math.isfinite(summary["eval/return_mean"])
    assert math.isfinite(summary["eval/discounted_return_mean"])
