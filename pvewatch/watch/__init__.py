"""The pure core of the watch pipeline: rows → snapshot → events. No clock, no I/O: `now`
is always an argument.

- `normalize`  one poll of /cluster/resources → Snapshot (`normalize`, `carry_forward`)
- `rows`       the rows as a typed decode gives them (`StableRows`): a quiet poll compares
               tuples and reuses last poll's resources
- `diff`       two snapshots → events (the first one is the baseline)
- `rule_input` what the rules know of one poll (`RuleInput`)
- `rules`      raw events → the events worth recording and sending, in steps: `cause`,
               `tasks`, `quorum`, `thresholds`, `shape/`, `suppress`
- `health`     the source's own events (source.unreachable, ...)
"""
