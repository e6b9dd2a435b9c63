"""Meta-learning step time, images/s and peak memory (one full step: E on B·K frames, G, 2 D updates, 1 E/G
update with the content loss), batch 2, K = 8.

Content-loss networks: VGG19 + VGGFace with random weights (the paper's loss costs the same whatever the
weights; none ship offline) and, for comparison, the offline MobileNetV2.

Memory on CPU: ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` — the process's peak resident set size after the
step, and its growth during the step (0 when an earlier case already reached a higher peak). tracemalloc is
not used: it does not see torch's C++ allocations. On CUDA: ``torch.cuda.max_memory_allocated``.
"""

from __future__ import annotations

import resource
import sys
import time

import torch

from benchmarks.cases import case
from talkinghead.config import apply_overrides, preset
from talkinghead.models import Discriminator, Embedder, Generator
from talkinghead.models.feature_networks import MobileNetV2Features, VGG19Features, VGGFaceFeatures
from talkinghead.training.loop import MetaLearner


def _peak_rss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB on Linux


def _batch(size: int, k: int, b: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)

    def rand(*shape):
        return torch.rand(*shape, generator=generator) * 2 - 1

    return {"source_images": rand(b, k, 3, size, size), "source_landmark_images": rand(b, k, 3, size, size),
            "target_image": rand(b, 3, size, size), "target_landmark_image": rand(b, 3, size, size),
            "video_index": torch.arange(b)}


def _measure(preset_name: str, feature_network: str, steps: int, batch_size: int = 2, k: int = 8,
             compiled: bool = False) -> dict:
    config = apply_overrides(preset(preset_name), [f"train.batch_size={batch_size}", f"data.frames_per_episode={k}"])
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    networks = ({"vgg19": VGG19Features().freeze(), "vggface": VGGFaceFeatures().freeze()}
                if feature_network == "vgg" else {"mobilenet": MobileNetV2Features().freeze()})
    from talkinghead.training.distributed import World

    torch.manual_seed(0)
    learner = MetaLearner(config, Embedder(config.model), Generator(config.model), Discriminator(config.model, 16),
                          networks, World(device=device))
    batch = _batch(config.model.image_size, k, batch_size)
    compile_s = None
    if compiled:  # torch.compile of the three networks' forwards (the loop stays eager); the first step compiles
        for name in ("embedder", "generator", "discriminator"):
            module = getattr(learner, name)
            module.forward = torch.compile(module.forward)
        started = time.perf_counter()
        learner.train_step(batch)
        compile_s = round(time.perf_counter() - started, 1)
    rss_before = _peak_rss_mib()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(steps):
        started = time.perf_counter()
        learner.train_step(batch)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    best = min(times)
    figures = {
        "device": str(device), "threads": torch.get_num_threads(), "batch": batch_size, "k": k,
        "feature_network": feature_network, "steps_timed": steps, "step_s_runs": [round(t, 3) for t in times],
        "step_s_best": round(best, 3), "images_per_s": round(batch_size / best, 3),
        "source_frames_per_s": round(batch_size * k / best, 2), "compiled": compiled,
    }
    if compile_s is not None:
        figures["first_step_with_compile_s"] = compile_s
    if device.type == "cuda":
        figures["peak_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 3)
    else:
        figures["peak_rss_mib"] = round(_peak_rss_mib(), 1)
        figures["peak_rss_growth_mib"] = round(_peak_rss_mib() - rss_before, 1)
    return figures


@case("training_step_tiny64")
def training_step_tiny64() -> dict:
    """tiny-64 meta-learning step, batch 2, K=8: VGG (paper loss) vs MobileNetV2 (offline), eager and compiled."""
    figures = {"mobilenet": _measure("tiny-64", "mobilenet", steps=3),  # smaller peak first: both growths seen
               "vgg": _measure("tiny-64", "vgg", steps=3)}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # on shared cores, 2 OpenMP threads can be far slower than 1 (spin-waiting)
    try:
        figures["one_thread"] = {name: _measure("tiny-64", name, steps=3) for name in ("mobilenet", "vgg")}
    finally:
        torch.set_num_threads(threads)
    try:
        figures["compiled"] = _measure("tiny-64", "mobilenet", steps=3, compiled=True)
    except Exception as error:  # report, never hide: compiling needs a working C++ toolchain
        figures["compiled"] = {"error": f"{type(error).__name__}: {str(error)[:300]}"}
    eager = figures["mobilenet"]["step_s_best"]
    if "step_s_best" in figures["compiled"]:
        figures["compiled_speedup"] = round(eager / figures["compiled"]["step_s_best"], 2)
    return {**figures,
            "memory_method": "ru_maxrss (CPU) / max_memory_allocated (CUDA)"}


@case("training_step_paper256")
def training_step_paper256() -> dict:
    """paper-256 meta-learning step, batch 2, K=8, VGG19+VGGFace loss; ONE step on CPU (shared cores), 3 on GPU."""
    steps = 3 if torch.cuda.is_available() else 1
    figures = _measure("paper-256", "vgg", steps=steps)
    figures["target_peak_gib"] = 8.0  # issue: within 8 GB at batch 2, K = 8 (best-known re-implementation: 8 GB)
    figures["memory_method"] = "ru_maxrss (CPU) / max_memory_allocated (CUDA)"
    return figures
