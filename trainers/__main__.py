"""Entry point: ``python -m flenwheel.trainers FAMILY --config cfg.yaml`` (torchrun works too).

FAMILY is any registered model family name or alias (``flenwheel models`` lists them).
"""

from __future__ import annotations

import argparse
import sys

from ..core.models.registry import accepted_names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m flenwheel.trainers",
        description="Train a LoRA for a registered model family; JSON-lines events on stdout.",
    )
    parser.add_argument("kind", choices=accepted_names(), help="which model family to train")
    parser.add_argument("--config", required=True, help="YAML config (see docs/training.md)")
    args = parser.parse_args(argv)

    from .protocol import Reporter
    from .run import protocol_stream, run_job

    return run_job(args.kind, args.config, Reporter(stream=protocol_stream()))


if __name__ == "__main__":
    sys.exit(main())
