"""The `consultbot` command line: above the bot and the tools."""
