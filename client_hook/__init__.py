"""fitscope: training diagnostics for PyTorch.

    import fitscope
    run = fitscope.watch(model, optimizer, criterion)

records losses, gradient norms, learning rates and validation statistics from
an unchanged training loop and streams them to a fitscope server.
"""

from __future__ import annotations

from typing import Any

from ._run import Run

__all__ = ["Run", "init", "watch", "__version__"]
__version__ = "0.1.0"


def init(
    project: str | None = None,
    name: str | None = None,
    config: dict | None = None,
    url: str | None = None,
    rules: dict | None = None,
    tags: list[str] | tuple[str, ...] | None = None,
    **options: Any,
) -> Run:
    """Start a run without hooks (log custom values with ``run.log``).

    ``tags`` label the run in the dashboard's runs table (searchable, editable there).

    ``rules`` adjusts the server's diagnosis for this run: ``{"plateau": False}`` switches a
    rule off, ``{"overfitting": {"gl_warn": 0.1}}`` changes a threshold. ``all_ranks=True``
    records every process of a distributed job rather than rank 0 alone (also
    ``FITSCOPE_ALL_RANKS=1``).
    """
    return Run(
        project=project, name=name, config=config, url=url, rules=rules, tags=tags, **options
    )


def watch(
    model: Any,
    optimizer: Any = None,
    criterion: Any = None,
    *,
    project: str | None = None,
    name: str | None = None,
    config: dict | None = None,
    url: str | None = None,
    rules: dict | None = None,
    tags: list[str] | tuple[str, ...] | None = None,
    **options: Any,
) -> Run:
    """Start a run and capture ``model``'s training automatically (``rules`` and ``tags`` as
    in ``init``)."""
    run = init(
        project=project, name=name, config=config, url=url, rules=rules, tags=tags, **options
    )
    return run.watch(model, optimizer, criterion)
