"""``tailorbot rasa consume``: Rasa's event-broker topic into tailorbot."""

from __future__ import annotations

import signal
import threading
from typing import Annotated

import typer

from tailorbot.cli.common import ConfigOption, DataDirOption, fail, load_settings, reports_errors

rasa_app = typer.Typer(help="Rasa integration (docs/integrations.md).", no_args_is_help=True)


@rasa_app.command("consume")
@reports_errors
def consume(
    bootstrap: Annotated[
        str, typer.Option("--bootstrap", help="Kafka bootstrap servers of Rasa's event broker.")
    ],
    topic: Annotated[str, typer.Option("--topic", help="Rasa's event topic.")] = "rasa_core_events",
    group: Annotated[
        str, typer.Option("--group", help="Consumer group; members share the partitions.")
    ] = "tailorbot-rasa",
    kafka_option: Annotated[
        list[str] | None,
        typer.Option(
            "--kafka-option",
            "-X",
            help="librdkafka property KEY=VALUE (security, timeouts); repeatable.",
        ),
    ] = None,
    max_idle_s: Annotated[
        float | None,
        typer.Option("--max-idle-s", min=0, help="Stop after this long without a record."),
    ] = None,
    until_end: Annotated[
        bool,
        typer.Option(
            "--until-end",
            help="Stop once the partitions this member was given are read and committed "
            "to their end (a one-off backfill).",
        ),
    ] = False,
    connect_timeout: Annotated[
        float,
        typer.Option("--connect-timeout", min=0.1, help="Seconds to wait for the broker at start."),
    ] = 10.0,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Read Rasa's tracker events from its Kafka event broker into tailorbot's event log.

    Runs until SIGINT/SIGTERM (or --until-end, --max-idle-s) as one member of a consumer
    group; offsets are committed only after the events are in tailorbot's log. Slots named
    in rasa_slot_attributes update profiles. The features follow as tailorbot's stream
    workers apply the events.
    """
    from tailorbot.integrations.profiles import ProfileUpdater
    from tailorbot.integrations.rasa_consumer import (
        KafkaConfigError,
        RasaBrokerConsumer,
        UnknownTopic,
    )
    from tailorbot.integrations.rasa_sink import ServiceSink
    from tailorbot.runtime import Runtime

    extra = {}
    for option in kafka_option or []:
        key, sep, value = option.partition("=")
        if not sep or not key:
            fail(f"--kafka-option {option!r}: expected KEY=VALUE")
        extra[key.strip()] = value.strip()
    settings = load_settings(config, data_dir=data_dir)
    runtime = Runtime(settings)
    profiles = ProfileUpdater(runtime.stores.profiles, runtime.users)
    sink = ServiceSink(runtime.ingestion, profiles, runtime.settings.max_batch_events)
    consumer = RasaBrokerConsumer(
        bootstrap,
        topic,
        sink,
        runtime.rasa_mapper(),
        group=group,
        config=extra,
        connect_timeout_s=connect_timeout,
    )

    def stop_soon(*_: object) -> None:
        # From a thread of its own: the handler runs in the main thread, which may hold the
        # stop event's lock at that instant (inside its wait), and setting it here would hang
        threading.Thread(target=consumer.stop, name="rasa-consume-stop", daemon=True).start()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, stop_soon)
    typer.echo(f"reading {topic!r} at {bootstrap} in group {group!r}; Ctrl-C stops")
    try:
        reached = consumer.run(max_idle_s=max_idle_s, until_end=until_end)
    except KafkaConfigError as exc:
        # name the -X option librdkafka refused, when it is one
        named = [key for key in extra if key in str(exc)]
        fail(f"--kafka-option {named[0]}: {exc}" if named else f"kafka settings: {exc}")
    except UnknownTopic as exc:
        fail(f"--topic: {exc} (--until-end reads a topic that exists)")
    finally:
        runtime.stop()
    typer.echo(
        f"events ingested: {consumer.ingested}, records skipped: {consumer.skipped}, "
        f"records committed: {consumer.committed}"
    )
    if until_end and not reached:  # a job runner must not count an interrupted backfill done
        fail("--until-end: stopped before its partitions were read to their end")


def register(app: typer.Typer) -> None:
    app.add_typer(rasa_app, name="rasa")
