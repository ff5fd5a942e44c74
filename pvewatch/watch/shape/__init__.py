"""Shaping: what of a poll's events is sent, what is only recorded, and what comes later.
`steps` runs the steps in order: `inhibit`, `flapping`, `holds`, `conditions` (each its
own module; `common` holds what they share)."""
