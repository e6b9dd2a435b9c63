"""One discriminator update and one generator update: the GAN step shared by meta-learning and fine-tuning.

Meta-learning (`training.loop`, paper §3.2) and fine-tuning (`training.finetune`, §3.3) call the same two
functions. They differ only in what the phases hold and which form of Eq. 5 scores a frame:

    meta-learning   D phase: θ, w0, b (Adam) + W's batch rows (SparseAdam)   r = V(x, y)ᵀ(W_i + w0) + b
                    G phase: E, G, P (Adam) [+ W's rows through L_MCH, FT variant only]
    fine-tuning     D phase: θ, b, w′ (Adam)                                 r = V(x, y)ᵀ w′ + b
                    G phase: G's weights ψ and ψ′ (Adam)

Both updates: one D forward on real and generated frames together ([2B, ...]: spectral norm advances its
power iteration once per training forward), mixed precision (autocast + GradScaler) and the non-finite guard
(`all_finite` over every rank: a non-finite loss changes nothing and returns None) here and nowhere else,
and separate backward passes (never a summed G + D loss).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from talkinghead import losses
from talkinghead.training.distributed import World, all_finite, average_gradients, average_sparse_rows

Batch = dict[str, torch.Tensor]
ContentTerms = Callable[[torch.Tensor, torch.Tensor], dict[str, torch.Tensor]]
"""content(generated [B,3,H,W], real [B,3,H,W]) -> unweighted content terms by loss-weight name."""


@dataclass
class Phase:
    """One side of the GAN: the parameters an update changes, their optimizer and its gradient scaler.

    ``rows``/``rows_optimizer``: W (``discriminator.video_embeddings.weight`` [num_videos, N]) and its
    SparseAdam in meta-learning (its gradient is sparse: one row per episode); None in fine-tuning.
    """

    parameters: list[torch.Tensor]
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    rows: torch.Tensor | None = None
    rows_optimizer: torch.optim.Optimizer | None = None

    def zero_grad(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        if self.rows_optimizer is not None:
            self.rows_optimizer.zero_grad(set_to_none=True)

    def apply(self, loss: torch.Tensor, world: World, rows: bool) -> None:
        """Backward of ``loss`` alone, gradients averaged over ranks, one optimizer step (and W's, if ``rows``)."""
        self.zero_grad()
        self.scaler.scale(loss).backward()
        average_gradients(self.parameters, world)
        self.scaler.step(self.optimizer)
        if rows and self.rows is not None and self.rows_optimizer is not None:
            average_sparse_rows(self.rows, world)
            self.scaler.step(self.rows_optimizer)
        self.scaler.update()


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """Mixed precision for a forward pass: ``dtype`` None = full precision."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def render(generator: nn.Module, landmark_images: torch.Tensor, psi: torch.Tensor,
           batch: Mapping[str, torch.Tensor] | None, sources: int = 0) -> torch.Tensor:
    """x̂ = G(y, ψ) [B, 3, H, W] (Eq. 2), for either generator family: a generator with ``needs_sources``
    (the warp-guided one) also gets its source frames, built from the episode ``batch``."""
    return render_parts(generator, landmark_images, psi, batch, sources)["output"]


def render_parts(generator: nn.Module, landmark_images: torch.Tensor, psi: torch.Tensor,
                 batch: Mapping[str, torch.Tensor] | None, sources: int = 0) -> dict[str, torch.Tensor]:
    """`render` with the warp generator's parts (``output``, ``residual_flow``, ``mask``, ...; only ``output`` for
    the paper's G). ``sources`` > 0: the warp generator takes the first that many episode sources (nearest first:
    ``train.generator_sources``); 0 = all."""
    if not getattr(generator, "needs_sources", False):
        return {"output": generator(landmark_images, psi)}
    if batch is None:
        raise ValueError(f"{type(generator).__name__} needs source frames (needs_sources), but this caller "
                         "has no episode batch to build them from")
    from talkinghead.models.warp_generator import WarpSources  # only the warp family needs it

    chosen = WarpSources.from_batch(batch)
    return generator.render(landmark_images, psi, chosen.first(sources) if sources > 0 else chosen)


def _twice(rows: torch.Tensor | None) -> torch.Tensor | None:
    return None if rows is None else torch.cat([rows, rows])


def discriminator_update(discriminator: nn.Module, phase: Phase, real: torch.Tensor, fake: torch.Tensor,
                         landmark_images: torch.Tensor, world: World, *, video_index: torch.Tensor | None = None,
                         w_prime: torch.Tensor | None = None,
                         autocast_dtype: torch.dtype | None = None) -> dict[str, torch.Tensor] | None:
    """One D update on the hinge loss L_DSC (Eq. 6; Eq. 10 in fine-tuning) on (x, x̂.detach()).

    ``real``, ``fake``, ``landmark_images``: [B, 3, H, W]; score by W's rows ``video_index`` [B] (meta-learning)
    or by ``w_prime`` [N] (fine-tuning). Returns the logged values, or None when the loss is not finite.
    ``discriminator/active`` is the share of V(x, y)'s entries above zero: V ends in a ReLU after sum pooling
    (paper), and when every entry is zero for every input D's score is the constant b, its gradient is zero and it
    cannot come back (stop 24's run lost its D so at step ~3,480, lr 8e-4).
    """
    if fake.requires_grad:
        raise ValueError("discriminator_update needs x̂.detach(): L_DSC must not reach E or G")
    b = real.shape[0]
    with autocast(world.device, autocast_dtype):
        v, _ = discriminator.encode(torch.cat([real, fake]), torch.cat([landmark_images, landmark_images]))
        rows = None if video_index is None else discriminator.video_embeddings(video_index)  # W_i [B, N]
        scores = discriminator.realism(v, _twice(rows), w_prime).float()  # Eq. 5: [2B]
        hinge = losses.discriminator_hinge_loss(real_score=scores[:b], fake_score=scores[b:])
    if not all_finite(hinge["total"], world):
        return None
    phase.apply(hinge["total"], world, rows=True)
    return {"loss/discriminator": hinge["total"].detach(), "loss/discriminator_real": hinge["real"].detach(),
            "loss/discriminator_fake": hinge["fake"].detach(), "score/real": scores[:b].mean().detach(),
            "score/fake": scores[b:].mean().detach(), "discriminator/active": (v.detach() > 0).float().mean()}


def generator_update(discriminator: nn.Module, phase: Phase, generated: torch.Tensor, real: torch.Tensor,
                     landmark_images: torch.Tensor, world: World, *, content: ContentTerms,
                     weights: Mapping[str, float], video_index: torch.Tensor | None = None,
                     w_prime: torch.Tensor | None = None, embedding: torch.Tensor | None = None,
                     autocast_dtype: torch.dtype | None = None,
                     measure_gradients: bool = False) -> dict[str, torch.Tensor] | None:
    """One G update on L_CNT + L_ADV (+ L_MCH when ``embedding`` ê_i [B, N] is given: FT meta-learning), with D
    frozen: θ, w0, b get no gradient, and the score uses W_i.detach() (or w′.detach()), so W moves only through
    L_MCH. ``generated`` = x̂ with its graph [B, 3, H, W]; weights as `LossConfig.resolved_weights()`.
    Returns the logged values, or None when the loss is not finite. ``measure_gradients``: also log each weighted
    term's gradient norm with respect to x̂ (``grad/NAME``) and its ratio to the pixel term's (``grad_ratio/NAME``)
    (`gradient_norms`).
    """
    b = generated.shape[0]
    use_match = embedding is not None
    discriminator.requires_grad_(False)  # θ, w0, b get no gradient from the generator's losses ...
    if phase.rows is not None:
        phase.rows.requires_grad_(use_match)  # ... and W only through L_MCH
    try:
        with autocast(world.device, autocast_dtype):
            v, features = discriminator.encode(torch.cat([generated, real]),
                                               torch.cat([landmark_images, landmark_images]))
            rows = None if video_index is None else discriminator.video_embeddings(video_index)  # W_i [B, N]
            fake_score = discriminator.realism(
                v[:b], None if rows is None else rows.detach(), None if w_prime is None else w_prime.detach()
            ).float()  # r̂ (Eq. 5), W_i / w′ held fixed here
            total, terms = losses.generator_losses(
                content={name: value.float() for name, value in content(generated, real).items()},
                fake_score=fake_score,
                fake_features=[f[:b].float() for f in features], real_features=[f[b:].float() for f in features],
                weights=weights,
                embedding=embedding.float() if use_match else None,
                video_embedding=rows.float() if use_match and rows is not None else None,
            )
        if not all_finite(total, world):
            return None
        measured = gradient_norms(terms, weights, generated) if measure_gradients else {}
        phase.apply(total, world, rows=use_match)  # L_MCH pulls W_i toward ê_i (and ê_i toward W_i)
    finally:
        discriminator.requires_grad_(True)
    logs = {f"loss/{name}": value.detach() for name, value in terms.items()}
    logs.update(measured)
    logs["loss/generator"] = total.detach()
    return logs


def gradient_norms(terms: Mapping[str, torch.Tensor], weights: Mapping[str, float],
                   generated: torch.Tensor) -> dict[str, torch.Tensor]:
    """|∂(w · term)/∂x̂| (L2 over the batch) of each weighted term that reaches x̂, and its ratio to the pixel
    term's: how much each term steers the generated pixels (issue 25: "is the adversarial term alive?").
    Every image term reaches E and G through x̂, so these norms compare their pull on G; terms that do not pass
    through x̂ (L_MCH, the flow's smoothness) are left out."""
    logs: dict[str, torch.Tensor] = {}
    for name, value in terms.items():
        weight = float(weights.get(name, 0.0))
        if weight == 0 or not value.requires_grad:
            continue
        (gradient,) = torch.autograd.grad(weight * value, generated, retain_graph=True, allow_unused=True)
        if gradient is not None:
            logs[f"grad/{name}"] = gradient.detach().float().norm()
    reference = logs.get("grad/pixel")
    if reference is not None and float(reference) > 0:
        for key in [k for k in logs if k != "grad/pixel"]:
            logs["grad_ratio/" + key.split("/", 1)[1]] = logs[key] / reference
    return logs
