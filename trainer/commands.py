"""``altcap train`` and ``altcap sample``: their options, and what they print. Light to import
(torch loads only when a command runs), so the ``altcap`` command starts fast."""

from __future__ import annotations

import sys


def train_arguments(parser) -> None:
    parser.add_argument("--config", metavar="FILE", help="YAML mapping of the training settings (trainer/train.py)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override one setting, e.g. --set max_steps=2000")


def run_train(args) -> int:
    """Train; a user error ends in one line and exit status 2."""
    import yaml

    from tokens import TokenizerError
    from tokens.manifest import TokenizerMismatch
    from trainer.train import TrainConfigError, load_train_config, train

    try:
        train(load_train_config(args.config, args.set))
    except (TrainConfigError, TokenizerError, TokenizerMismatch, OSError, yaml.YAMLError) as err:
        print(f"altcap train: error: {err}", file=sys.stderr)
        return 2
    return 0


def sample_arguments(parser) -> None:
    parser.add_argument("--checkpoint", required=True, metavar="DIR", help="a checkpoint folder altcap train wrote")
    parser.add_argument("--prompt", required=True)
    parser.add_argument("-n", type=int, default=16, help="images to draw (default 16)")
    parser.add_argument("--keep", type=int, default=4, help="the best by CLIP score to keep (default 4)")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--top-k", type=int, default=None)
    parser.add_argument("--top-p", type=float, default=None)
    parser.add_argument("--guidance", type=float, default=3.0, help="classifier-free guidance scale (1: none)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--clip-model", default="ViT-B-32", help="open_clip name, hf-hub:... or local-dir:...")
    parser.add_argument("--clip-pretrained", default="openai", help="an open_clip tag or a checkpoint file")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--png", metavar="FILE", help="where to write the grid (default: beside the checkpoint)")


def run_sample(args) -> int:
    """Sample; prints the grid's path and the kept images' CLIP scores."""
    from tokens import TokenizerError
    from tokens.manifest import TokenizerMismatch
    from trainer.sample import sample

    if not 0 < args.keep <= args.n:
        print("altcap sample: error: --keep must be between 1 and -n", file=sys.stderr)
        return 2
    try:
        found = sample(args.checkpoint, args.prompt, n=args.n, keep=args.keep, temperature=args.temperature,
                       top_k=args.top_k, top_p=args.top_p, guidance=args.guidance, seed=args.seed,
                       clip_model=args.clip_model, clip_pretrained=args.clip_pretrained or None,
                       device=args.device, png=args.png)
    except (OSError, TokenizerError, TokenizerMismatch) as err:
        print(f"altcap sample: error: {err}", file=sys.stderr)
        return 2
    scores = ", ".join(f"{score:.3f}" for score in found.scores)
    print(f"kept {len(found.scores)} of {args.n}, CLIP scores {scores}: {found.png}")
    return 0
