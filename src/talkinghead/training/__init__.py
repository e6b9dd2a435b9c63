"""Meta-learning (loop, EMA, checkpoints, distributed set-up) and few-shot fine-tuning."""
