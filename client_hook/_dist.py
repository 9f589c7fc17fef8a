"""Which process of a distributed job this is, without starting anything."""

from __future__ import annotations

import sys

from ._settings import ClientSettings


def rank_and_world(settings: ClientSettings) -> tuple[int, int]:
    """``(rank, world_size)`` from ``torch.distributed`` if it is up, else from the environment.

    torch is only consulted when the training script has imported it already,
    so a run started with ``fitscope.init`` alone never imports it.
    """
    dist = sys.modules.get("torch.distributed")
    try:
        if dist is not None and dist.is_available() and dist.is_initialized():
            return int(dist.get_rank()), int(dist.get_world_size())
    except Exception:  # a half-initialised process group: fall back to the environment
        pass
    rank = settings.rank if settings.rank is not None else 0
    world = settings.world_size if settings.world_size is not None else 1
    return rank, max(world, 1)
