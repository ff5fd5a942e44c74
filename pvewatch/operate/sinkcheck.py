"""`check-config --connect` for sinks: can each one deliver? Nothing is sent.

- a sink with a `url` (webhook): a TCP connection to its host, and the TLS handshake for
  https with the sink's own TLS settings; only host:port is printed, because webhook URLs
  often carry their secret in the path;
- a sink with a `path` (log): stdout, or a file that exists and is writable, or can be
  created;
- others (prometheus): served on the http listener, nothing to connect to.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from pathlib import Path

from pvewatch.config.types import Config, SinkConfig
from pvewatch.net.probe import ProbeError, host_port, reach
from pvewatch.net.tls import unverified_context
from pvewatch.operate.report import Section
from pvewatch.secret import Secret

DEFAULT_TIMEOUT_SECS = 10.0


async def check_sink(sink: SinkConfig, config: Config) -> Section:
    section = Section(f"sink {sink.name} ({sink.type})")
    options = sink.options
    if "url" in options:
        await _check_url(section, options)
    elif "path" in options:
        _check_path(section, str(options["path"]))
    elif sink.type == "prometheus":
        if config.http.listen:
            section.add("ok", "served", f"/metrics on {config.http.listen}")
        else:
            section.add("warn", "served", "nowhere: http.listen is off")
    else:
        section.add("ok", "config", "valid; nothing to connect to")
    return section


async def _check_url(section: Section, options: Mapping[str, object]) -> None:
    raw = options["url"]
    url = raw.reveal() if isinstance(raw, Secret) else str(raw)
    try:
        host, port, tls = host_port(url)
    except ValueError:
        section.add("fail", "url", "not an http(s) URL")
        return
    timeout = options.get("timeout_secs", DEFAULT_TIMEOUT_SECS)
    timeout_secs = float(timeout) if isinstance(timeout, int | float) else DEFAULT_TIMEOUT_SECS
    try:
        context = _tls_context(options.get("tls")) if tls else None
    except (OSError, ssl.SSLError) as exc:
        section.add("fail", "tls", f"cannot load the CA file: {exc}")
        return
    try:
        await reach(host, port, tls=context, timeout_secs=timeout_secs)
    except ProbeError as exc:
        section.add("fail", "connect", str(exc))
        return
    how = "TLS handshake done" if tls else "plain http"
    section.add("ok", "connect", f"{host}:{port} reachable ({how}; no request sent)")


def _tls_context(tls: object) -> ssl.SSLContext:
    """The sink's `tls` options, whether kept as a mapping or an object with the same
    names (`verify`, `ca_file`)."""

    def option(name: str) -> object:
        if isinstance(tls, Mapping):
            return tls.get(name)
        return getattr(tls, name, None)

    if option("verify") is False:
        return unverified_context()
    ca_file = option("ca_file")
    if ca_file:
        return ssl.create_default_context(cafile=str(ca_file))
    return ssl.create_default_context()


def _check_path(section: Section, path: str) -> None:
    if path == "-":
        section.add("ok", "output", "stdout")
        return
    file = Path(path)
    if file.exists():
        ok = file.is_file() and os.access(file, os.W_OK)
        section.add("ok" if ok else "fail", "output", f"{file} {_writable(ok)}")
        return
    parent = file.parent
    ok = parent.is_dir() and os.access(parent, os.W_OK | os.X_OK)
    section.add("ok" if ok else "fail", "output", f"{file} (new file; {parent} {_writable(ok)})")


def _writable(ok: bool) -> str:
    return "is writable" if ok else "is not writable by this user"
