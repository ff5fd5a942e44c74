"""The listener: /metrics, /healthz, /readyz and whatever else people and systems ask
pvewatch over HTTP. `listener` (the server; aiohttp lives there), `gate` (connection cap,
deadlines, TLS), `routes` (what each path answers), `auth` (basic auth, bcrypt lives there;
bearer tokens), `notify` (`POST /notify/{name}`: PVE's and PBS's notifications)."""
