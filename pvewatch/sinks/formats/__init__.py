"""Webhook body formats: an Event (or a burst of them) → the bytes a receiving service
accepts. Pure: no sockets, no clock; importing a format loads no I/O library (jinja2 is
imported when a template is compiled).

- `base`     Payload (one message) and the Formatter protocol every format implements
- `table`    FORMATS, the table `format:` picks from, and build_formatter
- one module per format: `native`, `cloudevents`, `alertmanager`, `slack`, `discord`,
  `teams`, `ntfy`, `gotify`, `template`; `chat` is what the chat formats share, `common`
  what every format shares, `sample` the sample event of `pvewatch test-sink`
"""
