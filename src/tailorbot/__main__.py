"""``python -m tailorbot`` runs the CLI (what a server uses to start its worker process)."""

from tailorbot.cli import main

main()
