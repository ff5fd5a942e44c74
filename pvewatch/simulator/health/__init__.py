"""What `/cluster/resources` cannot show, simulated: HA, Ceph, replication, QDevice,
certificates, disks and ZFS, backup jobs and backups, PVE's own notifications, the
privileges that guard them, and exact answers for any GET path (`overrides.py`).

`state.py` holds it all (pure, on the cluster, under its lock); one module per family
renders PVE's answers and applies `/_sim/` edits; `routes.py` serves the API paths,
`control.py` the control paths, `notifier.py` sends notifications (the only I/O here).
Shapes follow ../shared/pve-api/health/FACTS-health.md and PVE's code cited there.
"""
