"""The sink contract: `Sink`, one destination of events, and `SinkType`, the row that
declares a sink type: its options, its builder and what else it can do.

A sink makes ONE attempt per `send` and says, through `SinkError(retryable=...)`, whether
trying again could help. Retry, backoff, ordering and dead letters live in
`pvewatch.deliver`, never inside a sink.

Everything a caller does with a sink type goes through its row; nobody asks which type a
sink is:
- the config reads a sink's own keys with `parse` (into the row's `options` dataclass);
- the daemon builds it with `build` and feeds it with a Deliverer; a row without a
  builder is metrics-only (`prometheus`: it shapes /metrics, gets no outbox rows);
- `check-config --connect` runs `check`; SIGHUP calls `reopen`; `test-sink` runs `test`;
  the daemon runs `run` beside delivery while the sink is open.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

from pvewatch.config.reading import Ctx
from pvewatch.config.types import Config, SinkConfig, SinkOptions
from pvewatch.errors import ConfigError
from pvewatch.model import Event
from pvewatch.net.probe import Check
from pvewatch.store.base import Store


@runtime_checkable
class Sink(Protocol):
    """One destination of events. `name` is the configured sink name (the outbox key);
    `groups` is True when the sink sends a burst of events as one message (chat formats):
    delivery then hands it every due event together."""

    name: str
    groups: bool

    async def send(self, events: Sequence[Event]) -> None:
        """Deliver these events once (one event, or a burst for a grouping sink); raise
        `SinkError(retryable=...)` if that failed."""
        ...

    async def aclose(self) -> None:
        """Release what the sink holds (files, connections). Safe to call twice."""
        ...


@dataclass(frozen=True, slots=True)
class SinkContext:
    """What a builder may use besides the sink's name and options. Builders do no I/O:
    building a sink touches nothing. `store`: the state store (None in `test-sink`), for a
    sink that must tell its receiver what is still open after a restart, or mirror the
    state of `clusters`."""

    store: Store | None = None
    # The clusters whose state this replica keeps (configured, and led when replicas
    # share the store), asked each time; none in `test-sink`.
    clusters: Callable[[], Collection[str]] = lambda: ()


@dataclass(frozen=True, slots=True)
class Tried:
    """What `pvewatch test-sink` says of one sample event sent through a sink."""

    delivered: bool
    lines: tuple[str, ...]  # what the receiver answered, for people


OptionsT = TypeVar("OptionsT", bound=SinkOptions)
SinkT = TypeVar("SinkT", bound=Sink)


@dataclass(frozen=True, slots=True)
class SinkType(Generic[OptionsT, SinkT]):
    """One row of the table of sink types."""

    options: type[OptionsT]  # the frozen dataclass of the type's own options
    keys: frozenset[str]  # their keys in the config, beside the framework's
    parse: Callable[[Ctx, str, Mapping[str, object]], OptionsT]  # those keys → its options
    # name, options → the sink; None: metrics-only (no Sink, no outbox rows, no delivery)
    build: Callable[[str, OptionsT, SinkContext], SinkT] | None = None
    # `check-config --connect`: could this sink deliver? Nothing is sent.
    check: Callable[[OptionsT, Config], Awaitable[list[Check]]] | None = None
    # SIGHUP: open files again (after logrotate)
    reopen: Callable[[SinkT], None] | None = None
    # `test-sink`: send the sample and say what the receiver answered; None: `send` it
    test: Callable[[SinkT, Event], Awaitable[Tried]] | None = None
    # the daemon: a task beside delivery while the sink is open, cancelled before it
    # closes (mqtt: the retained state follows the store; alertmanager: open alerts are
    # pushed again every resend_secs)
    run: Callable[[SinkT], Coroutine[Any, Any, None]] | None = None
    # sends in flight at once when the sink's `concurrency:` is left out
    concurrency: int = 4

    @property
    def metrics_only(self) -> bool:
        return self.build is None

    def options_of(self, cfg: SinkConfig) -> OptionsT:
        """`cfg.options`, as this row's `parse` made them: the one place they are
        narrowed (a SinkConfig built in code with another type's options is refused)."""
        if not isinstance(cfg.options, self.options):
            kind = type(cfg.options).__name__
            raise ConfigError([f"sinks.{cfg.name}: {kind} are not the options of {cfg.type}"])
        return cfg.options

    async def run_check(self, cfg: SinkConfig, config: Config) -> list[Check]:
        """What `check-config --connect` says of the sink `cfg`."""
        if self.check is None:
            return [Check("ok", "config", "valid; nothing to connect to")]
        return await self.check(self.options_of(cfg), config)

    def open(self, cfg: SinkConfig, context: SinkContext) -> OpenSink:
        """Build the sink of `cfg` (whose options this row parsed), with what the row
        declares about it bound to it."""
        if self.build is None:
            raise ConfigError([f"sinks.{cfg.name}: type {cfg.type} delivers no events"])
        sink = self.build(cfg.name, self.options_of(cfg), context)
        reopen, test, run = self.reopen, self.test, self.run
        return OpenSink(
            cfg,
            sink,
            self.concurrency,
            reopen=(lambda: reopen(sink)) if reopen is not None else None,
            test=(lambda event: test(sink, event)) if test is not None else None,
            run=(lambda: run(sink)) if run is not None else None,
        )


@dataclass(frozen=True, slots=True)
class OpenSink:
    """A built sink, with what its row declares about it bound to it."""

    config: SinkConfig
    sink: Sink
    concurrency: int  # the default when `config.delivery.concurrency` is None
    reopen: Callable[[], None] | None = field(default=None)
    test: Callable[[Event], Awaitable[Tried]] | None = field(default=None)
    run: Callable[[], Coroutine[Any, Any, None]] | None = field(default=None)


SinkTypes = Mapping[str, SinkType[Any, Any]]


def sink_type(types: SinkTypes, cfg: SinkConfig) -> SinkType[Any, Any]:
    """The row of `cfg.type`, or ConfigError naming the sink."""
    row = types.get(cfg.type)
    if row is None:
        known = ", ".join(sorted(types))
        raise ConfigError([f"sinks.{cfg.name}.type: unknown sink type {cfg.type!r} ({known})"])
    return row


def delivering(sinks: Sequence[SinkConfig], types: SinkTypes) -> list[SinkConfig]:
    """The sinks that receive events (outbox rows, a Deliverer): all but metrics-only."""
    return [s for s in sinks if not sink_type(types, s).metrics_only]
