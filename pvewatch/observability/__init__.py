"""How pvewatch shows what it sees and how it is doing: `metrics` (the Prometheus
exposition; prometheus_client lives there) with its label helpers in `series`, `probes`
(/healthz and /readyz), `logs` (pvewatch's own log: text or JSON, secrets masked) and
`observe` (the Observer protocol the poll and delivery loops report to)."""
