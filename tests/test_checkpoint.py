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
    ckpt.save_checkpoint(tmp_path, {"counters": {"env_steps": 1}, "runner": {}})
    real_save = torch.save

    def exploding_save(obj, f, *a, **k):
        real_save(obj, f, *a, **k)
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(ckpt.torch, "save", exploding_save)
    with pytest.raises(OSError):
        ckpt.save_checkpoint(tmp_path, {"counters": {"env_steps": 2}, "runner": {}})
    monkeypatch.setattr(ckpt.torch, "save", real_save)
    assert ckpt.load_checkpoint(tmp_path)["counters"]["env_steps"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]  # no temp files left


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_arbitrary_pickles_are_refused(tmp_path):
    path = tmp_path / "checkpoint.pt"
    torch.save({"format": "softq-checkpoint-v1", "x": Evil()}, path, pickle_module=pickle)
    with pytest.raises(ckpt.CheckpointError, match="corrupt or unsafe") as refused:
        ckpt.load_checkpoint(tmp_path)
    # named as what it is, without torch's advice to load it with weights_only=False (which
    # would run the pickled print) or to allowlist the global
    message = str(refused.value)
    assert "not a file of tensors and plain types" in message and "print" in message
    assert "weights_only" not in message and "allowlist" not in message


def test_corrupt_missing_and_foreign_files_are_named(tmp_path):
    with pytest.raises(ckpt.CheckpointError, match="no checkpoint"):
        ckpt.load_checkpoint(tmp_path)
    (tmp_path / "checkpoint.pt").write_bytes(b"\x00garbage")
    with pytest.raises(ckpt.CheckpointError, match=str(tmp_path)):
        ckpt.load_checkpoint(tmp_path)
    torch.save({"a": 1}, tmp_path / "checkpoint.pt")
    with pytest.raises(ckpt.CheckpointError, match="not a softq checkpoint"):
        ckpt.load_checkpoint(tmp_path)


@pytest.mark.parametrize("state,needle", [
    ({"runner": {}}, "'counters' is None, not a mapping"),
    ({"counters": [3], "runner": {}}, "'counters' is [3], not a mapping"),
    ({"counters": {}, "runner": {}}, "counters 'env_steps' is None"),
    ({"counters": {"env_steps": "x"}, "runner": {}}, "counters 'env_steps' is 'x'"),
    ({"counters": {"env_steps": -1}, "runner": {}}, "counters 'env_steps' is -1"),
    ({"counters": {"env_steps": 1}}, "'runner' is NoneType, not a mapping"),
    ({"counters": {"env_steps": 1}, "runner": {}, "replay": 5}, "'replay' is int"),
])
def test_a_checkpoint_missing_a_part_every_reader_needs_is_named(tmp_path, state, needle):
    # resume and eval read these unchecked: a KeyError or TypeError traceback, the resume's
    # only after it had rewritten config.yaml
    ckpt.save_checkpoint(tmp_path, state)
    with pytest.raises(ckpt.CheckpointError, match="is not a whole softq checkpoint") as refused:
        ckpt.load_checkpoint(tmp_path)
    assert str(tmp_path) in str(refused.value) and needle in str(refused.value)
    ckpt.save_checkpoint(tmp_path, {"counters": {"env_steps": 0}, "runner": {}, "replay": None})
    assert ckpt.load_checkpoint(tmp_path)["replay"] is None  # an on-policy run's


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


def test_shape_differences_skips_the_named_top_level_keys():
    ours = {"rng": torch.zeros(5056, dtype=torch.uint8), "q": {"w": torch.zeros(4, 2)}}
    theirs = {"rng": torch.zeros(16, dtype=torch.uint8), "q": {"w": torch.zeros(4, 2)}}
    assert ckpt.shape_differences(theirs, ours) == ["rng is [16] there, [5056] here"]
    assert ckpt.shape_differences(theirs, ours, skip=("rng",)) == []


def test_cpu_state_detaches_every_nested_tensor_and_keeps_the_rest():
    w = torch.ones(3, requires_grad=True)
    state = {"net": {"w": w}, "groups": [{"lr": 1e-3, "params": [0, 1]}], "pair": (w, 7), "n": 5}
    out = ckpt.cpu_state(state)
    assert not out["net"]["w"].requires_grad and torch.equal(out["net"]["w"], w.detach())
    assert out["groups"] == [{"lr": 1e-3, "params": [0, 1]}] and out["n"] == 5
    assert type(out["pair"]) is tuple and out["pair"][1] == 7
    if torch.cuda.is_available():
        assert ckpt.cpu_state({"w": w.cuda()})["w"].device.type == "cpu"


def test_a_ray_learner_takes_cuda_by_auto_only_with_a_reserved_gpu():
    from distributed.ray_actors import actor_device

    assert actor_device("auto", []) == "cpu"  # learner_num_gpus 0: the node's GPUs are not ours
    assert actor_device("auto", [3]) == "cuda"  # Ray sets CUDA_VISIBLE_DEVICES: it is cuda:0
    assert actor_device("cuda:1", []) == "cuda:1"  # an explicit choice stays


def test_replay_arrays_are_saved_as_tensors_and_load_weights_only(tmp_path):
    """Replay states are numpy arrays (their shard actors run without torch), read-only when
    they come from Ray's object store: the checkpoint stores them as tensors of the same dtype
    and values, without a warning, and ``weights_only=True`` loads them."""
    import warnings

    import numpy as np

    frames = np.arange(2 * 84 * 84, dtype=np.uint8).reshape(2, 84, 84)
    frames.flags.writeable = False  # as Ray hands them out
    state = {"replay": [{"buffer": {"data": {"frame": frames, "done": np.array([True, False]),
                                             "rows": np.array([3, 4], dtype=np.int64)},
                                    "rng": {"state": {"state": 2**100, "inc": 7}}},
                         "limiter": {"inserts": 5, "samples": 3}}],
             "other": (1, [2.5])}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        saved = ckpt.arrays_as_tensors(state)
    data = saved["replay"][0]["buffer"]["data"]
    assert data["frame"].dtype == torch.uint8 and data["done"].dtype == torch.bool
    assert data["frame"].data_ptr() == frames.ctypes.data  # shared, not copied
    assert saved["other"] == (1, [2.5]) and saved["replay"][0]["limiter"]["inserts"] == 5
    ckpt.atomic_torch_save(saved, tmp_path / "state.pt")
    back = torch.load(tmp_path / "state.pt", weights_only=True)["replay"][0]["buffer"]
    np.testing.assert_array_equal(back["data"]["frame"].numpy(), frames)
    assert back["data"]["rows"].tolist() == [3, 4] and back["rng"]["state"]["state"] == 2**100
