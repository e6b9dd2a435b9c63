"""The paper's loss terms (Eqs. 3-6, 10) as small pure functions; weights are applied in ONE place.

E and G minimise  L = L_CNT + L_ADV + L_MCH  (Eq. 3) with
    L_CNT = w_vgg19 · Σ_l |VGG19_l(x̂) − VGG19_l(x)|₁ + w_vggface · Σ_l |VGGFace_l(x̂) − VGGFace_l(x)|₁
    L_ADV = −D(x̂, y, i) + w_FM · L_FM                      (Eq. 4; L_FM over D's per-block activations)
    L_MCH = w_MCH · |ê_i − W_i|₁                            (Eq. 6; FT variant only)
and D minimises the hinge loss
    L_DSC = max(0, 1 + D(x̂, y, i)) + max(0, 1 − D(x, y, i))  (Eq. 6).

Every function here returns an UNWEIGHTED term (a scalar, mean over the batch); `weighted_sum` is the one
place where the weights from ``LossConfig.resolved_weights()`` are applied. "|a − b|₁" is the mean absolute
difference over all elements of a layer, summed over layers (content) or averaged over blocks (L_FM).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn


def feature_l1(generated: Sequence[torch.Tensor], real: Sequence[torch.Tensor]) -> torch.Tensor:
    """Σ over layers of mean |generated_l − real_l| (real features are treated as constants)."""
    if len(generated) != len(real):
        raise ValueError(f"feature lists differ in length: {len(generated)} generated vs {len(real)} real")
    return sum(F.l1_loss(g, r.detach()) for g, r in zip(generated, real, strict=True))


def content_losses(networks: Mapping[str, nn.Module], generated: torch.Tensor,
                   real: torch.Tensor) -> dict[str, torch.Tensor]:
    """L_CNT per feature network, unweighted: {name: Σ_l |F_l(x̂) − F_l(x)|₁}.

    Each network runs ONCE on generated and real images together ([2B, 3, H, W]).
    """
    batch = generated.shape[0]
    both = torch.cat([generated, real.detach()], dim=0)  # [2B, 3, H, W]
    terms = {}
    for name, network in networks.items():
        features = network(both)
        terms[name] = feature_l1([f[:batch] for f in features], [f[batch:] for f in features])
    return terms


def adversarial_loss(fake_score: torch.Tensor) -> torch.Tensor:
    """−r̂, the realism term of L_ADV (Eq. 4), averaged over the batch. fake_score: [B]."""
    return -fake_score.mean()


def feature_matching_loss(fake_features: Sequence[torch.Tensor], real_features: Sequence[torch.Tensor]) -> torch.Tensor:
    """L_FM: mean over D's residual blocks of mean |D_k(x̂) − D_k(x)| (pix2pixHD; real side constant)."""
    return feature_l1(fake_features, real_features) / len(fake_features)


def embedding_match_loss(embedding: torch.Tensor, video_embedding: torch.Tensor) -> torch.Tensor:
    """L_MCH = |ê_i − W_i|₁ (mean over batch and N). Gradients reach BOTH ê (embedder) and W_i. [B, N] each."""
    return F.l1_loss(embedding, video_embedding)


