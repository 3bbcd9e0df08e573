"""Success criteria: one named check with its outcome, written the same way in every report.

``passed`` is None when a criterion could not be measured; the detail then says why, and the
line shows ``----`` instead of PASS or FAIL so an unmeasured criterion never reads as met.
"""

from __future__ import annotations

from dataclasses import dataclass

MARKS = {True: "PASS", False: "FAIL", None: "----"}


@dataclass
class Criterion:
    name: str
    passed: bool | None
    detail: str

    def line(self) -> str:
        return f"{MARKS[self.passed]} {self.name}: {self.detail}"


def criteria_lines(criteria: list[Criterion]) -> list[str]:
    return [c.line() for c in criteria]
