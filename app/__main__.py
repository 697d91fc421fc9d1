"""`python -m app` is the `cdp` command."""

from app.cli import main

main()
