"""The tap's hot-path statements and the inline SQLite driver they run on."""
