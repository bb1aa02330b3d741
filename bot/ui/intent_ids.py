"""Dialog (intent) ids that do not repeat.

aiogram-dialog names each dialog it starts `second % 10**8 + randint(0, 99) * 10**8`: two
dialogs started within the same second get the same id once in a hundred. A member's dialog
contexts are stored under `aiogd:context:<id>`, so the second one overwrites the first, and
closing it (`done()`) deletes the context its parent still needs: aiogram-dialog raises
UnknownIntent and the member is sent the stale-button menu instead of the screen they came
from. Taps a second apart, and two dialogs started by one update (a shared idea's link opens
the menu and the idea), hit it.
"""

from __future__ import annotations

import secrets

from aiogram_dialog.api.entities import stack

# 48 random bits: at most 9 characters of the 64 bytes of a button's callback data.
ID_BITS = 48


def new_intent_id() -> str:
    # secrets, not random: processes forked with one random state would draw the same ids.
    return stack.id_to_str(secrets.randbits(ID_BITS))


def use_unique_intent_ids() -> None:
    """Make `Stack.push` (which looks `new_id` up in its module at each call) use ours."""
    if not callable(getattr(stack, "new_id", None)):
        # Another aiogram-dialog: fail at start-up rather than silently keep the old ids.
        raise RuntimeError("aiogram_dialog.api.entities.stack.new_id is gone: see intent_ids.py")
    stack.new_id = new_intent_id
