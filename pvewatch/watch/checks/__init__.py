"""The health checks beside the poll, pure: answers → findings → events.

- `findings`  one check's answers → `Reading`: a `Finding` per thing that can be bad, with
              a stable condition key (`replication.failed:replication/100-0`); HA, Ceph,
              QDevice and replication here, `nodes` certificates, disks and ZFS pools,
              `backups` backup coverage and age
- `evaluate`  a reading and what the check remembers → the events (problems after their
              hold, escalations, resolutions, HA state changes) and the new state
- `cause`     the task behind a failed replication or a stale backup, from /cluster/tasks

The runner that reads the answers and commits is `pvewatch.checking`.
"""
