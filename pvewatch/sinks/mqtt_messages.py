"""What the mqtt sink publishes, as pure functions: topics and payloads (no I/O).

    <prefix>/<cluster>/<event type>          each event, Event.to_dict() as JSON (QoS 1)
    <prefix>/<cluster>/state/<resource id>   the resource's current state (QoS 1, retained)
    <discovery>/binary_sensor/pvewatch/<object id>/config
                                             Home Assistant discovery of a node or guest

Names come from the PVE server, so every topic level is made valid here: MQTT forbids
the wildcards + and # and NUL in a topic name, and `/` separates levels. A resource id
keeps its own levels (`qemu/100` → `.../state/qemu/100`), empty ones dropped
(`/pool/prod` → `.../state/pool/prod`); a cluster's name is one level; an event without
a cluster (`sink.disabled`) goes under `_`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from pvewatch.model import Event, Resource
from pvewatch.sinks.formats.common import dumps

NO_CLUSTER = "_"
# Which resource types Home Assistant discovery announces, as what, and when they run.
DISCOVERED = {
    "node": ("Node", "online"),
    "qemu": ("VM", "running"),
    "lxc": ("Container", "running"),
}
_FORBIDDEN = re.compile(r"[+#\x00]")
_NOT_SLUG = re.compile(r"[^A-Za-z0-9_-]+")


def level(text: str) -> str:
    """One topic level holding `text`: no /, wildcard or NUL, valid UTF-8, never empty."""
    clean = _FORBIDDEN.sub("_", text.replace("/", "_"))
    return clean.encode("utf-8", "replace").decode("utf-8") or NO_CLUSTER


def levels(resource_id: str) -> str:
    """A resource id as topic levels: its own `/`s kept, empty levels dropped."""
    parts = [level(part) for part in resource_id.split("/") if part]
    return "/".join(parts) or NO_CLUSTER


def event_topic(prefix: str, event: Event) -> str:
    return f"{prefix}/{level(event.cluster)}/{level(event.type)}"


def state_topic(prefix: str, cluster: str, resource_id: str) -> str:
    return f"{prefix}/{level(cluster)}/state/{levels(resource_id)}"


def event_payload(event: Event) -> bytes:
    """The event in its native shape (`Event.to_dict()`), as JSON."""
    return dumps(event.to_dict())


def running(resource: Resource) -> bool | None:
    """Whether a node is online or a guest runs; None for other types."""
    found = DISCOVERED.get(resource.type)
    return None if found is None else resource.status == found[1]


def state_payload(cluster: str, resource: Resource) -> bytes:
    """The resource as the last stored poll saw it, with `running` for nodes and guests."""
    state: dict[str, Any] = {"cluster": cluster, **resource.to_dict()}
    state["running"] = running(resource)
    return dumps(state)


def changes(
    resources: Mapping[str, Resource], published: Mapping[str, Resource], gone: str | None
) -> list[str]:
    """The ids whose state topic must be published: new or changed since `published`,
    and deleted (in `published`, or `gone`, but no longer in `resources`)."""
    changed = [rid for rid, r in resources.items() if published.get(rid) != r]
    deleted = [rid for rid in published if rid not in resources]
    if gone is not None and gone not in resources and gone not in published:
        deleted.append(gone)
    return changed + deleted


def unique_id(cluster: str, resource_id: str) -> str:
    """Stable and unique per (cluster, resource): readable slugs, and a hash of the exact
    names so that `qemu/100` and `qemu_100` never meet."""
    digest = hashlib.sha256(f"{cluster}\x00{resource_id}".encode("utf-8", "replace"))
    slug = _NOT_SLUG.sub("_", f"{cluster}_{resource_id}").strip("_")
    return f"pvewatch_{slug}_{digest.hexdigest()[:8]}"


def discovery_topic(discovery_prefix: str, cluster: str, resource_id: str) -> str:
    return f"{discovery_prefix}/binary_sensor/pvewatch/{unique_id(cluster, resource_id)}/config"


def discovery_payload(prefix: str, cluster: str, resource: Resource) -> bytes:
    """A Home Assistant binary sensor "running" (device class running) for a node or a
    guest, reading the retained state topic; its device is the resource."""
    model = DISCOVERED[resource.type][0]
    uid = unique_id(cluster, resource.id)
    label = resource.name or resource.id
    if resource.vmid is not None:
        label = f"{label} ({resource.vmid})"
    config = {
        "name": "Running",
        "unique_id": f"{uid}_running",
        "object_id": f"{uid}_running",
        "state_topic": state_topic(prefix, cluster, resource.id),
        "value_template": "{{ 'ON' if value_json.running else 'OFF' }}",
        "device_class": "running",
        "device": {
            "identifiers": [uid],
            "name": f"{cluster} {label}",
            "manufacturer": "Proxmox VE",
            "model": model,
        },
        "origin": {"name": "pvewatch"},
    }
    return dumps(config)
