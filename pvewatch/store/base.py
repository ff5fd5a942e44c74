"""What every caller needs of the state store: the `Store` protocol, which `SqliteStore`
(store/sqlite.py) and `PostgresStore` (store/postgres.py) both implement, and the rows it
hands out. Callers type against `Store`, never against a backend.

The outbox holds one row per (event, sink). A row is `pending` until delivery marks it
`delivered` or gives up and marks it `dead`. Rows of one sink about the same resource are
delivered in `outbox_id` order, which is the order the events were committed in; `heads`
gives the first pending row of each such line. Dead rows stay (for `pvewatch deliveries`
and `replay`) until the retention prunes them.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Protocol

from pvewatch.model import Event, Snapshot, SourceHealth
from pvewatch.silence import Matcher, Silence

NEVER = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """One outbox row: an event on its way to one sink."""

    outbox_id: int
    sink: str
    event: Event
    attempts: int
    next_attempt_at: datetime
    state: str  # "pending" | "delivered" | "dead"
    last_error: str | None
    # Which line the row waits in: rows about one resource of one cluster reach a sink in
    # order (`resource_id` None: the cluster's own events, such as source.unreachable).
    cluster: str = ""
    resource_id: str | None = None
    # When the row was queued (committed, or re-queued by `replay`): retry's max_age
    # counts from here.
    queued_at: datetime = NEVER

    @property
    def line(self) -> tuple[str, str | None]:
        return (self.cluster, self.resource_id)


@dataclass(frozen=True, slots=True)
class ClusterStatus:
    """What `pvewatch status` shows of one cluster."""

    cluster: str
    last_poll: datetime | None  # the last successful poll (snapshot) stored
    health: SourceHealth
    leader: str | None = None  # the replica leading it; None: none (or a SQLite store)
    leader_since: datetime | None = None


@dataclass(frozen=True, slots=True)
class CheckState:
    """What `check_states(cluster)` says of one health check (pvewatch.checking), for the
    status page: its `name` (`ha`, `ceph`, `replication`, `qdevice`, `certificates`,
    `disks`, `backups`), `status` — `up` (read, watching), `idle` (the feature is not set
    up), `disabled` (403: the token lacks the privilege; `detail` names it) or `failing`
    (the last run could not read: `detail` says why) —, when it last ran (None: never) and
    how many of its conditions are open (reported and not yet resolved)."""

    name: str
    status: str  # "up" | "idle" | "disabled" | "failing"
    last_run: datetime | None
    open_conditions: int
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class EventQuery:
    """Which stored events `browse` returns: every filter given must hold. `before` is
    the cursor of paging (a `seq` from a previous page: only older rows); `since` is
    inclusive, `until` exclusive; `type_pattern` is a case-sensitive glob ("guest.*")."""

    since: datetime | None = None
    until: datetime | None = None
    type_pattern: str | None = None
    cluster: str | None = None
    severity: str | None = None
    resource: str | None = None  # a resource id, "qemu/100"
    event_id: str | None = None
    before: int | None = None
    limit: int = 100


@dataclass(frozen=True, slots=True)
class Delivery:
    """Where one event stands with one sink (an outbox row, without the event)."""

    event_id: str
    sink: str
    state: str  # "pending" | "delivered" | "dead"
    attempts: int
    last_error: str | None


@dataclass(frozen=True, slots=True)
class Queue:
    """A sink's outbox: rows pending and dead, and the newest error among them."""

    sink: str
    pending: int
    dead: int
    last_error: str | None


# Which sinks get an outbox row for an event: every sink in a list, or what a function of the
# event says (sink filters, silences). An event routed nowhere is still recorded.
Routing = Sequence[str] | Callable[[Event], Sequence[str]]


class Fencing(Protocol):
    """Who may commit (PostgreSQL: the leadership, pvewatch.store.pg_leader)."""

    def session_pid(self, cluster: str) -> int | None:
        """The backend pid of the leadership session that must hold the cluster's lock
        for a commit to go in; None: this replica does not lead the cluster."""


