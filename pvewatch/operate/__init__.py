"""The operator's commands. They read the same config and use the same PVE client, store
and sinks as the daemon, so what they report is what the daemon will meet.

- `connect`     `check-config --connect`: every endpoint (`report` prints what it found);
  a sink is checked by its type's row
- `api`         `api get`: the PVE API, read-only, like `pvesh get`
- `status`      which replica leads which cluster, each cluster's last poll
- `deliveries`  `deliveries`, `replay`, `test-sink`
- `silences`    `silence add | list | remove`
- `health`      `health`: the running daemon's /healthz (the image's HEALTHCHECK)
- `demo`        `demo`: the simulator with churn and a watcher against it
"""
