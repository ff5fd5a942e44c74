"""The operator's commands: `check-config --connect` (connect.py, sinkcheck.py) and
`api get` (api.py). They read the same config and use the same PVE client as the daemon,
so what they report is what the daemon will meet."""
