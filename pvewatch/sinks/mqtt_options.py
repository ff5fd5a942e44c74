"""The options of `type: mqtt` sinks, read once here (`pvewatch.sinks.mqtt` builds the
sink from them):

    sinks:
      broker:
        type: mqtt
        url: "mqtts://broker.example.net:8883"   # mqtt:// (1883) or mqtts:// (8883)
        username: pvewatch                        # optional
        password_file: mqtt.pass                  # or password (a secret; needs username)
        tls: {verify: true, ca_file: broker-ca.pem}   # mqtts://: verified by default
        topic_prefix: pvewatch                    # <prefix>/<cluster>/<type>, .../state/<id>
        homeassistant: true                       # or {discovery_prefix: homeassistant}
        timeout_secs: 10                          # connecting, and each PUBACK

The password becomes a `Secret`: no summary, log line or error shows it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from pvewatch.config.reading import (
    Ctx,
    get_bool,
    get_mapping,
    get_number,
    get_secret,
    get_str,
    join,
)
from pvewatch.config.types import SinkOptions, TlsConfig
from pvewatch.secret import Secret
from pvewatch.sinks.webhook_options import tls_options

MQTT_KEYS = frozenset(
    {"url", "username", "password", "password_file", "tls", "topic_prefix", "homeassistant"}
    | {"timeout_secs"}
)
DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
DEFAULT_DISCOVERY_PREFIX = "homeassistant"
_HA_KEYS = frozenset({"discovery_prefix"})


@dataclass(frozen=True, slots=True)
class MqttOptions(SinkOptions):
    host: str = "localhost"
    port: int = 1883
    tls_on: bool = False  # mqtts://
    username: str | None = None
    password: Secret | None = None
    tls: TlsConfig = field(default_factory=TlsConfig)
    topic_prefix: str = "pvewatch"
    discovery_prefix: str | None = None  # Home Assistant discovery; None: off
    timeout_secs: float = 10.0

    def summary(self) -> dict[str, object]:
        """As `check-config` shows it: the URL as written, tls only for mqtts://."""
        shown: dict[str, object] = {"url": self.where}
        shown |= {"username": self.username, "password": self.password}
        if self.tls_on:
            shown["tls"] = self.tls.mode + (f" {self.tls.ca_file}" if self.tls.ca_file else "")
        shown["topic_prefix"] = self.topic_prefix
        shown["homeassistant"] = self.discovery_prefix or "off"
        return shown | {"timeout_secs": self.timeout_secs}

    @property
    def where(self) -> str:
        """The broker as messages show it: mqtt(s)://host:port."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'mqtts' if self.tls_on else 'mqtt'}://{host}:{self.port}"


def mqtt_options(ctx: Ctx, path: str, m: Mapping[str, object]) -> MqttOptions:
    host, port, tls_on = _url(ctx, join(path, "url"), m.get("url"))
    username = get_str(ctx, join(path, "username"), m.get("username"))
    if username == "":
        ctx.add(join(path, "username"), "must not be empty (leave it out for no login)")
    password, where = get_secret(ctx, path, m, "password")
    if password is not None and not username:
        ctx.add(where, "a password needs a username")
    tls = tls_options(ctx, join(path, "tls"), m.get("tls"))
    if not tls_on and m.get("tls") is not None:
        ctx.add(join(path, "tls"), "only for mqtts:// URLs")
    if not tls_on and password is not None:
        ctx.warn(join(path, "url"), "plain mqtt://: the password travels unencrypted")
    return MqttOptions(
        host=host,
        port=port,
        tls_on=tls_on,
        username=username or None,
        password=password,
        tls=tls,
        topic_prefix=_prefix(ctx, join(path, "topic_prefix"), m.get("topic_prefix"), "pvewatch"),
        discovery_prefix=_homeassistant(ctx, join(path, "homeassistant"), m.get("homeassistant")),
        timeout_secs=get_number(
            ctx, join(path, "timeout_secs"), m.get("timeout_secs"), 10.0, (0, 300, False)
        ),
    )


def _url(ctx: Ctx, path: str, value: object) -> tuple[str, int, bool]:
    text = get_str(ctx, path, value)
    if text is None:
        if value is None:
            ctx.add(path, "required (mqtt://HOST[:PORT] or mqtts://HOST[:PORT])")
        return "localhost", 1883, False
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError:
        ctx.add(path, "not a valid URL")
        return "localhost", 1883, False
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        ctx.add(path, "expected mqtt://HOST[:PORT] or mqtts://HOST[:PORT]")
        return "localhost", 1883, False
    if parts.username is not None or parts.password is not None:
        ctx.add(path, "no credentials in the URL: use username and password_file")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        ctx.add(path, "a broker URL has no path, query or fragment (see topic_prefix)")
    return parts.hostname, port or DEFAULT_PORTS[parts.scheme], parts.scheme == "mqtts"


def topic_problem(topic: str) -> str | None:
    """Why `topic` cannot be a topic prefix, or None: MQTT topic names hold no wildcard
    (+, #) and no NUL; `$` topics belong to the broker; empty levels are kept out."""
    if not topic:
        return "must not be empty"
    if any(c in topic for c in "+#\x00"):
        return "must not contain +, # or NUL (MQTT wildcards)"
    if topic.startswith("$"):
        return "must not start with $ (the broker's own topics)"
    if "" in topic.split("/"):
        return "must not start or end with / or hold an empty level (//)"
    if len(topic.encode("utf-8", "replace")) > 1024:
        return "longer than 1024 bytes"
    return None


def _prefix(ctx: Ctx, path: str, value: object, default: str) -> str:
    text = get_str(ctx, path, value, default)
    if text is None:
        return default
    if (problem := topic_problem(text)) is not None:
        ctx.add(path, problem)
        return default
    return text


def _homeassistant(ctx: Ctx, path: str, value: object) -> str | None:
    """`true`: discovery under `homeassistant/`; a mapping names another prefix."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        m = get_mapping(ctx, path, value, _HA_KEYS) or {}
        where = join(path, "discovery_prefix")
        return _prefix(ctx, where, m.get("discovery_prefix"), DEFAULT_DISCOVERY_PREFIX)
    on = get_bool(ctx, path, value, False)
    return DEFAULT_DISCOVERY_PREFIX if on else None
