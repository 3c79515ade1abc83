"""A shuffling sampler whose order depends only on ``(seed, epoch)``, sharded across DDP processes."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
from torch.utils.data import Sampler


def shard(order: list[int], rank: int, replicas: int) -> list[int]:
    """Returns process ``rank``'s share of ``order``: every ``replicas``-th index, padded by wrapping so all shares are equal.

    Interleaving keeps each global batch of ``replicas * b`` consecutive indices split as ``b`` per
    process, so DDP over ``replicas`` processes sees the same global batches as one process.

    Args:
        order: the whole epoch's indices.
        rank: this process's rank, in ``[0, replicas)``.
        replicas: the number of processes.

    Returns:
        ``ceil(len(order) / replicas)`` indices.
    """
    if replicas == 1:
        return order
    total = math.ceil(len(order) / replicas) * replicas
    padded = order + order[: total - len(order)]
    return padded[rank::replicas]


class EpochSampler(Sampler[int]):
    """Every index once per epoch, in an order set by ``(seed, epoch)`` alone, so a resumed run replays it.

    ``set_epoch`` (called by the Trainer) picks the epoch; ``rank``/``replicas`` shard it for DDP.

    Args:
        length: the number of indices, ``0 .. length - 1``.
        shuffle: False visits them in order.
        seed: with the epoch, sets the order.
        rank: this process's rank under DDP.
        replicas: the number of DDP processes.
    """

    def __init__(self, length: int, *, shuffle: bool = True, seed: int = 0, rank: int = 0, replicas: int = 1):
        self.length, self.shuffle, self.seed, self.rank, self.replicas = length, shuffle, seed, rank, replicas
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Makes the next iteration the order of ``epoch``."""
        self.epoch = epoch

    def __len__(self) -> int:
        return math.ceil(self.length / self.replicas)

    def __iter__(self) -> Iterator[int]:
        order = np.random.default_rng([self.seed, self.epoch]).permutation(self.length) if self.shuffle else np.arange(self.length)
        return iter(shard(order.tolist(), self.rank, self.replicas))