class Store(Protocol):
    """The state store, as the daemon, the watchers, delivery and the operator's commands
    use it. Thread-safe; every method raises `StoreError` when the store fails."""

    def __enter__(self) -> Store: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def close(self) -> None: ...

    # --- what the watchers use: snapshots, health, rule state, one commit per poll ----

    def load(self, cluster: str) -> tuple[Snapshot | None, SourceHealth]: ...

    def load_rule_state(self, cluster: str) -> dict[str, Any]: ...

    def commit_poll(
        self,
        cluster: str,
        *,
        snapshot: Snapshot | None,
        events: Sequence[Event],
        sinks: Routing,
        health: SourceHealth,
        rule_state: Mapping[str, Any] | None = None,
    ) -> None: ...

    def silences(self, now: datetime | None = None) -> list[Silence]: ...

    # --- what the health checks use (pvewatch.checking) --------------------------------

    def load_check(self, cluster: str, name: str) -> dict[str, Any]:
        """What check `name` of `cluster` remembered at its last commit; {} if nothing."""
        ...

    def commit_check(
        self,
        cluster: str,
        name: str,
        *,
        state: Mapping[str, Any],
        status: CheckState,
        events: Sequence[Event],
        sinks: Routing,
    ) -> None:
        """One run of a check in one transaction: its memory, its status and its events
        with their outbox rows (known event ids skipped). PostgreSQL: only while this
        replica leads the cluster."""
        ...

    def check_states(self, cluster: str) -> list[CheckState]:
        """The state of each check of `cluster` that ever ran, by name."""
        ...

    # --- what delivery uses: the outbox ------------------------------------------------

    def due(self, sink: str, now: datetime, limit: int = 100) -> list[OutboxItem]: ...

    def heads(
        self,
        sink: str,
        limit: int = 100,
        after: int = 0,
        clusters: Collection[str] | None = None,
    ) -> list[OutboxItem]: ...

    def record_events(self, events: Sequence[Event], sinks: Routing) -> list[Event]:
        """Record events no poll produced (a notification, sink.disabled) with their
        outbox rows in one transaction; the events as recorded (a second sighting of a
        failure marked `suppressed: "duplicate"`, pvewatch.duplicates)."""
        ...

    def mark_delivered(self, outbox_id: int, now: datetime) -> None: ...

    def mark_retry(
        self, outbox_id: int, *, attempts: int, next_attempt_at: datetime, error: str
    ) -> None: ...

    def mark_dead(self, outbox_id: int, *, attempts: int, error: str, now: datetime) -> None: ...

    def pending_count(self, sink: str) -> int: ...

    def dead_count(self, sink: str) -> int: ...

    # --- what a sink keeps between restarts (alertmanager: the alerts it has open) -----

    def sink_state(self, sink: str) -> dict[str, str]:
        """Every `key → data` the sink `sink` put, as it put them."""
        ...

    def put_sink_state(self, sink: str, key: str, data: str | None) -> None:
        """Keep `data` under `key` for the sink (None: forget the key)."""
        ...

    # --- what the operator's commands use ----------------------------------------------

    def clusters(self) -> list[str]: ...

    def status(self) -> list[ClusterStatus]: ...

    def deliveries(
        self, *, sink: str | None = None, state: str | None = None, limit: int = 1000
    ) -> list[OutboxItem]: ...

    def requeue(self, *, sinks: Sequence[str], event_id: str | None, now: datetime) -> int: ...

    def events(
        self,
        *,
        since: datetime | None = None,
        type_pattern: str | None = None,
        cluster: str | None = None,
        limit: int = 1000,
    ) -> list[Event]: ...

    # --- what the read API and the status page use (pvewatch.http.view) --------------

    def browse(self, query: EventQuery) -> list[tuple[int, Event]]:
        """Events matching `query`, newest committed first, each with its `seq` (the
        paging cursor: commit order, so rows committed meanwhile never shift a page)."""
        ...

    def delivery_states(self, event_ids: Collection[str]) -> list[Delivery]: ...

    def queues(self) -> list[Queue]:
        """Each sink with rows pending or dead, by name."""
        ...

    def resource_counts(self) -> list[tuple[str, str, str | None, int]]:
        """(cluster, resource type, status, count) of the stored snapshots."""
        ...

    def add_silence(
        self,
        matchers: Sequence[Matcher],
        *,
        starts_at: datetime,
        ends_at: datetime,
        comment: str,
        created_by: str | None,
    ) -> Silence: ...

    def remove_silence(self, silence_id: str) -> bool: ...

    # --- upkeep ------------------------------------------------------------------------

    def prune(self, now: datetime, retention_days: int) -> int: ...

    @property
    def schema_version(self) -> int: ...

    @property
    def total_changes(self) -> int:
        """Rows inserted, updated or deleted through this store since it was opened."""
        ...

    def check_integrity(self) -> list[str]:
        """What the database finds wrong with itself; [] when all is well."""
        ...
