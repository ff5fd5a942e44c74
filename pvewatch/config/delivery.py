"""The framework-owned delivery keys of every sink (read by `pvewatch.deliver`):

    sinks:
      hook:
        type: webhook
        retry: {initial_secs: 1, max_secs: 3600, max_attempts: 20, max_age_secs: 86400}
        concurrency: 4          # sends in flight at once (different resources)
        max_per_minute: 60      # messages per minute; 0 = no limit
        group_wait_secs: 5      # chat formats: how long a burst collects

A key left out keeps None in `DeliveryConfig` where its default depends on the sink
(`pvewatch.deliver.settings.settings_for`).
"""

from __future__ import annotations

from collections.abc import Mapping

from pvewatch.config.reading import (
    Ctx,
    get_integer,
    get_mapping,
    get_number,
    join,
)
from pvewatch.config.types import DeliveryConfig, RetryConfig
from pvewatch.config.values import (
    RETRY_INITIAL_SECS,
    RETRY_MAX_AGE_SECS,
    RETRY_MAX_ATTEMPTS,
    RETRY_MAX_SECS,
    Bounds,
    below_initial,
)

DELIVERY_KEYS = frozenset({"retry", "concurrency", "max_per_minute", "group_wait_secs"})
_RETRY_KEYS = frozenset({"initial_secs", "max_secs", "max_attempts", "max_age_secs"})
_DEFAULT_RETRY = RetryConfig()


def delivery_options(ctx: Ctx, path: str, m: Mapping[str, object]) -> DeliveryConfig:
    concurrency, per_minute = m.get("concurrency"), m.get("max_per_minute")
    group_wait = m.get("group_wait_secs")
    return DeliveryConfig(
        retry=_retry(ctx, join(path, "retry"), m.get("retry")),
        concurrency=(
            None
            if concurrency is None
            else get_integer(ctx, join(path, "concurrency"), concurrency, 1, 1, 64)
        ),
        max_per_minute=(
            None
            if per_minute is None
            else get_integer(ctx, join(path, "max_per_minute"), per_minute, 0, 0, 100_000)
        ),
        group_wait_secs=(
            None
            if group_wait is None
            else get_number(ctx, join(path, "group_wait_secs"), group_wait, 0.0, (0, 600, True))
        ),
    )


def _retry(ctx: Ctx, path: str, value: object) -> RetryConfig:
    d = _DEFAULT_RETRY
    m = {} if value is None else get_mapping(ctx, path, value, _RETRY_KEYS) or {}

    def secs(key: str, default: float, bounds: Bounds) -> float:
        return get_number(ctx, join(path, key), m.get(key), default, bounds)

    initial = secs("initial_secs", d.initial_secs, RETRY_INITIAL_SECS)
    most = secs("max_secs", max(d.max_secs, initial), RETRY_MAX_SECS)
    problem = below_initial(initial, most)
    if problem is not None:
        ctx.add(join(path, "max_secs"), problem)
        most = initial
    attempts = m.get("max_attempts")
    return RetryConfig(
        initial_secs=initial,
        max_secs=most,
        max_attempts=(
            None
            if attempts is None
            else get_integer(ctx, join(path, "max_attempts"), attempts, 1, *RETRY_MAX_ATTEMPTS)
        ),
        max_age_secs=secs("max_age_secs", d.max_age_secs, RETRY_MAX_AGE_SECS),
    )
