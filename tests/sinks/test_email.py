"""`type: email` against a real SMTP server on loopback (aiosmtpd with STARTTLS and AUTH
required, or implicit TLS): the mails it receives are parsed and checked, and each
failure (server down, AUTH refused, TLS mismatch, an untrusted certificate, 4xx and 5xx
replies) ends in its documented outcome with nothing lost."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from pvewatch.config.load import load_config
from pvewatch.config.types import Config, SinkConfig
from pvewatch.errors import ConfigError, SinkError
from pvewatch.lifecycle import daemon
from pvewatch.model import Severity
from pvewatch.operate.connect import check_connections
from pvewatch.operate.deliveries import sink_test
from pvewatch.secret import Secret
from pvewatch.sinks.mail import MailSink
from pvewatch.sinks.mail_options import MailOptions
from pvewatch.sinks.table import SINK_TYPES
from pvewatch.store.opening import open_store
from tests.config.support import base, commented_sink, write
from tests.e2e.harness import control, simulator, watcher_config

from .contract import check_sink_contract, guest_started, guest_stopped
from .smtp_server import PASSWORD, USER, SmtpServer, free_port, smtp_server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[SmtpServer]:
    with smtp_server(tmp_path) as s:
        yield s


def options(server: SmtpServer, **changes: Any) -> MailOptions:
    o = MailOptions(
        host=server.host,
        port=server.port,
        sender="pvewatch@example.net",
        to=("ops@example.net", "Oncall <oncall@example.net>"),
        ca_file=server.ca_file,
        username=USER,
        password=Secret(PASSWORD),
    )
    return replace(o, **changes)


def sink(server: SmtpServer, **changes: Any) -> MailSink:
    return MailSink("mail", options(server, **changes))


async def failure(s: MailSink, *events: Any) -> SinkError:
    with pytest.raises(SinkError) as caught:
        await s.send(list(events) or [guest_stopped()])
    assert PASSWORD not in str(caught.value)
    return caught.value


# --- what arrives ----------------------------------------------------------------------


async def test_one_event_is_one_mail_with_text_and_escaped_html(server: SmtpServer) -> None:
    event = replace(guest_stopped(), summary="VM 100 <b>web1</b> & co stopped")
    await sink(server).send([event])
    (got,) = server.mails
    msg = got.message
    assert got.sender == "pvewatch@example.net"
    assert got.recipients == ["ops@example.net", "oncall@example.net"]
    assert msg["Subject"] == "[pvewatch] WARNING: [lab] VM 100 <b>web1</b> & co stopped"
    assert msg["Message-ID"] == f"<{event.id}@example.net>"
    assert msg["In-Reply-To"] is None
    assert msg["Auto-Submitted"] == "auto-generated"
    text = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert text is not None
    assert html is not None
    plain = text.get_content()
    assert "VM 100 <b>web1</b> & co stopped" in plain
    assert "Resource: qemu/100 (web1) on pve1" in plain
    assert event.id in plain
    markup = html.get_content()
    assert "VM 100 &lt;b&gt;web1&lt;/b&gt; &amp; co stopped" in markup
    assert "<b>web1</b>" not in markup


async def test_a_burst_is_one_mail(server: SmtpServer) -> None:
    node = replace(
        guest_stopped(1),
        id="evt_node",
        type="node.offline",
        severity=Severity.CRITICAL,
        summary="Node pve1 offline",
    )
    guests = [guest_stopped(100 + i) for i in range(20)]
    await sink(server).send([*guests, node])
    (got,) = server.mails
    assert got.message["Subject"] == (
        "[pvewatch] CRITICAL: [lab] Node pve1 offline, and 20 more: 20 guests"
    )
    body = got.message.get_body(("plain",))
    assert body is not None
    plain = body.get_content()
    assert all(f"VM {100 + i} (web1) on pve1 stopped" in plain for i in range(20))
    # A burst's id is derived from its events: the same burst sent again has the same id.
    again = server.mails[0].message["Message-ID"]
    await sink(server).send([*guests, node])
    assert server.mails[1].message["Message-ID"] == again != f"<{node.id}@example.net>"


async def test_a_resolution_threads_under_its_problem(server: SmtpServer) -> None:
    problem = guest_stopped()
    fixed = guest_started(problem)
    s = sink(server, subject="{severity} {cluster} x{count}: {summary} {unknown}")
    await s.send([problem])
    await s.send([fixed])
    first, second = (m.message for m in server.mails)
    assert second["In-Reply-To"] == first["Message-ID"]
    assert second["References"] == first["Message-ID"]
    assert second["Subject"] == "RESOLVED lab x1: [lab] VM 100 (web1) on pve1 started {unknown}"


async def test_implicit_tls(tmp_path: Path) -> None:
    with smtp_server(tmp_path, implicit_tls=True) as server:
        await sink(server, tls="tls").send([guest_stopped()])
        assert len(server.mails) == 1


async def test_starttls_is_required_and_none_only_when_written(tmp_path: Path) -> None:
    with smtp_server(tmp_path, plain=True) as server:
        error = await failure(sink(server, username=None, password=None))
        assert error.retryable
        assert "STARTTLS" in str(error)
        assert not server.mails
        await sink(server, tls="none", ca_file=None, username=None, password=None).send(
            [guest_stopped()]
        )
        assert len(server.mails) == 1


async def test_it_meets_the_sink_contract(server: SmtpServer) -> None:
    await check_sink_contract(lambda: sink(server))
    assert server.mails  # the sample events and the burst arrived
    assert all(m.message["Message-ID"] for m in server.mails)


# --- what fails, and how ---------------------------------------------------------------


async def test_a_5xx_reply_fails_for_good_with_the_reply(server: SmtpServer) -> None:
    server.handler.replies["ops@example.net"] = "550 5.1.1 <ops@example.net>: no such user"
    server.handler.replies["oncall@example.net"] = "550 5.1.1 mailbox unavailable"
    error = await failure(sink(server))
    assert not error.retryable
    assert "2 of 2 recipient(s) refused" in str(error)
    assert "ops@example.net: SMTP 550 5.1.1 <ops@example.net>: no such user" in str(error)


async def test_a_4xx_reply_is_retried(server: SmtpServer) -> None:
    server.handler.replies["oncall@example.net"] = "451 4.7.1 greylisted, try later"
    error = await failure(sink(server))
    assert error.retryable
    assert "1 of 2 recipient(s) refused" in str(error)
    assert "SMTP 451 4.7.1 greylisted" in str(error)
    server.handler.data_reply = "554 5.6.0 message content rejected"
    server.handler.replies.clear()
    error = await failure(sink(server))
    assert not error.retryable
    assert "message refused: SMTP 554 5.6.0 message content rejected" in str(error)


async def test_auth_refused_is_not_retried(server: SmtpServer) -> None:
    error = await failure(sink(server, password=Secret("wrong-password")))
    assert not error.retryable
    assert "AUTH refused: SMTP 535" in str(error)
    assert "wrong-password" not in str(error)
    assert not server.mails


async def test_server_down_tls_mismatch_and_untrusted_certificates_are_retried(
    server: SmtpServer,
) -> None:
    down = await failure(sink(server, port=free_port()))
    assert down.retryable
    assert "cannot connect" in str(down)
    mismatch = await failure(sink(server, tls="tls", timeout_secs=3))
    assert mismatch.retryable
    assert "TLS" in str(mismatch) or "timed out" in str(mismatch)
    untrusted = await failure(sink(server, ca_file=None))
    assert untrusted.retryable
    assert "TLS: " in str(untrusted)
    assert "certificate" in str(untrusted)
    plain = await failure(sink(server, tls="none"))  # the server offers AUTH after TLS only
    assert plain.retryable
    assert "AUTH extension is not supported" in str(plain)
    assert not server.mails


# --- config, check-config --connect, test-sink ------------------------------------------


def test_the_config_reads_its_options(tmp_path: Path) -> None:
    (tmp_path / "smtp.pass").write_text("pw\n")
    doc = {
        **base(),
        "sinks": {
            "mail": {
                "type": "email",
                "host": "smtp.example.net",
                "username": "pvewatch",
                "password_file": "smtp.pass",
                "from": "pvewatch@example.net",
                "to": ["ops@example.net"],
            }
        },
    }
    (cfg,) = load_config(write(tmp_path, doc), {}, sink_types=SINK_TYPES).sinks
    o = cfg.options
    assert isinstance(o, MailOptions)
    assert (o.host, o.port, o.tls, o.username) == ("smtp.example.net", 587, "starttls", "pvewatch")
    assert o.password is not None
    assert o.password.reveal() == "pw"
    doc["sinks"]["mail"] |= {"tls": "tls"}
    (cfg,) = load_config(write(tmp_path, doc), {}, sink_types=SINK_TYPES).sinks
    assert isinstance(cfg.options, MailOptions)
    assert cfg.options.port == 465


def test_config_problems_name_their_keys(tmp_path: Path) -> None:
    doc = {
        **base(),
        "sinks": {
            "mail": {
                "type": "email",
                "tls": "none",
                "ca_file": "ca.pem",
                "username": "pvewatch",
                "from": "not an address",
                "to": ["Ops <ops@example.net>", 7, "a b@example.net"],
                "subject": "{severity} {colour}",
            }
        },
    }
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, doc), {}, sink_types=SINK_TYPES)
    problems = caught.value.problems
    assert problems[0] == "sinks.mail.host: required: the SMTP server's name or address"
    assert any(p.startswith("sinks.mail.ca_file: cannot read") for p in problems)
    assert "sinks.mail.username: needs password or password_file" in problems
    assert "sinks.mail.from: not a mail address: 'not an address'" in problems
    assert "sinks.mail.to[1]: expected a string, got an integer" in problems
    assert not any(p.startswith("sinks.mail.to[1]: required") for p in problems)
    assert "sinks.mail.to[2]: not a mail address: 'a b@example.net'" in problems
    assert not any(p.startswith("sinks.mail.to[0]") for p in problems)
    assert any(p.startswith("sinks.mail.subject: unknown field {colour}") for p in problems)


async def test_check_config_connect_logs_in_and_sends_nothing(server: SmtpServer) -> None:
    def config(o: MailOptions) -> Config:
        return Config(clusters=(), sinks=(SinkConfig("mail", "email", o),))

    (section,) = await check_connections(config(options(server)))
    assert [(c.status, c.what) for c in section.checks] == [("ok", "connect"), ("ok", "auth")]
    assert server.handler.logins == 1
    bad = options(server, password=Secret("nope"))
    (section,) = await check_connections(config(bad))
    assert [(c.status, c.what) for c in section.checks] == [("fail", "auth")]
    assert "SMTP 535" in section.checks[0].message
    (section,) = await check_connections(config(options(server, ca_file=None)))
    assert section.checks[0].status == "fail"
    assert "TLS" in section.checks[0].message
    assert not server.mails


async def test_test_sink_sends_a_sample_mail(server: SmtpServer) -> None:
    config = Config(clusters=(), sinks=(SinkConfig("mail", "email", options(server)),))
    out, err = io.StringIO(), io.StringIO()
    assert await sink_test(config, "mail", out=out, err=err) == 0
    (got,) = server.mails
    assert "VM 100 (web1) on pve1 stopped by alice@pve" in got.message["Subject"]
    lines = out.getvalue().splitlines()
    assert lines[0] == f"sink mail: smtp://127.0.0.1:{server.port} accepted the mail for " + (
        "ops@example.net, Oncall <oncall@example.net>"
    )
    assert lines[1] == f"  Message-ID: {got.message['Message-ID']}"
    assert "queued as 4711" in lines[3]
    server.handler.data_reply = "554 5.7.1 spam"
    assert await sink_test(config, "mail", out=out, err=err) == 1
    assert "NOT delivered" in out.getvalue()
    assert "(would not be retried)" in out.getvalue()


# --- through the outbox: nothing lost ----------------------------------------------------


async def test_the_daemon_delivers_retries_and_keeps_the_5xx_reply(
    tmp_path: Path, server: SmtpServer
) -> None:
    up = options(server)
    with simulator() as sim:
        with control(sim) as c:
            c.patch("/resources/qemu/100", json={"status": "running"}).raise_for_status()
        base_config = watcher_config(sim, tmp_path)

        def config(o: MailOptions) -> Config:
            return dataclasses.replace(base_config, sinks=(SinkConfig("mail", "email", o),))

        assert await daemon.once(config(up)) == 0  # the baseline
        with control(sim) as c:
            c.patch("/resources/qemu/100", json={"status": "stopped"}).raise_for_status()
        # The server is down: the event stays queued.
        assert await daemon.once(config(replace(up, port=free_port()))) == 0
        with open_store(base_config.store) as store:
            (row,) = store.deliveries(sink="mail")
        assert row.state == "pending"
        assert "cannot connect" in (row.last_error or "")
        with open_store(base_config.store) as store:  # retry now, not in a second
            store.requeue(sinks=["mail"], event_id=row.event.id, now=datetime.now(UTC))
        assert await daemon.once(config(up)) == 0
        (got,) = server.mails
        assert got.message["Message-ID"] == f"<{row.event.id}@example.net>"
        # A 5xx: dead, with the server's reply for `pvewatch deliveries`.
        server.handler.data_reply = "554 5.7.1 rejected by policy"
        with control(sim) as c:
            c.patch("/resources/qemu/100", json={"status": "running"}).raise_for_status()
        assert await daemon.once(config(up)) == 0
    with open_store(base_config.store) as store:
        (dead,) = store.deliveries(sink="mail", state="dead")
    assert dead.event.type == "guest.started"
    assert "SMTP 554 5.7.1 rejected by policy" in (dead.last_error or "")


def test_the_commented_mail_sink_in_the_example_is_valid(tmp_path: Path) -> None:
    """watch.yaml.example's `mail` sink, uncommented, loads as documented."""
    (tmp_path / "smtp.pass").write_text("pw\n")
    doc = yaml.safe_dump(base()) + "sinks:\n" + commented_sink("mail")
    env = {"CREDENTIALS_DIRECTORY": str(tmp_path)}
    (cfg,) = load_config(write(tmp_path, doc), env, sink_types=SINK_TYPES).sinks
    o = cfg.options
    assert isinstance(o, MailOptions)
    assert (o.host, o.port, o.tls, o.sender, o.to) == (
        "smtp.example.net", 587, "starttls", "pvewatch@example.net", ("ops@example.net",)
    )  # fmt: skip
    assert o.password == Secret("pw")
