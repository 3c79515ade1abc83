"""Seeds derived from a recipe's seed: the one rule by which pdekit splits a seed into independent streams.

Every stream is ``numpy.random.SeedSequence([seed, *key])`` for its own key, so two streams with
different keys are statistically independent and none depends on the order they are drawn in.
Keys of member and block indices are one integer long; named streams use three-integer keys
``(stream, index)`` under one of the constants below, so they never meet an index's key.
"""

from __future__ import annotations

import numpy as np

FRONTIER_STREAM = 0xF407
"""Key of the frontier's held-out members (``pdekit.runs.frontier``)."""

ONLINE_VALIDATION_STREAM = 0x7A11D
"""Key of the validation members ``pdekit online`` generates (``pdekit.runs.online``)."""


RESERVOIR_STREAM = 0x5E5E
"""Key of the reservoir seeds of DDP ranks after the first (``pdekit.runs.online``; rank 0 keeps the run's seed)."""

PINN_SAMPLER_STREAM = 0x5A4D
"""Key of a PINN collocation sampler's generator (``pdekit.pinn.samplers``)."""

PINN_CONDITIONS_STREAM = 0x1C0B
"""Key of a PINN's initial- and boundary-condition points (``pdekit.pinn.train``)."""


def derived_seed(seed: int, *key: int, bits: int = 32) -> int:
    """Returns the non-negative ``bits``-bit seed of stream ``key`` of ``seed`` (``bits`` is 32 or 62).

    62 bits fit a signed 64-bit integer with room to spare (the member seeds a store records);
    32 bits suit ``torch.Generator.manual_seed`` and NumPy's legacy seeding alike. A negative ``seed``
    (torch takes any 64-bit one) is read as its 64-bit two's complement.
    """
    sequence = np.random.SeedSequence([seed % 2**64, *key])
    if bits == 32:
        return int(sequence.generate_state(1, np.uint32)[0])
    if bits == 62:
        return int(sequence.generate_state(1, np.uint64)[0] >> np.uint64(2))
    raise ValueError(f"bits must be 32 or 62; got {bits!r}")
