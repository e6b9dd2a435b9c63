"""Data parallelism: 2 gloo processes on CPU equal 1 process on the combined batch; the episode sampler."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file

from talkinghead.models import Discriminator, Embedder, Generator
from talkinghead.training.distributed import EpisodeSampler, World
from talkinghead.training.loop import MetaLearner
from training_standins import feature_networks, make_batch, micro_config, single_thread  # noqa: F401

NUM_VIDEOS = 6
VIDEO_INDEX = (1, 3, 1, 4)  # row 1 appears on both ranks: its sparse gradients must add up
STEPS = 2


def _learner(world: World) -> MetaLearner:
    torch.manual_seed(0)
    config = micro_config("train.ema_decay=0.5")
    return MetaLearner(config, Embedder(config.model), Generator(config.model),
                       Discriminator(config.model, NUM_VIDEOS), feature_networks(), world)


def _state(learner: MetaLearner) -> dict[str, torch.Tensor]:
    """Weights, EMA, optimizer states and the last step's gradients (E/G: the E/G update's; D: the second
    D update's; W: the L_MCH rows, densified)."""
    tensors, _ = learner.state()
    modules = {"embedder": learner.embedder, "generator": learner.generator, "discriminator": learner.discriminator}
    for prefix, module in modules.items():
        for name, parameter in module.named_parameters():
            if parameter.grad is not None:
                grad = parameter.grad.to_dense() if parameter.grad.is_sparse else parameter.grad
                tensors[f"grad.{prefix}.{name}"] = grad.detach().clone()
    return {name: t.contiguous() for name, t in tensors.items()}


def _worker(rank: int, world_size: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    try:
        learner = _learner(World(rank=rank, world_size=world_size, local_rank=rank))
        per_rank = len(VIDEO_INDEX) // world_size
        for step in range(STEPS):
            batch = make_batch(video_index=VIDEO_INDEX, seed=step)
            mine = {name: t[rank * per_rank: (rank + 1) * per_rank] for name, t in batch.items()}
            learner.train_step(mine)
        save_file(_state(learner), f"{out_dir}/rank{rank}.safetensors")
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_gloo_processes_equal_one_process_on_the_combined_batch(tmp_path):
    """Spawns 2 CPU processes (~15 s on 2 shared cores, mostly process start-up and imports)."""
    mp.spawn(_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    rank0, rank1 = load_file(tmp_path / "rank0.safetensors"), load_file(tmp_path / "rank1.safetensors")
    assert set(rank0) == set(rank1)
    for name in rank0:  # ranks hold identical weights, EMA and optimizer states
        assert torch.equal(rank0[name], rank1[name]), name

    single = _learner(World())
    for step in range(STEPS):
        single.train_step(make_batch(video_index=VIDEO_INDEX, seed=step))
    reference = _state(single)
    assert set(reference) == set(rank0)
    grads = [name for name in reference if name.startswith("grad.")]
    assert len(grads) > 50 and "grad.discriminator.video_embeddings.weight" in grads
    for name in grads:  # the averaged gradients equal the combined batch's (noise floor: the network's scale)
        network = name.split(".")[1]
        scale = max(reference[g].abs().max().item() for g in grads if g.split(".")[1] == network)
        torch.testing.assert_close(rank0[name], reference[name], rtol=1e-3, atol=1e-5 * scale, msg=name)
    # Weights agree to fp tolerance, except where the gradient is pure rounding noise (biases feeding an
    # instance norm get exactly zero gradient analytically): Adam turns noise into steps of up to ~lr each.
    bound = 4 * 2e-4  # two train steps x two D updates x lr_discriminator
    for name, tensor in reference.items():
        if not name.startswith("grad."):
            torch.testing.assert_close(rank0[name], tensor, rtol=1e-4, atol=bound, msg=name)
    untouched = [i for i in range(NUM_VIDEOS) if i not in VIDEO_INDEX]
    w0 = _learner(World()).video_embeddings.detach()
    assert torch.equal(rank0["discriminator.video_embeddings.weight"][untouched], w0[untouched])


def test_episode_sampler_shards_ranks_and_resumes_mid_stream():
    def take(rank: int, start: int, n: int) -> list[int]:
        sampler = EpisodeSampler(10, World(rank=rank, world_size=2), seed=3, start=start)
        return list(itertools.islice(iter(sampler), n))

    rank0, rank1 = take(0, 0, 5), take(1, 0, 5)
    assert sorted(rank0 + rank1) == list(range(10))  # one epoch: each episode once, on one rank
    assert take(0, 0, 12)[7:] == take(0, 7, 5)  # a resumed stream continues exactly (across epochs)
    assert take(0, 0, 10)[5:] != rank0  # the next epoch is reshuffled
