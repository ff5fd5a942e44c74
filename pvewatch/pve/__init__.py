"""The PVE API: `client` (PveClient: auth, TLS, failover, typed errors; httpx lives there)
and `stable` (the strict typed decode of /cluster/resources that quiet polls use).

This package is the only code that knows PVE URLs. Task ids (UPIDs) are parsed in
`pvewatch.upid`, below both this package and the watch core.
"""
