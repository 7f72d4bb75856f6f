"""`python -m saumaton` runs the CLI."""

from saumaton.cli import main

main()
