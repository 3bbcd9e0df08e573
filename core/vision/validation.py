"""The measured trust of the automatic checks, as data: which readings may verify a cell alone.

An automatic judgement is trusted only as far as it was measured on labelled real photos. The
measurements live in ``validation.yaml`` (written by ``benchmarks/model_card_ceiling.py --write``),
so raising a threshold or retraining a model changes what is automatic by a new measurement, not
by editing code: an expression whose reading reached less than ``min_precision`` (90%) over at
least ``min_reads`` photos is never counted as verified, however confident one reading looks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from ..data.errors import FlenwheelError

VALIDATION_FILE = Path(__file__).resolve().parent / "validation.yaml"


@dataclass(frozen=True)
class Validation:
    """Precision per expression, the gate it must pass, and the views identity may fail a cell at."""

    expression: dict[str, dict[str, Any]] = field(default_factory=dict)
    min_precision: float = 0.9
    min_reads: int = 10
    identity_judged_views: tuple[str, ...] = ()

    def expression_validated(self, word: str) -> bool:
        """Whether a reading of ``word`` may verify an expression cell without a person."""
        row = self.expression.get(word) or {}
        precision = row.get("precision")
        return precision is not None and row.get("reads", 0) >= self.min_reads and precision >= self.min_precision

    def expression_note(self, word: str) -> str:
        """How far a reading of ``word`` was measured to be right, for the check's detail."""
        row = self.expression.get(word) or {}
        if row.get("precision") is None:
            return f"the {word} reading was never measured on labelled photos"
        return (f"the {word} reading was right on {row['right']} of {row['reads']} labelled photos "
                f"({row['precision']:.0%}; automatic from {self.min_precision:.0%} over {self.min_reads}+)")

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Validation:
        return cls(dict(data.get("expression") or {}), float(data.get("min_precision", 0.9)),
                   int(data.get("min_reads", 10)), tuple(data.get("identity_judged_views") or ()))


@cache
def load_validation(path: Path = VALIDATION_FILE) -> Validation:
    """The packaged measurements (cached: the file changes only with a release or a benchmark run)."""
    try:
        return Validation.from_json(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
    except (OSError, yaml.YAMLError, TypeError, ValueError, AttributeError) as exc:
        raise FlenwheelError(f"{path} is not a readable validation table ({exc})") from None
