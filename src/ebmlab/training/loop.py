"""The iteration driver shared by every trainer: progress bar, callback and periodic checkpoints."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, Protocol

from tqdm.auto import tqdm

from .validation import check_int


class Steppable(Protocol):
    """A trainer: ``step()`` runs one iteration and returns its history row; ``save(path)`` checkpoints."""

    step_count: int
    history: list[dict[str, Any]]

    def step(self) -> dict[str, Any]: ...

    def save(self, path: str | os.PathLike) -> None: ...


def run_loop(
    trainer: Steppable,
    n_iters: int,
    *,
    checkpoint_path: str | os.PathLike | None,
    checkpoint_every: int,
    progress: bool | None,
    desc: str,
    callback: Callable[[Any, dict[str, Any]], None] | None,
    postfix: Callable[[dict[str, Any]], dict[str, str]],
    postfix_every: int = 20,
) -> list[dict[str, Any]]:
    """Iterate until ``trainer.step_count == n_iters`` (a resumed run continues to the same total).

    Checkpoints go to ``checkpoint_path`` every ``checkpoint_every`` iterations and at the end; an
    exception (e.g. DivergenceError) propagates and leaves the last good checkpoint in place.
    ``progress``: tqdm bar on/off (None = only when stderr is a terminal).  ``callback(trainer, row)``
    runs after each iteration; ``postfix(row)`` gives the bar's extra fields.
    """
    check_int("n_iters", n_iters, 0)
    check_int("checkpoint_every", checkpoint_every, 1)
    if n_iters < trainer.step_count:
        raise ValueError(
            f"n_iters={n_iters} is below the {trainer.step_count} iterations already done (a resumed run "
            "continues to n_iters in total); ask for at least that many"
        )
    bar = tqdm(
        total=n_iters,
        initial=trainer.step_count,
        desc=desc,
        disable=None if progress is None else not progress,
        leave=False,
        dynamic_ncols=True,
        mininterval=0.5,
    )
    try:
        while trainer.step_count < n_iters:
            row = trainer.step()
            if callback is not None:
                callback(trainer, row)
            bar.update(1)
            if trainer.step_count % postfix_every == 0:
                bar.set_postfix(postfix(row), refresh=False)
            if checkpoint_path is not None and (
                trainer.step_count % checkpoint_every == 0 or trainer.step_count == n_iters
            ):
                trainer.save(checkpoint_path)
    finally:
        bar.close()
    return trainer.history
