"""Telling systemd how the service is doing: the sd_notify protocol, without libsystemd.

`Notifier.from_env(os.environ)` reads `$NOTIFY_SOCKET` (a path, or `@name` for an
abstract socket) and `$WATCHDOG_USEC`/`$WATCHDOG_PID`; without them every call is a no-op,
so the daemon calls it unconditionally. The daemon sends:

- `READY=1` once the config is loaded and the listener bound (not waiting for Proxmox);
- `STATUS=...` a one-line state after each poll (`ServiceStatus` builds it, pure);
- `WATCHDOG=1` from the event loop every half `WatchdogSec`, so a blocked loop gets the
  service restarted (`keep_watchdog_fed`);
- `RELOADING=1` when a SIGHUP's new config is being applied, `READY=1` once it runs;
- `STOPPING=1` when shutdown begins.

A notification that cannot be sent is logged once and otherwise ignored: systemd being
away (or restarted) must never stop the watcher. Sends never block: the socket's reader
(systemd, or whatever set $NOTIFY_SOCKET) may be slow, and its queue holds few datagrams.
A `STATUS=` or `WATCHDOG=1` that finds the queue full is dropped and counted
(`on_dropped`; the metric `pvewatch_systemd_notifications_dropped_total`); `READY=1`,
`RELOADING=1` and `STOPPING=1` are retried for up to IMPORTANT_WAIT_SECS, once each.
"""

from __future__ import annotations

import asyncio
import logging
import os
import select
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

# How long READY=1, RELOADING=1 and STOPPING=1 wait for room in a full notify socket. It
# blocks the caller (the event loop) that long at most, at those moments only.
IMPORTANT_WAIT_SECS = 1.0


class Notifier:
    """Sends sd_notify datagrams to one socket; `None` socket: does nothing."""

    def __init__(
        self,
        address: str | None,
        *,
        watchdog_usec: int | None = None,
        logger: logging.Logger | None = None,
        on_dropped: Callable[[], None] = lambda: None,
    ) -> None:
        self._address = _socket_address(address) if address else None
        self.watchdog_usec = watchdog_usec
        self._log = logger or logging.getLogger("pvewatch.systemd")
        self._on_dropped = on_dropped
        self._warned = False

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str],
        *,
        logger: logging.Logger | None = None,
        on_dropped: Callable[[], None] = lambda: None,
    ) -> Notifier:
        return cls(
            env.get("NOTIFY_SOCKET") or None,
            watchdog_usec=_watchdog_usec(env, os.getpid()),
            logger=logger,
            on_dropped=on_dropped,
        )

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def notify(self, *assignments: str, important: bool = False) -> None:
        """Send `READY=1`, `STATUS=...`, ... in one datagram, without blocking; when the
        socket's queue is full, drop it, or (`important`) wait IMPORTANT_WAIT_SECS at most."""
        if self._address is None or not assignments:
            return
        message = "\n".join(a.replace("\n", " ") for a in assignments).encode()
        flags = socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK
        try:
            with socket.socket(socket.AF_UNIX, flags) as sock:
                sock.connect(self._address)
                sent = _send(sock, message, IMPORTANT_WAIT_SECS if important else 0.0)
        except OSError as exc:
            if not self._warned:  # once: a gone socket would otherwise log every poll
                self._warned = True
                self._log.warning("cannot notify systemd at %s: %s", self._address, exc)
            return
        if not sent:
            self._on_dropped()
            if important:
                self._log.warning(
                    "systemd's notify socket stayed full for %g s: %s not sent",
                    IMPORTANT_WAIT_SECS,
                    assignments[0],
                )

    def ready(self, status: str) -> None:
        self.notify("READY=1", f"STATUS={status}", important=True)

    def status(self, status: str) -> None:
        self.notify(f"STATUS={status}")

    def reloading(self, status: str = "reloading the config") -> None:
        """`RELOADING=1`; the `READY=1` of the new runtime ends the reload. systemd 253+
        wants the time with it (`MONOTONIC_USEC`, to match the SIGHUP); older ones ignore it."""
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self.notify("RELOADING=1", f"MONOTONIC_USEC={usec}", f"STATUS={status}", important=True)

    def stopping(self, status: str = "stopping") -> None:
        self.notify("STOPPING=1", f"STATUS={status}", important=True)

    async def keep_watchdog_fed(self) -> None:
        """`WATCHDOG=1` every half watchdog interval until cancelled; returns at once when
        systemd set no watchdog. Runs on the event loop on purpose: if the loop hangs,
        the pings stop and systemd restarts the service."""
        if not self.enabled or not self.watchdog_usec:
            return
        period = self.watchdog_usec / 1_000_000 / 2
        while True:
            self.notify("WATCHDOG=1")
            await asyncio.sleep(period)


def _send(sock: socket.socket, message: bytes, wait_secs: float) -> bool:
    """One datagram on a non-blocking socket; False when its queue stayed full."""
    deadline = time.monotonic() + wait_secs
    while True:
        try:
            sock.send(message)
            return True
        except BlockingIOError:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            select.select([], [sock], [], left)  # writable: the reader made room


def _socket_address(address: str) -> str:
    # "@name" is Linux's abstract namespace, spelled with a leading NUL byte in the API.
    return "\0" + address[1:] if address.startswith("@") else address


def _watchdog_usec(env: Mapping[str, str], pid: int) -> int | None:
    """$WATCHDOG_USEC when it is meant for this process ($WATCHDOG_PID unset or ours)."""
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    owner = env.get("WATCHDOG_PID")
    if owner and owner != str(pid):
        return None
    return usec if usec > 0 else None


@dataclass
class _Cluster:
    ok: bool | None = None  # None: not polled yet
    resources: int = 0
    failures: int = 0
    error_kind: str | None = None


@dataclass
class ServiceStatus:
    """The one-line `STATUS=` text, kept from poll results (pure: no I/O)."""

    clusters: list[str]
    _state: dict[str, _Cluster] = field(default_factory=dict)

    def poll_finished(
        self,
        cluster: str,
        *,
        ok: bool,
        resources: int,
        error_kind: str | None,
    ) -> None:
        state = self._state.setdefault(cluster, _Cluster())
        state.ok, state.error_kind = ok, error_kind
        if ok:
            state.resources, state.failures = resources, 0
        else:
            state.failures += 1

    def line(self) -> str:
        """e.g. `2 clusters: prod ok (130 resources); lab unreachable (3 failed polls)`."""
        parts = [f"{name} {self._describe(self._state.get(name))}" for name in self.clusters]
        count = len(self.clusters)
        return f"{count} cluster{'s' if count != 1 else ''}: " + "; ".join(parts)

    @staticmethod
    def _describe(state: _Cluster | None) -> str:
        if state is None or state.ok is None:
            return "waiting for the first poll"
        if state.ok:
            return f"ok ({state.resources} resources)"
        polls = "poll" if state.failures == 1 else "polls"
        return f"{state.error_kind or 'failing'} ({state.failures} failed {polls})"
