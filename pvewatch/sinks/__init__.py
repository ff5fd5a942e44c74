"""Sinks: where events go. One small module per sink type, behind one interface.

- `base`      the Sink protocol and SinkType, the row that declares a sink type
- `table`     SINK_TYPES, the table `type:` picks from
- `log`, `webhook` (+ `webhook_options`, `signing`, `response`), `prometheus`: the types
- `mqtt` (+ `mqtt_options`, `mqtt_connection`, `mqtt_messages`: topics and payloads,
  pure): the mqtt type
- `formats/`  the bodies a webhook sends (pure)
"""
