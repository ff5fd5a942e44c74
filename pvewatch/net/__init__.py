"""Outbound connections shared by the PVE client, the webhook sink and `check-config
--connect`: `tls` (ssl contexts and fingerprint pinning; httpcore lives there) and `probe`
(a TCP connection and TLS handshake without a request, and what such checks found)."""
