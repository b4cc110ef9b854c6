"""Events: the schema, PII redaction and JSON Schema export."""

from tailorbot.events.schema import EVENT_ADAPTER, EVENT_TYPES, Event, EventBase, json_schemas

__all__ = ["EVENT_ADAPTER", "EVENT_TYPES", "Event", "EventBase", "json_schemas"]
