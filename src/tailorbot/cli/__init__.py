"""The ``tailorbot`` command line (typer).

Each command group is a module with a ``register(app)`` function; adding one is the module
plus one name in :data:`COMMAND_MODULES`. Heavy imports (uvicorn, the engine) happen inside
the commands, so ``tailorbot --help`` stays fast.
"""

from __future__ import annotations

import importlib

import typer

from tailorbot.cli.common import OneLineErrors

# Modules of tailorbot.cli that register commands, in the order of `tailorbot --help`.
COMMAND_MODULES = (
    "demo",
    "serve",
    "data",
    "train",
    "kb",
    "recs",
    "policy",
    "rasa",
    "dlq",
    "label",
    "dataset",
    "models",
    "audit",
    "retrain",
)

app = typer.Typer(
    name="tailorbot",
    help="Real-time personalization for customer-support chatbots.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=OneLineErrors,
)

for _name in COMMAND_MODULES:
    importlib.import_module(f"{__name__}.{_name}").register(app)


def main() -> None:
    """Entry point of the ``tailorbot`` console script."""
    app()


__all__ = ["COMMAND_MODULES", "app", "main"]
