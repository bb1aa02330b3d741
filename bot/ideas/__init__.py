"""Ideas: submit, browse, support, comment; moderation cards and buttons."""
