"""Every rollout strategy by name: the only list of them (the API, the CLI and the docs ask
here)."""

from __future__ import annotations

from modelpilot.errors import ModelpilotError
from modelpilot.rollout._blue_green import BlueGreenDeploy
from modelpilot.rollout._canary import CanaryDeploy
from modelpilot.rollout._direct import DirectDeploy
from modelpilot.rollout._rolling import RollingDeploy
from modelpilot.rollout._shadow import ShadowDeploy
from modelpilot.rollout._shadow_canary import ShadowCanaryDeploy
from modelpilot.rollout._store import RolloutRecord
from modelpilot.rollout._strategy import RolloutStrategy

__all__ = ["STRATEGIES", "strategy_named", "strategy_of"]

_ALL: tuple[RolloutStrategy, ...] = (
    DirectDeploy(),
    ShadowDeploy(),
    CanaryDeploy(),
    ShadowCanaryDeploy(),
    BlueGreenDeploy(),
    RollingDeploy(),
)
_BY_NAME = {strategy.name: strategy for strategy in _ALL}

#: The strategies' names, in the order the docs list them.
STRATEGIES: tuple[str, ...] = tuple(_BY_NAME)


def strategy_named(name: str) -> RolloutStrategy:
    """The strategy called ``name``.

    Examples
    --------
    >>> strategy_named("canary").name
    'canary'
    >>> strategy_named("big-bang")
    Traceback (most recent call last):
    ...
    modelpilot.errors.ModelpilotError: strategy must be one of direct, shadow, canary, \
shadow-canary, blue-green, rolling, got 'big-bang'
    """
    strategy = _BY_NAME.get(name)
    if strategy is None:
        raise ModelpilotError(f"strategy must be one of {', '.join(STRATEGIES)}, got {name!r}")
    return strategy


def strategy_of(record: RolloutRecord) -> RolloutStrategy:
    """The strategy a rollout record runs now (a ``shadow-canary`` past its shadow phase
    runs as a ``canary``)."""
    return strategy_named(record.strategy)
