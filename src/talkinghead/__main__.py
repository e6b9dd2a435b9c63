"""`python -m talkinghead` (also what `torchrun -m talkinghead train ...` runs)."""

from talkinghead.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
