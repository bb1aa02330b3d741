"""A dialog's data as a small typed record: its entries, their keys and defaults in one place.

`DialogRecord` is a view over the dialog's `dialog_data`: reading an entry reads the dict,
setting one writes it, so nothing waits to be saved. The keys are those the FSM storage
holds, so that a dialog begun before an upgrade resumes. `StartRecord` types what a dialog
is started with (`start_data`), which the storage keeps as a plain dict too."""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any, Generic, Self, TypeVar, overload

from aiogram_dialog import DialogManager

V = TypeVar("V")


class Entry(Generic[V]):
    """One entry of a dialog's data: `default` until set. Defaults are immutable values."""

    def __init__(self, key: str, default: V) -> None:
        self.key = key
        self.default = default

    @overload
    def __get__(self, record: None, owner: type) -> Entry[V]: ...

    @overload
    def __get__(self, record: DialogRecord, owner: type) -> V: ...

    def __get__(self, record: DialogRecord | None, owner: type) -> Entry[V] | V:
        if record is None:
            return self
        return record.data.get(self.key, self.default)  # type: ignore[no-any-return]

    def __set__(self, record: DialogRecord, value: V) -> None:
        record.data[self.key] = value


class DialogRecord:
    """Subclasses declare their entries as class attributes: `page = Entry[int]("page", 0)`."""

    __slots__ = ("data",)

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    @classmethod
    def of(cls, manager: DialogManager) -> Self:
        return cls(manager.dialog_data)


class StartRecord:
    """A mixin for frozen dataclasses of start data: the dict a dialog is started with, and
    back (missing or unknown keys are the defaults: a start without data has none)."""

    def dump(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def load(cls, start_data: object) -> Self:
        given = start_data if isinstance(start_data, dict) else {}
        return cls(**{f.name: given[f.name] for f in fields(cls) if f.name in given})  # type: ignore[arg-type]
