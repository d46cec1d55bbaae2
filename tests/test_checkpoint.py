"""Checkpoints are atomic, refuse pickles and name the bad file."""

import os
import pickle
import stat

import pytest
import torch

from distributed import checkpoint as ckpt


def test_round_trip(tmp_path):
    state = {"counters": {"env_steps": 7}, "runner": {"w": torch.arange(3.0)}}
    stale = tmp_path / ".checkpoint.pt.abc123.tmp"  # what a SIGKILL mid-write leaves
    stale.write_bytes(b"half a checkpoint")
    old = os.umask(0o022)
    try:
        ckpt.save_checkpoint(tmp_path, state)
    finally:
        os.umask(old)
    loaded = ckpt.load_checkpoint(tmp_path)
    assert loaded["counters"] == {"env_steps": 7}
    assert torch.equal(loaded["runner"]["w"], torch.arange(3.0))
    # an ordinary file's mode (not mkstemp's 0600), and the leftover is gone
    assert stat.S_IMODE((tmp_path / "checkpoint.pt").stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


def test_crash_during_write_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    ckpt.save_checkpoint(tmp_path, {"counters": {"env_steps": 1}})
    real_save = torch.save

    def exploding_save(obj, f, *a, **k):
        real_save(obj, f, *a, **k)
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(ckpt.torch, "save", exploding_save)
    with pytest.raises(OSError):
        ckpt.save_checkpoint(tmp_path, {"counters": {"env_steps": 2}})
    monkeypatch.setattr(ckpt.torch, "save", real_save)
    assert ckpt.load_checkpoint(tmp_path)["counters"]["env_steps"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]  # no temp files left


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_arbitrary_pickles_are_refused(tmp_path):
    path = tmp_path / "checkpoint.pt"
    torch.save({"format": "softq-checkpoint-v1", "x": Evil()}, path, pickle_module=pickle)
    with pytest.raises(ckpt.CheckpointError, match="corrupt or unsafe"):
        ckpt.load_checkpoint(tmp_path)


def test_corrupt_missing_and_foreign_files_are_named(tmp_path):
    with pytest.raises(ckpt.CheckpointError, match="no checkpoint"):
        ckpt.load_checkpoint(tmp_path)
    (tmp_path / "checkpoint.pt").write_bytes(b"\x00garbage")
    with pytest.raises(ckpt.CheckpointError, match=str(tmp_path)):
        ckpt.load_checkpoint(tmp_path)
    torch.save({"a": 1}, tmp_path / "checkpoint.pt")
    with pytest.raises(ckpt.CheckpointError, match="not a softq checkpoint"):
        ckpt.load_checkpoint(tmp_path)


def test_shape_differences_names_each_tensor_and_key_that_does_not_match():
    ours = {"q": {"w": torch.zeros(64, 29), "b": torch.zeros(64)}, "steps": 3,
            "opt": {"state": {0: {"exp_avg": torch.zeros(64, 29)}}}}
    assert ckpt.shape_differences(ours, ours) == []
    theirs = {"q": {"w": torch.zeros(8, 29), "b": torch.zeros(64), "extra": torch.zeros(1)},
              "steps": 3, "opt": {"state": {0: {"exp_avg": torch.zeros(8, 29)}}}}
    assert ckpt.shape_differences(theirs, ours) == [
        "q.w is [8, 29] there, [64, 29] here",
        "opt.state.0.exp_avg is [8, 29] there, [64, 29] here"]
    del theirs["q"]["b"]
    assert "q.b is missing there" in ckpt.shape_differences(theirs, ours)
    # a fresh learner's optimizer has no state yet: the checkpoint's is not a difference
    assert ckpt.shape_differences(theirs, {"opt": {"state": {}}}) == []
