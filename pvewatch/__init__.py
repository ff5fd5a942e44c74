"""pvewatch: watch Proxmox VE clusters and send every change where it is needed.

Read it in the order an event travels (tests/test_layers.py holds the layers):
- ground: `model` (resources, snapshots, events), `errors`, `secret`, `upid` (task ids),
  `routing` (which sinks an event reaches), `silence` (which events an operator silenced),
  `duplicates` (a failure seen by the poll and by PVE's notification is one page)
- `config/`      watch.yaml → frozen dataclasses (pure)
- `watch/`       rows → snapshot → events → rules (the pure core); `watch/checks/` the
                 health checks' answers → findings → events
- `net/`         TLS and connection probes, shared by the PVE client and the sinks
- `pve/`         the PVE API client; `store/` the state store (SQLite or PostgreSQL)
- `sinks/`       where events go: one module and one row per sink type; `formats/` (pure)
- `observability/`  metrics, probes, pvewatch's own log
- `pipeline`     one poll of one cluster; `checking/` one health check of one cluster
                 (HA, Ceph, replication, ...), beside the poll; `deliver/` outbox → sink;
                 `http/` the listener
- `lifecycle/`   the daemon: components wired, started and stopped, signals, reloads
- `operate/`     the operator's commands; `commands` their table; `cli` parses, dispatches
- `simulator/`   a simulated PVE cluster behind its real API, for the demo and the tests
"""

__version__ = "0.1.0"
