"""The table of sink types: `type:` in a sink's config picks a row (`pvewatch.sinks.base.
SinkType`: its options, builder and capabilities). Registration is this plain mapping,
passed explicitly to what reads configs and builds sinks; tests pass tables of their own.

Adding a sink type = one module in this package (its options dataclass and `parse`, the
sink, its row) + one line here + its tests, which run the shared contract in
tests/sinks/contract.py.
"""

from __future__ import annotations

from types import MappingProxyType

from pvewatch.sinks.alertmanager import ALERTMANAGER
from pvewatch.sinks.base import SinkTypes
from pvewatch.sinks.log import LOG
from pvewatch.sinks.mail import EMAIL
from pvewatch.sinks.mqtt import MQTT
from pvewatch.sinks.prometheus import PROMETHEUS
from pvewatch.sinks.webhook import WEBHOOK

SINK_TYPES: SinkTypes = MappingProxyType(
    {
        "log": LOG,
        "webhook": WEBHOOK,
        "prometheus": PROMETHEUS,
        "email": EMAIL,
        "alertmanager": ALERTMANAGER,
        "mqtt": MQTT,
    }
)
