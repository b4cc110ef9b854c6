"""Operational telemetry: structured logs with request and trace ids (``logs``), optional
OpenTelemetry tracing (``tracing``), CPU by thread (``threads``), and the metrics of a server's
processes read from each other (``siblings``) and summed (``process_sum``). Bottom layer:
imports only config, events and metrics."""
