"""The rules: raw diff events → the events worth recording and sending. Pure.

`apply_rules` runs the steps in order, each a function of its own module:
1. explain (`cause`): join each guest transition with the PVE task that explains it
   (who or what did it), and set the severity from the expected state (`expect:`);
2. add (`tasks`, `quorum_events`, `thresholds`): task.failed / task.warnings, quorum
   lost / regained, usage thresholds exceeded / cleared;
3. shape (`shape`): holds, flapping, reminders, inhibition, resolved pairing;
4. suppress (`suppress`): maintenance and silences mark events `suppressed` (recorded,
   sent nowhere).

What the rules remember between polls is one JSON-able dict per cluster, kept by the store
in the poll's transaction: `state["tasks"]` (reported UPIDs), `state["thresholds"]`
(pending and firing thresholds), `state["shape"]` (the shaping step's own).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pvewatch.config.rules import RulesConfig
from pvewatch.model import EVENT_TYPES, Event, event_id
from pvewatch.silence import Silence
from pvewatch.watch import cause, suppress, tasks, thresholds
from pvewatch.watch.rule_input import RuleInput
from pvewatch.watch.shape.steps import SHAPE_EVENT_TYPES, shape

# The event types the rules make (the others come from the diff and the source health).
RULE_EVENT_TYPES = frozenset(
    {"task.failed", "task.warnings", "cluster.quorum_lost", "cluster.quorum_regained"}
    | {
        f"{noun}.threshold_{verb}"
        for noun in ("guest", "node", "storage")
        for verb in ("exceeded", "cleared")
    }
    | SHAPE_EVENT_TYPES
)


def apply_rules(
    inp: RuleInput,
    config: RulesConfig,
    state: Mapping[str, Any],
    silences: Sequence[Silence],
) -> tuple[list[Event], dict[str, Any]]:
    """The events to record (some marked suppressed) and the new rule state."""
    new_state: dict[str, Any] = dict(state)
    events = cause.explain(inp.events, inp, config.expect)
    if inp.polled:
        task_events, new_state["tasks"] = tasks.task_events(
            inp.tasks, state.get("tasks"), inp, config.tasks
        )
        usage_events, new_state["thresholds"] = thresholds.evaluate(
            inp.new, inp.metrics, state.get("thresholds"), config.thresholds, inp.now
        )
        events += quorum_events(inp) + task_events + usage_events
    events, new_state["shape"] = shape(events, inp, config.shape, state.get("shape"), inp.now)
    events = suppress.apply(events, inp.new, config.maintenance, silences, inp.now)
    return events, new_state


def quorum_events(inp: RuleInput) -> list[Event]:
    """`cluster.quorum_lost` / `cluster.quorum_regained` when /cluster/status says so;
    an unknown quorum (None) on either side is no change."""
    old, new = inp.old, inp.new
    if old is None or old.quorate is None or new.quorate is None or old.quorate == new.quorate:
        return []
    nodes = [r for r in new.resources.values() if r.type == "node"]
    online = sum(1 for r in nodes if r.status == "online")
    counts = f" ({online} of {len(nodes)} nodes online)" if nodes else ""
    cluster = new.cluster
    if new.quorate:
        type_, summary = "cluster.quorum_regained", f"cluster {cluster} regained quorum{counts}"
    else:
        type_, summary = "cluster.quorum_lost", f"cluster {cluster} lost quorum{counts}"
    return [
        Event(
            id=event_id(cluster, type_, "cluster", None, inp.now),
            type=type_,
            time=inp.now,
            cluster=cluster,
            severity=EVENT_TYPES[type_].severity,
            summary=summary,
            detected_late=inp.late,
            details={"nodes": len(nodes), "online": online},
        )
    ]


def open_conditions(state: Mapping[str, Any]) -> frozenset[str] | None:
    """The conditions open in a cluster's rule state (as `apply_rules` returned it and the
    store keeps it); None when the state says nothing of them (no poll shaped yet)."""
    shaped = state.get("shape")
    conditions = shaped.get("conditions") if isinstance(shaped, Mapping) else None
    if not isinstance(conditions, Mapping):
        return None
    return frozenset(k for k in conditions if isinstance(k, str))
