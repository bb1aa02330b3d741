"""aiogram-dialog dialogs, one per module; their states are in states.py."""
