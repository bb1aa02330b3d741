"""`python -m consultbot` = the `consultbot` command."""

from consultbot.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
