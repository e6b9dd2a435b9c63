"""Ways to run a generator for inference, behind one call: ``run(landmark_images, psi, sources) -> images``.

    run = build_runtime(avatar.generator, "onnx", example)   # example: (landmark_images, psi, sources)
    images = run(landmark_images, psi, sources)              # [B, 3, S, S] in [-1, 1], as the generator gives

Kinds (`RUNTIMES`; `benchmarks/cases/realtime.py` measures each on this machine, issue 17):

* ``eager``: the PyTorch module under ``torch.inference_mode`` in channels-last memory (what `Avatar` does);
* ``eager-contiguous``: the same in the default (NCHW) memory format, for comparison;
* ``torchscript``: ``torch.jit.trace`` of the module (the default for the warp family: `DEFAULT_RUNTIME`);
* ``compile``: ``torch.compile`` (Inductor; needs a C++ compiler; the first calls compile, for minutes on CPU);
* ``onnx``: exported to ONNX (opset 17: GridSample is opset 16+) and run by ONNX Runtime (the optional
  ``onnx`` extra: ``pip install 'talkinghead[onnx]'``).

A traced or exported runtime is specialised to the example's shapes (batch, N sources, S): build it for the shapes
it will serve. Outputs agree with eager PyTorch within `TOLERANCE` (tests/test_realtime.py).
"""

from __future__ import annotations

import io
import logging
import warnings
from collections.abc import Callable

import torch
from torch import nn

from talkinghead.models.warp_generator import WarpSources

log = logging.getLogger(__name__)

RUNTIMES = ("eager", "eager-contiguous", "torchscript", "compile", "onnx")
DEFAULT_RUNTIME = "torchscript"
"""What `Avatar` renders the warp family with: the fastest by measurement on the project's 2-core CPU (issue 17,
``python benchmarks/run.py --case realtime_runtimes``: TorchScript 22 ms vs eager channels-last 25 ms a frame
at warp-256, 11.5 vs 21.5 ms at warp-128, 1 thread beside a training run); identical outputs here."""
TOLERANCE = 1e-4
"""Largest absolute difference from eager PyTorch allowed on the generator's [-1, 1] output (fp32 reordering);
well under half a grey level (1 / 255 ≈ 0.0039 in [0, 1], 0.0078 in [-1, 1])."""
ONNX_OPSET = 17

Runtime = Callable[[torch.Tensor, torch.Tensor, "WarpSources | None"], torch.Tensor]
"""run(landmark_images [B, 3, S, S], psi [B, P], sources or None) -> images [B, 3, S, S]."""


class TensorGenerator(nn.Module):
    """The generator with tensors only in its signature (what tracing and ONNX export need):
    (landmark_images, psi[, images, landmark_images of the sources, grids, distances]) -> images."""

    def __init__(self, generator: nn.Module, optional: tuple[str, ...] = ()) -> None:
        """``optional``: the optional `WarpSources` fields the tensors after the four required ones are, in order
        (`_optional_fields`)."""
        super().__init__()
        self.generator = generator
        self.needs_sources = bool(getattr(generator, "needs_sources", False))
        self.optional = tuple(optional)

    def forward(self, landmark_images: torch.Tensor, psi: torch.Tensor, *sources: torch.Tensor) -> torch.Tensor:
        if self.needs_sources:
            required, extra = sources[:4], sources[4:]
            return self.generator(landmark_images, psi,
                                  WarpSources(*required, **dict(zip(self.optional, extra, strict=True))))
        return self.generator(landmark_images, psi)


def _optional_fields(sources: WarpSources | None) -> tuple[str, ...]:
    """The optional `WarpSources` fields present (detail images to render at another size, the rule's weights,
    the synthesis prior), in `WarpSources.OPTIONAL` order."""
    return () if sources is None else tuple(name for name in WarpSources.OPTIONAL if getattr(sources, name) is not None)


def _inputs(landmark_images: torch.Tensor, psi: torch.Tensor, sources: WarpSources | None) -> tuple:
    extra = () if sources is None else (sources.images, sources.landmark_images, sources.grids, sources.distances)
    extra += tuple(getattr(sources, name) for name in _optional_fields(sources))
    return (landmark_images, psi, *extra)


