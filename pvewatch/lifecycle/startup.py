"""What a command does before its work: find the config file, load it with the table of
sink types (every problem on stderr), and set up pvewatch's own log from its flags and
the config's `log:` section."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from pvewatch.config.load import DEFAULT_CONFIG_PATH, load_config
from pvewatch.config.logging import LogConfig
from pvewatch.config.types import Config
from pvewatch.errors import ConfigError
from pvewatch.lifecycle.reload import ConfigSource
from pvewatch.observability.logs import setup_logging
from pvewatch.secret import secret_values
from pvewatch.sinks.table import SINK_TYPES


def config_path(value: str | None) -> Path:
    """`--config`, else $PVEWATCH_CONFIG, else /etc/pvewatch/watch.yaml."""
    if value:
        return Path(value)
    return Path(os.environ.get("PVEWATCH_CONFIG") or DEFAULT_CONFIG_PATH)


def load(path: Path) -> Config | None:
    """The config at `path`; None after printing every problem on stderr."""
    try:
        return load_config(path, os.environ, sink_types=SINK_TYPES)
    except ConfigError as e:
        print(e, file=sys.stderr)
        return None


def load_from(args: argparse.Namespace) -> Config | None:
    """The config `--config` names (see `config_path`), or None as `load`."""
    return load(config_path(args.config))


def logging_from(args: argparse.Namespace, config: Config | None) -> None:
    """The flag wins over the config's `log:`, which wins over the defaults."""
    log = config.log if config is not None else LogConfig()
    secrets = secret_values(config) if config is not None else []
    level, fmt = args.log_level or log.level, args.log_format or log.format
    setup_logging(level, fmt, os.environ, secrets=secrets)


def config_source(args: argparse.Namespace) -> ConfigSource:
    """What SIGHUP reads: the same file, and the logging set up again for what it says."""
    path = config_path(args.config)
    return ConfigSource(
        load=lambda: load_config(path, os.environ, sink_types=SINK_TYPES),
        applied=lambda config: logging_from(args, config),
    )
