"""Soft Q-learning learner: soft Q network, target network and SVGD-trained sampler (Alg. 1).

One update does, from the same parameters (the reference code's simultaneous update):
  Q:       J_Q (eq. 11) against r + discount * V_target(s'), V by importance sampling (eq. 10)
           with K_V uniform actions on [-1, 1]^d (or, value_target='policy_max', the largest
           target Q over K_V sampler actions);
  sampler: amortized SVGD (eqs. 13-14, App. C.1) in the pre-squash space u (see svgd.py), the
           score taken from the online Q at the sampler's own particles.
The target Q is a hard copy of Q every ``target_update_interval`` updates. Everything is batched
over states and particles; random draws come from the learner's own generator, outside the loss
function, so the eager, compiled and CUDA-graph paths run the same math on the same numbers (the
graph draws them itself from that generator where PyTorch can capture it).
"""

from __future__ import annotations

import ctypes
import hashlib
import sys
import warnings
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from agents.base import BATCH_KEYS, Batch, Weights, cpu_weights, obs_action_sets, resolve_device
from agents.schedules import ConstantSchedule, LogLinearSchedule
from agents.sql.config import SQLConfig
from agents.sql.cuda_graph import LazyMetrics, StagedInputs, graph_supports_generators
from agents.sql.losses import q_loss, soft_value_uniform, svgd_surrogate_loss, td_target
from agents.sql.networks import SamplingNetwork, SoftQNetwork
from agents.sql.svgd import rbf_kernel, squashed_score, svgd_direction

METRIC_NAMES = ("loss/q", "loss/policy", "q/mean", "v/mean", "svgd/bandwidth")
_GRAPH_WARMUP = 3  # eager updates on a side stream before capturing the CUDA graph


def keep_freed_memory() -> bool:
    """Tell glibc malloc to keep freed blocks instead of unmapping them (process-wide).

    An SQL update allocates ~20 MB of short-lived [B, P, H] activations; with glibc's default
    mmap/trim thresholds each of them is fresh memory from the kernel, and the first touches cost
    ~1,400 page faults (~3-4 ms) per update on one CPU thread. Raising both thresholds lets freed
    blocks be reused (the learner's RSS stays at its peak, tens of MB). No-op off glibc.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3  # <malloc.h>
        ok = libc.mallopt(m_mmap_threshold, 1 << 30) == 1
        return ok and libc.mallopt(m_trim_threshold, (1 << 31) - 1) == 1
    except (OSError, AttributeError):
        return False


def box_dims(observation_space: gym.Space, action_space: gym.Space) -> tuple[int, int]:
    """(obs_dim, act_dim) of flat Box spaces; anything else is a clear error."""
    for name, space in (("observation_space", observation_space), ("action_space", action_space)):
        if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
            raise ValueError(f"soft Q-learning needs a 1-D Box {name}, got {space}")
    # tanh actions and eq. 10's uniform density 2^-d assume [-1, 1]^d (make_env rescales to it)
    if not (np.all(action_space.low == -1.0) and np.all(action_space.high == 1.0)):
        raise ValueError(f"soft Q-learning needs actions in [-1, 1]^d, got {action_space} "
                         "(envs.make_env rescales Box actions to it)")
    return int(observation_space.shape[0]), int(action_space.shape[0])


def restore_generator(gen: torch.Generator, saved: torch.Tensor) -> bool:
    """Set ``gen`` to a saved state; False if it was saved on another device type (a CUDA
    generator's state is 16 bytes, a CPU one's 5,056), which cannot be carried over: ``gen`` is
    then seeded from a hash of it, deterministic but a different stream from the saved one's."""
    saved = saved.cpu()
    try:
        gen.set_state(saved)
        return True
    except RuntimeError:
        gen.manual_seed(int.from_bytes(hashlib.sha256(saved.numpy().tobytes()).digest()[:8],
                                       "little"))
        return False


