"""watch.yaml → frozen dataclasses. Pure: no sockets, no clock; nothing here imports a
sink, the store or the PVE client.

One module per step (each section module reads its part of the document with the
getters of `reading` and reports into the same `Ctx`):
- `load`      load_config, check_config, summary_lines and the top level
- `types`     the frozen dataclasses
- `reading`   YAML, `${VAR}` expansion, typed getters, secrets
- `clusters`  the clusters section; `service` the store and http sections (`web`,
  `health`: the listener's TLS and basic auth, `pvewatch health`'s credentials)
- `sinks`     the sinks section; `routing` and `delivery` its framework-owned keys
- `rules`, `shape`  expect, maintenance, rules and thresholds; `logging` the log section
"""