def identity_contrast_loss(embeddings: torch.Tensor, identities: torch.Tensor,
                           temperature: float = 0.1) -> torch.Tensor:
    """Supervised contrastive identity term on the embedder's per-frame outputs (not in the paper; issue 25).

    ``embeddings`` [B, K, N]: E(x_i(s_k), y_i(s_k)) before Eq. 1's mean; ``identities`` [B]: the person of each
    episode. Over the B·K frames, each frame's cosine similarities to the others (divided by ``temperature``) are
    a softmax, and the term is the mean −log of the share that falls on the frames of the same person
    (Khosla et al. 2020, averaged over positives). Why: the warp family gives E no reason to tell people apart
    (its sources' pixels carry the identity), so ê collapsed and ψ̂ = P ê barely differed between people; this
    asks E for an embedding that names the person. Returns 0 (still connected to the graph) when the batch has
    a single person, as there is nothing to contrast.
    """
    if embeddings.dim() != 3 or identities.shape != embeddings.shape[:1]:
        raise ValueError(f"embeddings must be [B, K, N] and identities [B]; got {tuple(embeddings.shape)} "
                         f"and {tuple(identities.shape)}")
    b, k, _ = embeddings.shape
    if torch.unique(identities).numel() < 2:
        return embeddings.sum() * 0.0
    unit = F.normalize(embeddings.flatten(0, 1).float(), dim=1)  # [B*K, N]
    labels = identities.repeat_interleave(k)  # [B*K]
    logits = unit @ unit.T / temperature  # [B*K, B*K]
    self_pair = torch.eye(b * k, dtype=torch.bool, device=logits.device)
    logits = logits.masked_fill(self_pair, float("-inf"))
    log_share = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    positive = (labels[:, None] == labels[None, :]) & ~self_pair
    counts = positive.sum(1)
    has_positive = counts > 0  # K = 1 with a lone person: that frame has no positive
    if not bool(has_positive.any()):
        return embeddings.sum() * 0.0
    per_frame = -(log_share.masked_fill(~positive, 0.0).sum(1)[has_positive] / counts[has_positive])
    return per_frame.mean()


def prior_pixel_loss(generated: torch.Tensor, real: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
    """Σ prior·|x̂ − x| / (C · Σ prior): L1 over the synthesis prior's pixels, as if they filled the frame (issue 25,
    item 2). generated, real [B, C, H, W]; prior [B, 1, H, W] in [0, 1] (a constant: no gradient reaches it). The
    denominator is at least one pixel, so a batch with (almost) no prior gives (almost) 0, not a division by 0."""
    prior = prior.detach().to(generated.dtype)
    area = prior.sum() * generated.shape[1]
    return (prior * (generated - real).abs()).sum() / area.clamp_min(float(generated.shape[1]))


def discriminator_hinge_loss(real_score: torch.Tensor, fake_score: torch.Tensor) -> dict[str, torch.Tensor]:
    """L_DSC = max(0, 1 + r̂) + max(0, 1 − r), batch means. Returns {"real", "fake", "total"}."""
    real = F.relu(1.0 - real_score).mean()
    fake = F.relu(1.0 + fake_score).mean()
    return {"real": real, "fake": fake, "total": real + fake}


def weighted_sum(terms: Mapping[str, torch.Tensor], weights: Mapping[str, float]) -> torch.Tensor:
    """Σ weights[name] · terms[name] — the ONE place loss weights are applied. Every term needs a weight."""
    missing = [name for name in terms if name not in weights]
    if missing:
        raise KeyError(f"no loss weight for term(s) {missing}; known weights: {sorted(weights)}")
    return sum(weights[name] * value for name, value in terms.items())


def generator_losses(*, content: Mapping[str, torch.Tensor], fake_score: torch.Tensor,
                     fake_features: Sequence[torch.Tensor], real_features: Sequence[torch.Tensor],
                     weights: Mapping[str, float], embedding: torch.Tensor | None = None,
                     video_embedding: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """L = L_CNT + L_ADV (+ L_MCH when ``embedding`` and ``video_embedding`` are given, the FT variant).

    ``content``: `content_losses` output. Returns (weighted total, unweighted terms by name).
    """
    terms = dict(content)
    terms["adversarial"] = adversarial_loss(fake_score)
    terms["feature_matching"] = feature_matching_loss(fake_features, real_features)
    if (embedding is None) != (video_embedding is None):
        raise ValueError("embedding and video_embedding go together (L_MCH needs both)")
    if embedding is not None:
        terms["match"] = embedding_match_loss(embedding, video_embedding)
    return weighted_sum(terms, weights), terms


class ContentLoss(nn.Module):
    """Weighted L_CNT as one callable: ``content_loss(generated, real) -> scalar`` (e.g. for fine-tuning)."""

    def __init__(self, networks: Mapping[str, nn.Module], weights: Mapping[str, float]):
        super().__init__()
        self.networks = nn.ModuleDict(dict(networks))
        self.weights = dict(weights)

    def forward(self, generated: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        return weighted_sum(content_losses(self.networks, generated, real), self.weights)
