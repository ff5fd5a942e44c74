"""What asks the daemon to stop or to reload, and reading the config again for a reload.

A reload is an in-process restart of the runtime (`pvewatch.lifecycle.daemon.run`): everything that
matters (snapshots, rule state, events, the outbox) lives in the store, so the daemon
reads the config file again, and when it is valid winds the runtime down as for a stop
(without the flush) and builds it again from the new config. An invalid file changes
nothing: every problem is logged and the running config stays.

- `Requests`: SIGTERM and SIGINT ask for a stop, SIGHUP for a reload. Requests are
  coalesced (three SIGHUPs during a reload make one more reload) and a stop wins.
  `pvewatch run` blocks SIGHUP first thing, so that one sent during start-up waits
  (its default action would end the process) until `Requests.install` lets it through.
- `reread(source)`: the new config, or None with the problems logged.
- `Carried`: what a reload keeps (the Metrics, the heartbeat, the listener: `listen()`
  keeps its socket while `http.listen` stays the same).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from pvewatch.config.types import Config, HttpConfig
from pvewatch.errors import ConfigError
from pvewatch.http.listener import Listener
from pvewatch.http.notify import Inbox
from pvewatch.http.page import read_routes
from pvewatch.http.view import ReadView
from pvewatch.lifecycle.systemd import Notifier, ServiceStatus
from pvewatch.observability.metrics import Metrics
from pvewatch.observability.probes import Heartbeat, Readiness

Request = Literal["stop", "reload"]


def _nothing(config: Config) -> None:
    return None


@dataclass(frozen=True)
class ConfigSource:
    """Where a reload reads the config: `load` (raises ConfigError), and `applied`, called
    with each new config once it runs (the CLI sets up its logging again: level, format and
    the secrets to mask)."""

    load: Callable[[], Config]
    applied: Callable[[Config], None] = _nothing


class Requests:
    """Stop and reload requests, from signals or set by code (tests, the demo)."""

    def __init__(
        self, stop: asyncio.Event | None = None, reload: asyncio.Event | None = None
    ) -> None:
        self.stop = stop or asyncio.Event()
        self.reload = reload or asyncio.Event()
        self._signals = False

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        """Take SIGTERM, SIGINT and SIGHUP on `loop` (only possible in the main thread;
        elsewhere requests come from code only), then let a held SIGHUP in."""
        try:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.stop.set)
            loop.add_signal_handler(signal.SIGHUP, self.reload.set)
        except (NotImplementedError, RuntimeError, ValueError):
            return
        self._signals = True
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGHUP})

    def uninstall(self, loop: asyncio.AbstractEventLoop) -> None:
        """Hold SIGHUP again: once the loop is gone its default action would kill the
        process on the way out. A SIGTERM keeps the loop's handler until the loop closes."""
        if self._signals:
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})
            with contextlib.suppress(RuntimeError, ValueError):
                loop.remove_signal_handler(signal.SIGHUP)
            self._signals = False

    async def next(self) -> Request:
        """Wait for the next request; a reload asked for several times is done once."""
        if not self.stop.is_set() and not self.reload.is_set():
            waits = [
                asyncio.ensure_future(self.stop.wait()),
                asyncio.ensure_future(self.reload.wait()),
            ]
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in waits:
                    task.cancel()
                await asyncio.gather(*waits, return_exceptions=True)
        if self.stop.is_set():
            return "stop"
        self.reload.clear()
        return "reload"


async def reread(source: ConfigSource | None, log: logging.Logger) -> Config | None:
    """The config as the file says now, or None (every problem logged, one ERROR line
    each with its key path) when it is not valid."""
    if source is None:
        log.error("reload: this watcher was not started from a config file; nothing to read")
        return None
    try:
        return await asyncio.to_thread(source.load)
    except ConfigError as e:
        log.error(
            "reload rejected, the running config stays: %s has %d problem(s)",
            e.source,
            len(e.problems),
        )
        for problem in e.problems:
            log.error("reload rejected: %s", problem)
    except Exception as e:  # a bug of ours must not end a daemon that is running fine
        log.error("reload rejected, the running config stays: %s", type(e).__name__)
    return None


@dataclass
class Carried:
    """What a reload carries over: the config source, the requests, systemd, the metrics,
    /healthz, /readyz and the listener (`listen`)."""

    log: logging.Logger
    source: ConfigSource | None
    requests: Requests
    notifier: Notifier
    metrics: Metrics
    status: ServiceStatus
    on_listening: Callable[[str], None]
    heartbeat: Heartbeat = field(default_factory=Heartbeat)
    readiness: Readiness = field(default_factory=Readiness)
    listener: Listener | None = None
    http: HttpConfig | None = None
    inbox: Inbox = field(default_factory=Inbox)  # POST /notify/<name>, to each runtime
    # What the read API and the status page read: each runtime gives it its store.
    view: ReadView = field(default_factory=ReadView)

    def listen(self, http: HttpConfig) -> None:
        """Serve `http`. The same `listen` keeps the socket (scrapes and probes do not
        fail) and takes new TLS files and users. Another address is bound before the old
        one closes, so when it cannot be, ConfigError says why and nothing changed; only
        when the old socket holds the new port (`127.0.0.1:9886` → `0.0.0.0:9886`) is it
        closed first, and bound again if the new one fails."""
        old, previous = self.http, self.listener
        if previous is not None and old is not None and http.listen == old.listen:
            previous.reconfigure(http)
            self.http = http
            return
        port = _port(http)
        in_the_way = previous is not None and port not in (None, 0) and port == _port(old)
        if in_the_way:
            self.close_listener()
        try:
            listener = self._started(http)
        except ConfigError:
            if in_the_way and old is not None:
                with contextlib.suppress(ConfigError):
                    self.listener, self.http = self._started(old), old
            raise
        if previous is not None and not in_the_way:
            previous.close()
        self.listener, self.http = listener, http
        if listener is not None:
            self.on_listening(listener.url)

    def _started(self, http: HttpConfig) -> Listener | None:
        if not http.listen:
            return None
        listener = Listener(
            http,
            metrics=self.metrics,
            readiness=self.readiness,
            heartbeat=self.heartbeat,
            logger=self.log,
            routes=(self.inbox.route(), *read_routes(self.view, self.log)),
        )
        listener.start()
        return listener

    def close_listener(self) -> None:
        listener, self.listener, self.http = self.listener, None, None
        if listener is not None:
            listener.close()


def _port(http: HttpConfig | None) -> int | None:
    return http.host_port()[1] if http is not None and http.listen else None
