"""Give a training checkpoint back a live projection discriminator (the recipe of the stop-29 model).

The paper's V(x, y) ends in a ReLU after sum pooling; when every entry is zero for every input, D scores every frame
with its bias b, gets no gradient and never recovers (`discriminator/active` reaches 0 and training warns). The run
behind the stop-29 model lost its D so at step ~3,480 (lr 8e-4). This script writes a copy of a training checkpoint
whose D weights (V's θ, w0, b; not W, whose rows belong to the run's videos) come from an earlier export or
training checkpoint of the same architecture where D was alive. Everything else (E, G, EMA, W, the optimizers'
state, the lip discriminator and its pool, RNG, step) is kept, so `talkinghead train --resume auto` continues the
run from it (put it in the new run directory's checkpoints/ folder).

    python scripts/revive-discriminator.py RUN/checkpoints/training-00004600.safetensors ALIVE.safetensors \\
        NEW_RUN/checkpoints/training-00004600.safetensors
"""

from __future__ import annotations

import argparse
from pathlib import Path

from talkinghead.checkpoint import load_checkpoint, save_checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="the training checkpoint whose D died")
    parser.add_argument("alive", help="an export or training checkpoint of the same model with a live D")
    parser.add_argument("output", help="the new training checkpoint (refused if it exists)")
    args = parser.parse_args()
    output = Path(args.output)
    if output.exists():
        raise SystemExit(f"{output} exists; choose a new path")
    checkpoint = load_checkpoint(args.checkpoint, expected_kind="training")
    alive = load_checkpoint(args.alive, expected_model=checkpoint.config.model)
    tensors = dict(checkpoint.tensors)
    taken = [name for name in alive.tensors
             if name.startswith("discriminator.") and not name.startswith("discriminator.video_embeddings.")]
    if not taken:
        raise SystemExit(f"{args.alive} holds no discriminator weights")
    for name in taken:
        if name not in tensors or tensors[name].shape != alive.tensors[name].shape:
            raise SystemExit(f"{args.alive}: {name} does not match {args.checkpoint}")
        tensors[name] = alive.tensors[name].clone()
    metadata = {**checkpoint.metadata, "revived_discriminator_from": str(args.alive)}
    output.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(output, tensors, checkpoint.config, kind="training", metadata=metadata)
    print(f"{output}: {len(taken)} discriminator tensors from {args.alive}; the rest from {args.checkpoint}")


if __name__ == "__main__":
    main()
