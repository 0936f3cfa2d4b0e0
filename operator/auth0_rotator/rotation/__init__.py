"""Rotations: a journal driver and one module per strategy.

- :mod:`.driver` — claim, resume, fenced phase writes, crash points and the
  common tail (verify, write the target Secret, restart, deliver, close);
- :mod:`.strategy` — what a strategy provides (:class:`Strategy`);
- :mod:`.generate`, :mod:`.rotate`, :mod:`.keypair`, :mod:`.announce` — the
  strategies, one module each (:mod:`.gate`: waiting for a rollout);
- :mod:`.staging` — the staging Secret; :mod:`.delivery` — ``auth0Targets``.

Adding a strategy is one module, one line in :data:`STRATEGIES`, and its value
in the CRD's ``spec.strategy`` enum.
"""

from __future__ import annotations

from auth0_rotator.rotation.announce import Announce
from auth0_rotator.rotation.generate import Generate
from auth0_rotator.rotation.keypair import KeyPair
from auth0_rotator.rotation.rotate import Rotate
from auth0_rotator.rotation.strategy import Strategy

__all__ = ["STRATEGIES"]

STRATEGIES: dict[str, Strategy] = {
    "Generate": Generate(),
    "Rotate": Rotate(),
    "KeyPair": KeyPair(),
    "Announce": Announce(),
}
"""Every strategy, by its ``spec.strategy`` name (``Announce``: ``Generate`` with
``announce: true``, see :attr:`ClientSecretSpec.rotation_strategy`)."""
