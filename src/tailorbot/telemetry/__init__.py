"""Operational telemetry: structured logs with request and trace ids (``logs``) and optional
OpenTelemetry tracing (``tracing``). Bottom layer: imports only config and events."""