class SQLLearner:
    """Owns Q, target Q, sampler, both Adam optimizers, the update counter and the RNG."""

    # state_dict() keys whose tensors' shapes depend on the device type (generator states):
    # a checkpoint saved on another device type still fits (load_state_dict reseeds them)
    DEVICE_DEPENDENT_STATE = ("rng", "plot_rng")

    def __init__(self, cfg: SQLConfig, observation_space: gym.Space, action_space: gym.Space,
                 device: str = "cpu", seed: int = 0) -> None:
        self.cfg = cfg
        self.obs_dim, self.act_dim = box_dims(observation_space, action_space)
        self.device = resolve_device(device)
        if self.device.type == "cpu":
            keep_freed_memory()
        hidden = list(cfg.hidden_sizes)
        with torch.random.fork_rng(devices=[]):  # seeded init without touching the global RNG
            torch.manual_seed(seed)
            self.q = SoftQNetwork(self.obs_dim, self.act_dim, hidden).to(self.device)
            self.sampler = SamplingNetwork(self.obs_dim, self.act_dim, hidden).to(self.device)
            self.q_target = SoftQNetwork(self.obs_dim, self.act_dim, hidden).to(self.device)
        self.q_target.load_state_dict(self.q.state_dict())
        self.q_target.requires_grad_(False)

        self.use_graphs = bool(cfg.cuda_graphs) and self.device.type == "cuda"
        if cfg.cuda_graphs and not self.use_graphs:
            warnings.warn("SQLConfig.cuda_graphs needs a CUDA device; running eagerly",
                          stacklevel=2)
        # Fused Adam: ~1 ms/update faster than foreach on one CPU thread, and on CUDA one kernel
        # per optimizer instead of ~15; graph capture needs the step counters on the device.
        self._opt_kw: dict[str, Any] = {"capturable": self.use_graphs, "foreach": None,
                                        "fused": True}
        self.q_optim = torch.optim.Adam(self.q.parameters(), lr=cfg.q_lr, **self._opt_kw)
        self.policy_optim = torch.optim.Adam(self.sampler.parameters(), lr=cfg.policy_lr,
                                             **self._opt_kw)

        self.gen = torch.Generator(device=self.device)
        self.gen.manual_seed(seed)
        self._plot_gen = torch.Generator(device=self.device)  # plotting never shifts training RNG
        self._plot_gen.manual_seed(seed + 1)
        self.num_updates = 0
        self._alpha = (ConstantSchedule(cfg.alpha) if cfg.alpha_final is None else
                       LogLinearSchedule(cfg.alpha, cfg.alpha_final, cfg.alpha_anneal_updates))
        self._alpha_t = torch.zeros((), device=self.device)
        self.num_score, self.num_move = cfg.particle_split()
        self.num_particles = cfg.kernel_particles
        self.same_set = cfg.kernel_update_ratio is None  # K = M: the particles score and move
        self._loss_fn = torch.compile(self._losses) if cfg.compile else self._losses
        # CUDA graphs (see _graph_body): staged inputs, side streams, the graph and its outputs.
        self._staged: StagedInputs | None = None
        self._streams: list[torch.cuda.Stream] = []
        self._graph: torch.cuda.CUDAGraph | None = None
        self._graph_metrics: torch.Tensor | None = None
        self._graph_warmup = 0
        self._graph_rng = self.use_graphs and graph_supports_generators()  # noise drawn inside
        self._noise: tuple[torch.Tensor, torch.Tensor] | None = None  # else: fixed buffers
        self._graph_streams = 1 if cfg.compile else 3  # compiled losses: one fused chain

    # ------------------------------------------------------------------ math
    def alpha_at(self, update: int) -> float:
        return self._alpha(update)

    def draw_noise(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """xi [B, P, d] ~ N(0, I) for the sampler and the target value's noise [B, K_V, d]:
        actions a' ~ U[-1, 1]^d for eq. 10, or sampler inputs xi' ~ N(0, I) for 'policy_max'."""
        xi = torch.randn(batch_size, self.num_particles, self.act_dim, generator=self.gen,
                         device=self.device)
        value_noise = torch.empty(batch_size, self.cfg.value_particles, self.act_dim,
                                  device=self.device)
        return xi, self._redraw_value_noise(value_noise)

    def _redraw_value_noise(self, out: torch.Tensor) -> torch.Tensor:
        """Fill ``out`` [B, K_V, d] in place with fresh target-value noise (see draw_noise)."""
        if self.cfg.value_target == "policy_max":
            return torch.randn(out.shape, generator=self.gen, device=self.device, out=out)
        return torch.rand(out.shape, generator=self.gen, device=self.device,
                          out=out).mul_(2.0).sub_(1.0)

    def _losses(self, obs: torch.Tensor, action: torch.Tensor, reward: torch.Tensor,
                next_obs: torch.Tensor, discount: torch.Tensor, xi: torch.Tensor,
                value_noise: torch.Tensor, alpha: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """(J_Q + surrogate J_pi, metrics [5] in METRIC_NAMES order). The two terms touch disjoint
        parameters, so one backward gives both gradients."""
        loss_q, q_mean, v_mean = self._q_terms(obs, action, reward, next_obs, discount,
                                               value_noise, alpha)
        u, u_move, x, y = self._particles(obs, xi)
        score = self._score(obs, x, alpha)
        kappa, h = self._kernel(x, y)
        loss_pi = self._svgd_loss(x, y, score, kappa, h, u_move)
        metrics = torch.stack([loss_q.detach(), loss_pi.detach(), q_mean, v_mean, h.mean()])
        return loss_q + loss_pi, metrics

    def _q_terms(self, obs: torch.Tensor, action: torch.Tensor, reward: torch.Tensor,
                 next_obs: torch.Tensor, discount: torch.Tensor, value_noise: torch.Tensor,
                 alpha: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Soft Q loss (eq. 11) against the target value V(s') (eq. 10, or 'policy_max'):
        (J_Q, mean Q, mean V(s'))."""
        with torch.no_grad():
            if self.cfg.value_target == "policy_max":
                a_next = self.sampler(next_obs, value_noise)  # [B, K_V, d]
                v_next = self.q_target(next_obs, a_next).amax(dim=-1)  # [B]
            else:
                q_next = self.q_target(next_obs, value_noise)  # [B, K_V]
                v_next = soft_value_uniform(q_next, alpha, self.act_dim)  # [B]
            target = td_target(reward, discount, v_next)  # [B]
        q = self.q(obs, action)  # [B]
        return q_loss(q, target), q.detach().mean(), v_next.mean()

    def _particles(self, obs: torch.Tensor, xi: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sampler particles u [B, P, d] (with the sampler's graph), the moving ones u_move
        [B, K, d], and detached scoring x [B, M, d] and moving y [B, K, d] (same tensor if K = M).
        """
        u = self.sampler.pre_squash(obs, xi)  # [B, P, d], carries the sampler's graph
        # (no slicing when K = M = P: a slice would add a SliceBackward copy to the graph)
        u_move = u if self.same_set else u[:, self.num_particles - self.num_move:]  # [B, K, d]
        with torch.no_grad():
            x = u.detach() if self.same_set else u[:, :self.num_score].detach()  # [B, M, d]
            y = u_move.detach()  # [B, K, d]
        return u, u_move, x, y

    @torch.no_grad()
    def _score(self, obs: torch.Tensor, x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        """grad_u log p_u at the scoring particles [B, M, d], from the online Q (see svgd.py)."""
        a_x = torch.tanh(x)
        _, dq_da = self.q.value_and_action_grad(obs, a_x, need_value=False)  # [B, M, d]
        return squashed_score(dq_da, a_x, alpha)

    @torch.no_grad()
    def _kernel(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # [B, M, K], [B]
        return rbf_kernel(x, y, same_set=self.same_set, rule=self.cfg.kernel_bandwidth)

    def _svgd_loss(self, x: torch.Tensor, y: torch.Tensor, score: torch.Tensor,
                   kappa: torch.Tensor, h: torch.Tensor, u_move: torch.Tensor) -> torch.Tensor:
        """Amortized SVGD surrogate (eqs. 13-14) in u-space: x scores, y moves."""
        with torch.no_grad():
            phi = svgd_direction(x, y, score, kappa, h, self.same_set)  # [B, K, d]
        return svgd_surrogate_loss(phi, u_move)

    def _step(self, obs: torch.Tensor, action: torch.Tensor, reward: torch.Tensor,
              next_obs: torch.Tensor, discount: torch.Tensor, xi: torch.Tensor,
              value_noise: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        self.q_optim.zero_grad(set_to_none=True)
        self.policy_optim.zero_grad(set_to_none=True)
        loss, metrics = self._loss_fn(obs, action, reward, next_obs, discount, xi, value_noise,
                                      alpha)
        loss.backward()
        self.q_optim.step()
        self.policy_optim.step()
        return metrics

    # ------------------------------------------------------------------ update
    def _check_batch(self, batch: Batch) -> int:
        missing = [k for k in BATCH_KEYS if k not in batch]
        if missing:
            raise KeyError(f"SQL batch is missing keys {missing}; expected {list(BATCH_KEYS)}")
        b = len(batch["obs"])
        want = {"obs": (b, self.obs_dim), "action": (b, self.act_dim), "reward": (b,),
                "next_obs": (b, self.obs_dim), "discount": (b,)}
        for key, shape in want.items():
            if tuple(np.shape(batch[key])) != shape:
                raise ValueError(f"SQL batch[{key!r}] has shape {tuple(np.shape(batch[key]))}, "
                                 f"expected {shape}")
        return b

    def _batch_tensors(self, batch: Batch) -> list[torch.Tensor]:
        return [torch.as_tensor(np.asarray(batch[k], dtype=np.float32), device=self.device)
                for k in BATCH_KEYS]

    def update(self, batch: Batch) -> Mapping[str, float]:
        """One gradient step of Q and sampler on ``batch`` (keys in agents.base.BATCH_KEYS).

        Returns the metrics (METRIC_NAMES and 'alpha'): a dict, or under CUDA graphs a
        ``LazyMetrics`` mapping that waits for the device only when read, so the host can queue
        the next updates meanwhile.
        """
        b = self._check_batch(batch)
        alpha = self.alpha_at(self.num_updates)
        if self.use_graphs:
            with torch.cuda.device(self.device):  # events and streams on the learner's GPU
                out: Mapping[str, float] = self._graph_update(batch, b, alpha)
        else:
            self._alpha_t.fill_(alpha)
            xi, value_noise = self.draw_noise(b)
            metrics = self._step(*self._batch_tensors(batch), xi, value_noise, self._alpha_t)
            out = dict(zip(METRIC_NAMES, metrics.tolist(), strict=True))
            out["alpha"] = alpha
        self.num_updates += 1
        if self.num_updates % self.cfg.target_update_interval == 0:
            self.sync_target()
        return out

    @torch.no_grad()
    def sync_target(self) -> None:
        """Hard copy Q -> target (in place, so CUDA-graph addresses stay valid)."""
        torch._foreach_copy_(list(self.q_target.parameters()), list(self.q.parameters()))

    def _own_optimizer_flags(self, optim: torch.optim.Optimizer) -> None:
        """A loaded optimizer state brings the saver's fused/foreach/capturable flags; keep ours
        (a CPU checkpoint may resume under CUDA graphs) and put step counters where they run."""
        for group in optim.param_groups:
            group.update(self._opt_kw)
            for p in group["params"]:
                st = optim.state.get(p, {})
                if "step" in st and torch.is_tensor(st["step"]):
                    st["step"] = st["step"].to(device=p.device, dtype=torch.float32)

    # ------------------------------------------------------------------ CUDA graphs
    def _graph_update(self, batch: Batch, b: int, alpha: float) -> LazyMetrics:
        """Stage the batch and alpha (one pinned host -> device copy), run the update body
        (eagerly for the first _GRAPH_WARMUP calls, then as one captured graph) and queue its
        metrics back to pinned memory; nothing here waits for the device."""
        st = self._staged
        if st is None:
            shapes = {k: tuple(np.shape(batch[k])) for k in BATCH_KEYS}
            st = self._staged = StagedInputs(shapes, len(METRIC_NAMES), self.device)
            self._streams = [torch.cuda.Stream(self.device) for _ in range(3)]
        elif st.shapes["obs"][0] != b:
            raise ValueError("cuda_graphs needs a fixed batch size: captured "
                             f"{st.shapes['obs'][0]}, got {b}")
        st.stage(batch, alpha)
        if not self._graph_rng:  # no generator capture: draw into fixed buffers, same numbers
            if self._noise is None:
                self._noise = self.draw_noise(b)
            else:
                xi, value_noise = self._noise
                torch.randn(xi.shape, generator=self.gen, device=self.device, out=xi)
                self._redraw_value_noise(value_noise)
        if self._graph is None and self._graph_warmup < _GRAPH_WARMUP:
            current, side = torch.cuda.current_stream(self.device), self._streams[2]
            side.wait_stream(current)
            with torch.cuda.stream(side):
                metrics = self._graph_body()
            current.wait_stream(side)
            self._graph_warmup += 1
        else:
            if self._graph is None:
                self._capture()
            self._graph.replay()
            metrics = self._graph_metrics
        return st.finish(metrics, METRIC_NAMES, {"alpha": alpha})

    def _capture(self) -> None:
        graph = torch.cuda.CUDAGraph()
        if self._graph_rng:  # replays advance self.gen exactly as eager draws would
            graph.register_generator_state(self.gen)
        capture_stream = self._streams[2]
        with torch.cuda.graph(graph, stream=capture_stream):
            metrics = self._graph_body()
        # torch <= 2.12: capture_begin resets each registered generator's device-side offset with
        # a fill on the capture stream; a replay sets it with a fill on its own stream. Unordered,
        # the first replay could read offset 0 (the noise of update 0) when the GPU was busy with
        # other processes' work: the graph-vs-eager test failed so beside six runs on an H200.
        torch.cuda.current_stream(self.device).wait_stream(capture_stream)
        self._graph, self._graph_metrics = graph, metrics

    def _graph_body(self) -> torch.Tensor:
        """One update on the staged buffers (noise, losses, backward, Adam) -> metrics [5]; runs
        as is for the warm-up and under capture. The update is ~160 tiny kernels, latency-bound:
        with ``_graph_streams`` > 1 independent parts go on side streams, which the captured
        graph runs as parallel branches (H100: 472 -> 310 us per update). Q stream: target value,
        J_Q, its backward, Adam on Q once the score has read Q; kernel stream: RBF kernel beside
        the score; this stream: sampler, score, SVGD direction and backward, sampler Adam. The
        losses touch disjoint parameters: two backward passes give the gradients of their sum.
        """
        self.q_optim.zero_grad(set_to_none=True)  # under capture: grads live in the graph's pool
        self.policy_optim.zero_grad(set_to_none=True)
        io = self._staged.device
        obs, alpha = io["obs"], io["alpha"]
        xi, value_noise = self.draw_noise(obs.shape[0]) if self._graph_rng else self._noise
        if self._graph_streams == 1:
            loss, metrics = self._loss_fn(*(io[k] for k in BATCH_KEYS), xi, value_noise, alpha)
            loss.backward()
            self.q_optim.step()
            self.policy_optim.step()
            return metrics
        main = torch.cuda.current_stream(self.device)
        s_q, s_k = self._streams[0], self._streams[1]
        s_q.wait_stream(main)
        with torch.cuda.stream(s_q):
            loss_q, q_mean, v_mean = self._q_terms(obs, io["action"], io["reward"],
                                                   io["next_obs"], io["discount"], value_noise,
                                                   alpha)
            loss_q.backward()
        u, u_move, x, y = self._particles(obs, xi)
        s_k.wait_stream(main)
        with torch.cuda.stream(s_k):
            kappa, h = self._kernel(x, y)
        score = self._score(obs, x, alpha)
        s_q.wait_stream(main)  # Q's weights change only after the score has read them
        with torch.cuda.stream(s_q):
            self.q_optim.step()
        main.wait_stream(s_k)
        loss_pi = self._svgd_loss(x, y, score, kappa, h, u_move)
        loss_pi.backward()
        if self.cfg.value_target == "policy_max":
            main.wait_stream(s_q)  # the Q stream's target value read the sampler's weights
        self.policy_optim.step()
        main.wait_stream(s_q)
        # every cross-stream tensor is still referenced here, after both joins
        return torch.stack([loss_q.detach(), loss_pi.detach(), q_mean, v_mean, h.mean()])

    # ------------------------------------------------------------------ acting / plots
    def get_weights(self) -> Weights:
        """Sampler weights as CPU tensors (all an acting policy needs), keys 'sampler.*'."""
        return cpu_weights(self.sampler, "sampler.")

    @torch.no_grad()
    def sample_actions(self, obs: np.ndarray, n: int) -> np.ndarray:
        """n sampler actions per state: obs [N, obs_dim] -> [N, n, act_dim] (own RNG stream)."""
        o = torch.as_tensor(np.asarray(obs, np.float32), device=self.device)
        if o.dim() != 2 or o.shape[1] != self.obs_dim:
            raise ValueError(f"obs must be [N, {self.obs_dim}], got {tuple(o.shape)}")
        xi = torch.randn(o.shape[0], n, self.act_dim, generator=self._plot_gen,
                         device=self.device)
        return self.sampler(o, xi).cpu().numpy()

    @torch.no_grad()
    def q_values(self, obs: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """Q(s, a) for obs [N, obs_dim] and actions [N, P, act_dim] -> [N, P]."""
        o, a = obs_action_sets(obs, actions, self.obs_dim, self.act_dim, self.device)
        return self.q(o, a).cpu().numpy()

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Networks, target, optimizers, counter and RNG: tensors and plain types only."""
        return {
            "q": self.q.state_dict(),
            "q_target": self.q_target.state_dict(),
            "sampler": self.sampler.state_dict(),
            "q_optim": self.q_optim.state_dict(),
            "policy_optim": self.policy_optim.state_dict(),
            "num_updates": self.num_updates,
            "rng": self.gen.get_state(),
            "plot_rng": self._plot_gen.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        missing = {"q", "q_target", "sampler", "q_optim", "policy_optim", "num_updates",
                   "rng"} - set(state)
        if missing:
            raise KeyError(f"SQL learner state is missing {sorted(missing)}")
        self.q.load_state_dict(state["q"])
        self.q_target.load_state_dict(state["q_target"])
        self.sampler.load_state_dict(state["sampler"])
        for optim, key in ((self.q_optim, "q_optim"), (self.policy_optim, "policy_optim")):
            optim.load_state_dict(state[key])
            self._own_optimizer_flags(optim)
        self.num_updates = int(state["num_updates"])
        exact = restore_generator(self.gen, state["rng"])
        if "plot_rng" in state:
            restore_generator(self._plot_gen, state["plot_rng"])
        if not exact:
            warnings.warn(f"SQL learner: the checkpoint's RNG state ({state['rng'].numel()} "
                          f"bytes) was saved on another device type than this "
                          f"{self.device.type} learner; networks and optimizers load exactly, "
                          "the RNG is seeded from that state (a different random stream from "
                          "an uninterrupted run's)", stacklevel=2)
        # Optimizer state tensors were replaced: a captured graph would point at the old ones.
        if self._staged is not None:
            self._staged.drain()
        self._graph, self._graph_metrics, self._graph_warmup = None, None, 0
