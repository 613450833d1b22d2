"""``python -m ketacare`` runs the command line."""

from ketacare.cli import main

main()
