"""Secret: never shown; secret_values: every secret a config holds, for the log to mask."""

from __future__ import annotations

from pathlib import Path

from pvewatch.config.types import ClusterConfig, Config, HttpConfig, SinkConfig, StoreConfig
from pvewatch.secret import Secret, secret_values
from pvewatch.sinks.webhook_options import WebhookOptions


def test_a_secret_shows_no_value() -> None:
    secret = Secret("hunter22")
    assert "hunter22" not in f"{secret} {secret!r} {[secret]} { ({'k': secret}) }"


def test_secret_values_finds_every_secret_of_a_config() -> None:
    config = Config(
        clusters=(
            ClusterConfig("a", ("https://pve1",), token=Secret("u@pve!id=0b2c7a9e-3f4d")),
            ClusterConfig("b", ("https://pve2",), username="u@pam", password=Secret("pw-1234")),
        ),
        store=StoreConfig(path=Path("state.db")),
        http=HttpConfig(basic_auth_users={"prom": Secret("$2b$04$hash")}),
        sinks=(
            SinkConfig(
                "hook",
                "webhook",
                WebhookOptions(
                    url=Secret("https://hooks.example/x?token=abcdef123456"),
                    secret=(Secret("whsec_a2V5a2V5a2V5"),),
                    headers={"Authorization": Secret("Bearer t0k3n")},
                ),
            ),
        ),
    )
    assert secret_values(config) == [
        "https://hooks.example/x?token=abcdef123456",
        "u@pve!id=0b2c7a9e-3f4d",
        "whsec_a2V5a2V5a2V5",
        "0b2c7a9e-3f4d",  # the token's secret, in case only it is echoed
        "Bearer t0k3n",
        "abcdef123456",
        "$2b$04$hash",
        "pw-1234",
    ]


def test_short_values_and_short_tails_are_not_masked_alone() -> None:
    assert secret_values([Secret("abc"), Secret("key=abc"), Secret("")]) == ["key=abc"]