def available(kind: str) -> bool:
    """Whether ``kind`` can run here (ONNX Runtime and the exporter's onnx package are optional)."""
    if kind != "onnx":
        return kind in RUNTIMES
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def build_runtime(generator: nn.Module, kind: str, example: tuple, threads: int | None = None) -> Runtime:
    """A `Runtime` of ``kind`` for ``generator`` (in eval mode), traced or exported at ``example`` =
    (landmark_images, psi, sources or None) when the kind needs it. threads: ONNX Runtime's intra-op threads
    (default: torch's)."""
    if kind not in RUNTIMES:
        raise ValueError(f"runtime must be one of {list(RUNTIMES)}, got {kind!r}")
    generator = generator.eval()
    module = TensorGenerator(generator, _optional_fields(example[2])).eval()
    inputs = _inputs(*example)
    if kind in ("eager", "eager-contiguous"):
        memory = torch.channels_last if kind == "eager" else torch.contiguous_format
        generator.to(memory_format=memory)

        def run_eager(landmark_images, psi, sources=None):
            with torch.inference_mode():
                return module(landmark_images.contiguous(memory_format=memory), psi, *_inputs(
                    landmark_images, psi, sources)[2:])
        return run_eager
    if kind == "torchscript":
        generator.to(memory_format=torch.channels_last)
        # Not frozen: the traced module shares the generator's parameters, so it follows later weight changes.
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)  # shape checks are fixed at these shapes
            traced = torch.jit.trace(module, inputs, check_trace=False)

        def run_traced(landmark_images, psi, sources=None):
            with torch.inference_mode():
                return traced(*_inputs(landmark_images, psi, sources))
        return run_traced
    if kind == "compile":
        generator.to(memory_format=torch.channels_last)
        compiled = torch.compile(module, dynamic=False)

        def run_compiled(landmark_images, psi, sources=None):
            with torch.inference_mode():
                return compiled(*_inputs(landmark_images, psi, sources))
        return run_compiled
    return _onnx_runtime(module, inputs, threads)


class GeneratorRunner:
    """``runner(landmark_images, psi, sources or None) -> images``: the generator run by ``kind``, built on first
    use for each set of input shapes and devices (a traced runtime is specialised to its shapes: batch, N, S)."""

    def __init__(self, generator: nn.Module, kind: str = DEFAULT_RUNTIME) -> None:
        if kind not in RUNTIMES:
            raise ValueError(f"runtime must be one of {list(RUNTIMES)}, got {kind!r}")
        self.generator = generator
        self.kind = kind
        self._built: dict[tuple, Runtime] = {}

    def __call__(self, landmark_images: torch.Tensor, psi: torch.Tensor,
                 sources: WarpSources | None = None) -> torch.Tensor:
        inputs = _inputs(landmark_images, psi, sources)
        key = tuple((tuple(t.shape), t.dtype, t.device) for t in inputs)
        run = self._built.get(key)
        if run is None:
            with torch.inference_mode(False):
                run = self._built[key] = build_runtime(self.generator, self.kind, (landmark_images, psi, sources))
        return run(landmark_images, psi, sources)


def _onnx_runtime(module: nn.Module, inputs: tuple, threads: int | None) -> Runtime:
    if not available("onnx"):
        raise RuntimeError("the onnx runtime needs ONNX Runtime and onnx: pip install 'talkinghead[onnx]'")
    import onnxruntime

    names = ["landmark_images", "psi", "source_images", "source_landmark_images", "grids", "distances",
             *module.optional][:len(inputs)]
    buffer = io.BytesIO()
    contiguous = tuple(t.contiguous() for t in inputs)
    with torch.no_grad():
        torch.onnx.export(module, contiguous, buffer, input_names=names, output_names=["images"],
                          opset_version=ONNX_OPSET, dynamo=False)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = onnxruntime.InferenceSession(buffer.getvalue(), options, providers=["CPUExecutionProvider"])

    wanted = {node.name for node in session.get_inputs()}  # the exporter drops inputs the graph does not read
    # (the distances, when the rule's weights are given)

    def run_onnx(landmark_images, psi, sources=None):
        feed = {name: t.detach().contiguous().cpu().numpy()
                for name, t in zip(names, _inputs(landmark_images, psi, sources), strict=True) if name in wanted}
        return torch.from_numpy(session.run(None, feed)[0])
    return run_onnx


__all__ = ["DEFAULT_RUNTIME", "ONNX_OPSET", "RUNTIMES", "TOLERANCE", "GeneratorRunner", "Runtime", "TensorGenerator",
           "available", "build_runtime"]
