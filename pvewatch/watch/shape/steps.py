"""Shaping: what of a poll's events is sent, what is only recorded, and what comes later.

    shape(events, ctx, config, state, now) -> (events, new_state)

Pure: no clock (`now` is given), no I/O. `state` is what this step returned at the previous
poll of the cluster (kept by the store, JSON), so held transitions, flapping, node outages
and open conditions survive restarts; a damaged state costs what is damaged, never the poll.

Every event that goes in comes out, some marked `suppressed` (recorded, sent nowhere:
"held", "inhibited", "flapping"); shaping adds events: held transitions that lasted,
reconciliations after a node outage, `*.flapping` / `*.flapping_ended`, reminders. In order:

1. inhibit (`inhibit`): a poll ending in `source.unreachable` sends nothing else; what is
   on an offline node is listed in its `node.offline` and not sent, and reconciled when the
   node is back; while quorum is lost, node events are attached to the quorum events;
2. flapping (`flapping`): too many status changes of one resource → one event, then quiet;
3. hold (`holds`): a transition must last its type's `for_secs` before it is sent;
4. resolved and reminders (`conditions`): `condition` / `resolves` on what is sent, and
   reminders of what is still open.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pvewatch.config.shape import ShapeConfig
from pvewatch.model import Event
from pvewatch.watch.rule_input import RuleInput
from pvewatch.watch.shape.common import load_entries
from pvewatch.watch.shape.conditions import Open, remind, track
from pvewatch.watch.shape.flapping import Flap, flapping
from pvewatch.watch.shape.holds import Pending, hold
from pvewatch.watch.shape.inhibit import (
    Outage,
    Outages,
    attach_to_quorum,
    node_outages,
    source_outage,
)

# The event types this step makes (the others it passes on, or copies: held, reminders).
SHAPE_EVENT_TYPES = frozenset(
    f"{noun}.{verb}"
    for noun in ("guest", "node", "storage")
    for verb in ("flapping", "flapping_ended")
)


def shape(
    events: Sequence[Event],
    ctx: RuleInput,
    config: ShapeConfig,
    state: Mapping[str, Any] | None,
    now: datetime,
) -> tuple[list[Event], dict[str, Any]]:
    """The events to record (some suppressed, some added) and the state for the next poll."""
    s: Mapping[str, Any] = state if isinstance(state, Mapping) else {}
    observed = ctx.polled
    batch = source_outage(list(events))
    outages = Outages(load_entries(s.get("outages"), Outage.load))
    if observed:
        batch, outages = node_outages(batch, ctx.old, ctx.new, outages.active, now)
    quorum = s.get("quorum")
    batch, quorum = attach_to_quorum(batch, ctx.new, quorum if isinstance(quorum, list) else None)
    batch, made, flaps, started = flapping(
        batch,
        ctx.new,
        config.flapping,
        load_entries(s.get("flapping"), Flap.load),
        now,
        observed=observed,
    )

    def deferred(event: Event) -> bool:
        ref = event.resource
        return ref is not None and outages.inhibits(ref.id, ctx.new, ref.node)

    batch, confirmed, pending = hold(
        batch,
        ctx.new,
        config.hold_secs,
        load_entries(s.get("pending"), Pending.load),
        now,
        observed=observed,
        deferred=deferred,
        dropped=started,
    )
    out, opened = track(
        confirmed + batch + made, load_entries(s.get("conditions"), Open.load), ctx.new, now
    )

    def quiet(rid: str) -> bool:
        flap = flaps.get(rid)
        return outages.inhibits(rid, ctx.new) or (flap is not None and flap.since is not None)

    reminders, opened = remind(
        opened,
        ctx.new,
        config.repeat_interval_secs,
        now,
        observed=observed,
        quiet=quiet,
    )
    new_state: dict[str, Any] = {
        "pending": {k: p.dump() for k, p in pending.items()},
        "flapping": {k: f.dump() for k, f in flaps.items()},
        "outages": {k: o.dump() for k, o in outages.active.items()},
        "conditions": {k: o.dump() for k, o in opened.items()},
    }
    if quorum is not None:
        new_state["quorum"] = quorum
    return out + reminders, new_state
