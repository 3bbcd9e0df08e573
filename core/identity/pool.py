"""Identity scores on every CPU core: dlib's HOG detector and its encoder use one core each.

``score_files`` scores image files in a pool of worker processes, each holding its own copy of the
scorer (its references), and returns the scores in the order of the files, exactly the scores one
process gives: every image is scored by the same code with the same settings, only elsewhere.

Workers are forked when this process holds nothing a fork can break (torch not imported, one
thread: the ``flenwheel filter`` command): they start at once and share the face models already
loaded. Anywhere else (ComfyUI, a script that uses torch) they are started with ``spawn``, since a
forked copy of a process with CUDA or torch's threads can deadlock; each then loads
face_recognition's models, about a second. So a handful of images is scored in this process
unless a worker count is asked for.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from ..data.errors import FlenwheelError
from .identity import IdentityScore, IdentityScorer

#: Below this many images per worker, the pool's start-up costs more than it saves.
MIN_PER_WORKER = 4
_SCORER: IdentityScorer | None = None


def cpu_cores() -> int:
    """The cores this process may run on (a container's or taskset's limit, not the machine's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def check_workers(workers: int | None) -> int:
    """``None`` or 0 means every core; a negative count is a mistake worth naming."""
    if workers is None or workers == 0:
        return cpu_cores()
    if workers < 0:
        raise FlenwheelError(f"workers must be 0 (every core) or a positive count, not {workers}")
    return workers


def fork_is_safe() -> bool:
    """True where a forked worker cannot inherit a lock or device it would deadlock on."""
    return ("fork" in multiprocessing.get_all_start_methods() and "torch" not in sys.modules
            and threading.active_count() == 1)


def _context() -> multiprocessing.context.BaseContext:
    return multiprocessing.get_context("fork" if fork_is_safe() else "spawn")


def _start(scorer: IdentityScorer) -> None:
    global _SCORER
    _SCORER = scorer


def _score(path: str) -> IdentityScore:
    scorer: IdentityScorer = _SCORER  # type: ignore[assignment]  # set by _start in every worker
    return scorer.score_path(path)


def iter_scores(scorer: IdentityScorer, paths: Sequence[str | Path], workers: int | None = 1,
                ) -> Iterator[IdentityScore]:
    """The score of each file, in order, as soon as it (and every file before it) is scored."""
    count = min(check_workers(workers), len(paths))
    if not workers:
        count = min(count, max(1, len(paths) // MIN_PER_WORKER))
    if count <= 1:
        for path in paths:
            yield scorer.score_path(path)
        return
    pool = ProcessPoolExecutor(count, mp_context=_context(), initializer=_start, initargs=(scorer,))
    try:
        yield from pool.map(_score, [str(path) for path in paths], chunksize=1)
    finally:  # an interrupted caller closes this generator: drop the images not started yet
        pool.shutdown(wait=True, cancel_futures=True)


def score_files(scorer: IdentityScorer, paths: Sequence[str | Path], workers: int | None = 1,
                ) -> list[IdentityScore]:
    """Every file's score, in order, on ``workers`` processes (None or 0: every core)."""
    return list(iter_scores(scorer, paths, workers))
