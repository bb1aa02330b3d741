"""Build aiogram's Bot API models when first used, not all of them at import.

`aiogram.types` ends by calling `model_rebuild` on each of its ~400 models, and each build
carries its own copy of every model it nests: 3.5 s and ~100 MB of a bot's resident memory,
for models a survey bot never sees (stickers, payments, business accounts…). The models are
declared with `defer_build=True`; only that final loop forces them.

While aiogram is imported we let that loop do nothing, and give each aiogram module the names
its annotations refer to but imports only for type checkers (the loop's namespace, e.g.
`ChatIdUnion`): pydantic then builds a model the first time it validates one, from wherever —
an Update, a method's result, a model nested in another — with every name resolvable.

Must run before anything imports aiogram: the `consultbot` command calls it first, and only
aiogram's own import is changed by it. A process that imported aiogram before (tests, tools)
keeps aiogram's eager build; both are the same models. tests/test_lazy_models.py builds every model, method and result this way.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

_NAME = re.compile(r"[A-Za-z_]\w*")


def defer_aiogram_model_builds() -> bool:
    """From now on, aiogram's import defers its models' builds (aiogram is not imported here:
    a command that never needs it does not pay for it). False when aiogram came first."""
    if "aiogram" in sys.modules:
        return False
    eager = BaseModel.__dict__["model_rebuild"]
    if getattr(eager.__func__, "_defers_aiogram", False):
        return True
    namespaces: list[Mapping[str, Any]] = []  # aiogram.types' namespace, once it is known
    lent: list[bool] = []

    def record_namespace(
        cls: type[BaseModel],
        *,
        force: bool = False,
        raise_errors: bool = True,
        _parent_namespace_depth: int = 2,
        _types_namespace: Mapping[str, Any] | None = None,
    ) -> bool | None:
        aiogram_model = cls.__module__.startswith("aiogram.")
        if (
            _types_namespace is not None
            and not force
            and aiogram_model
            and not cls.__pydantic_complete__
        ):
            if not namespaces:
                namespaces.append(_types_namespace)
            return None
        if aiogram_model and namespaces and not lent and _types_namespace is None:
            # The first build after the import (a first validation, the warm-up; during the
            # import pydantic passes a namespace): names are lent only now, so the methods
            # aiogram defines after its types stay unbuilt too (built at import, each would
            # carry its nested types: +24 MB).
            _lend_names(namespaces[0])
            lent.append(True)
        return eager.__func__(
            cls,
            force=force,
            raise_errors=raise_errors,
            _parent_namespace_depth=_parent_namespace_depth + 1,
            _types_namespace=_types_namespace,
        )

    record_namespace._defers_aiogram = True  # type: ignore[attr-defined]
    # Stays in place: any other rebuild goes through to pydantic's, one frame deeper.
    BaseModel.model_rebuild = classmethod(record_namespace)  # type: ignore[method-assign,assignment]
    return True


def _lend_names(namespace: Mapping[str, Any]) -> None:
    """Put in each aiogram module the names its models' annotations need and it lacks."""
    for module_name, module in list(sys.modules.items()):
        if not module_name.startswith("aiogram.") or module is None:
            continue
        scope = vars(module)
        for value in list(scope.values()):
            if not (
                isinstance(value, type)
                and issubclass(value, BaseModel)
                and value.__module__ == module_name
            ):
                continue
            # inherited fields too: pydantic may evaluate them in the subclass's module
            for ancestor in value.__mro__:
                for annotation in vars(ancestor).get("__annotations__", {}).values():
                    if not isinstance(annotation, str):
                        continue
                    for name in _NAME.findall(annotation):
                        if name not in scope and name in namespace:
                            scope[name] = namespace[name]


def warm_up() -> tuple[type[BaseModel], ...]:
    """Build what every update needs before the first one comes, so no member waits for it.

    Returns the models of the results of the methods a tap calls: pydantic keeps them in a weak
    cache, the caller holds them for as long as it sends.

    Leaves first: a model built while the models it nests are complete reuses their schemas,
    and validates an Update in ~67 µs; built first, Update's schema generates them all inside
    its own and takes ~115 µs (pydantic 2.13, measured in one process). The methods too: left
    to the first tap, their builds were 3 % of the bot's samples in a 50-member crowd."""
    from aiogram import methods, types
    from aiogram.methods.base import Response

    for model in (
        types.User,
        types.Chat,
        types.InlineKeyboardButton,
        types.InlineKeyboardMarkup,
        types.Message,
        types.CallbackQuery,
        types.Update,
    ):
        model.model_rebuild()
    hot = (
        methods.GetUpdates,
        methods.SendMessage,
        methods.EditMessageText,
        methods.EditMessageReplyMarkup,
        methods.AnswerCallbackQuery,
        methods.DeleteMessage,
        # the results' albums and the council's report: built at a crowd's first /results,
        # the loop stood still 30-50 ms for each (bench/results_load.py)
        methods.SendMediaGroup,
        methods.SendPhoto,
        methods.SendDocument,
    )
    results = tuple(Response[method.__returning__] for method in hot)  # type: ignore[name-defined]
    for model in (*hot, *results):
        model.model_rebuild()
    return results
