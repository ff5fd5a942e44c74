"""The operator's commands: `check-config --connect` (connect.py; a sink is checked by its
type's row), `api get` (api.py), and `deliveries`, `replay`, `test-sink` (deliveries.py).
They read the same config and use the same PVE client, store and sinks as the daemon, so
what they report is what the daemon will meet."""
