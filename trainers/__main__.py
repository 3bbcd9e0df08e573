"""Entry point: ``python -m flenwheel.trainers flux|qwen-edit --config cfg.yaml`` (torchrun works too)."""

from __future__ import annotations

import argparse
import sys

from .config import KINDS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m flenwheel.trainers",
        description="Train a FLUX or Qwen-Image-Edit LoRA; JSON-lines events on stdout.",
    )
    parser.add_argument("kind", choices=KINDS, help="which trainer")
    parser.add_argument("--config", required=True, help="YAML config (see docs/training.md)")
    args = parser.parse_args(argv)

    from .protocol import Reporter
    from .run import protocol_stream, run_job

    return run_job(args.kind, args.config, Reporter(stream=protocol_stream()))


if __name__ == "__main__":
    sys.exit(main())
