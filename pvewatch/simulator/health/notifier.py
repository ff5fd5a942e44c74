"""Sends the simulated PVE's notifications as its webhook target does (proxmox-notify
endpoints/webhook.rs): url, header values and body rendered from templates, one POST
with a 10 s timeout, no retry, no redirect followed; a failure is only recorded, as PVE
only logs it. Every notification is kept for `GET /_sim/notify/sent` with what was sent
and the answer, the token masked as PVE masks secrets in its errors (`<masked>`).

The target is what an operator configures in PVE for pvewatch: `--notify-url`,
`--notify-token`, or `PUT /_sim/notify/target` `{"url", "token", "body"}`. Without a URL
a notification is recorded as `not_sent`. Sending happens on a thread of its own, so the
simulated API never waits for the receiver.
"""

from __future__ import annotations

import queue
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from pvewatch.secret import Secret
from pvewatch.simulator.edits import ControlError
from pvewatch.simulator.health import fields
from pvewatch.simulator.health.notices import Notice
from pvewatch.simulator.health.render import TemplateError, render_template

BODY_TEMPLATE = (
    '{"title": "{{ escape title }}", "message": "{{ escape message }}", '
    '"severity": "{{ severity }}", "timestamp": {{ timestamp }}, "fields": {{ json fields }}}'
)
HEADERS = (("Content-Type", "application/json"), ("Authorization", "Bearer {{ secrets.token }}"))
USER_AGENT = "proxmox-sync-http-client/1.0.6"
TIMEOUT_SECS = 10.0
MAX_KEPT = 1000
_MASK = "<masked>"


@dataclass(slots=True)
class Target:
    url: str | None
    token: Secret | None
    body: str = BODY_TEMPLATE


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a 3xx is an answer like any other non-2xx: recorded, not followed


class Notifier:
    def __init__(self, url: str | None = None, token: str | None = None) -> None:
        self._lock = threading.Lock()
        self._target = Target(url, Secret(token) if token else None)
        self._sent: list[dict[str, Any]] = []
        self._next_id = 1
        self._queue: queue.Queue[tuple[dict[str, Any], bytes, dict[str, str], str] | None]
        self._queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect)

    # --- the target ----------------------------------------------------------------------

    def configure(self, body: Any) -> dict[str, Any]:
        where = "PUT /_sim/notify/target"
        spec = fields.body_object(body, where, ("url", "token", "body"))
        url = spec.get("url")
        if url is not None and not str(url).startswith(("http://", "https://")):
            raise ControlError(f"{where}: 'url' must be an http(s) URL")
        token = spec.get("token")
        template = fields.text(spec.get("body", BODY_TEMPLATE), where, "body")
        with self._lock:
            self._target = Target(
                url, Secret(fields.text(token, where, "token")) if token else None, template
            )
        return self.target()

    def target(self) -> dict[str, Any]:
        with self._lock:
            t = self._target
            return {"url": t.url, "token": _MASK if t.token else None, "body": t.body}

    # --- notifications -------------------------------------------------------------------

    def submit(self, notice: Notice) -> dict[str, Any]:
        """Record `notice` and queue it for sending; the record as it is now."""
        with self._lock:
            target = self._target
            url = notice.url or target.url
            token = Secret(notice.token) if notice.token else target.token
            record: dict[str, Any] = {
                "id": self._next_id,
                "type": notice.type,
                "severity": notice.severity,
                "title": notice.title,
                "fields": dict(notice.fields),
                "timestamp": notice.timestamp,
                "url": None,
                "status": "pending",
                "http_status": None,
                "error": None,
            }
            self._next_id += 1
            self._sent.append(record)
            del self._sent[:-MAX_KEPT]
            secret = token.reveal() if token else ""
            data = {
                "title": notice.title,
                "message": notice.message,
                "severity": notice.severity,
                "timestamp": notice.timestamp,
                "fields": dict(notice.fields),
                "secrets": {"token": secret} if token else {},
            }
            if url is None:
                record.update(status="not_sent", error="no webhook target configured")
                return dict(record)
            try:
                rendered_url = render_template(url, data)
                headers = {
                    name: render_template(value, data)
                    for name, value in HEADERS
                    if token or name != "Authorization"
                }
                body = render_template(target.body, data)
            except TemplateError as exc:
                record.update(status="failed", error=f"failed to render webhook template: {exc}")
                return dict(record)
            record.update(
                url=_masked(rendered_url, secret),
                headers={k: _masked(v, secret) for k, v in headers.items()},
                body=_masked(body, secret),
            )
            self._ensure_thread()
            self._queue.put((record, body.encode(), headers, rendered_url))
            return dict(record)

    def sent(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self._sent]

    def clear(self) -> None:
        with self._lock:
            self._sent.clear()

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=TIMEOUT_SECS + 2)

    def _ensure_thread(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, daemon=True, name="pvewatch-sim-notify"
            )
            self._thread.start()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            record, body, headers, url = item
            outcome = self._send(url, body, headers)
            secret = headers.get("Authorization", "").removeprefix("Bearer ")
            with self._lock:
                record.update(outcome)
                if record.get("error"):
                    record["error"] = _masked(record["error"], secret)

    def _send(self, url: str, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
        if not url.startswith(("http://", "https://")):
            return {"status": "failed", "error": "the webhook URL is not http(s)"}
        request = urllib.request.Request(url, data=body, method="POST")  # noqa: S310 http(s)
        for name, value in {**headers, "User-Agent": USER_AGENT}.items():
            request.add_header(name, value)
        try:
            with self._opener.open(request, timeout=TIMEOUT_SECS) as answer:
                answer.read(4096)
                return {"status": "sent", "http_status": answer.status}
        except urllib.error.HTTPError as exc:
            exc.close()
            return {"status": "failed", "http_status": exc.code, "error": f"HTTP {exc.code}"}
        except (OSError, ValueError) as exc:  # URLError, timeouts, refused, a bad URL
            reason = getattr(exc, "reason", exc)
            return {"status": "failed", "error": f"{type(exc).__name__}: {reason}"}


def _masked(text: str, secret: str) -> str:
    return text.replace(secret, _MASK) if secret else text
