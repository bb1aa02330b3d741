"""Loading and checking a consultation file, with error messages located by line."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import ValidationError

from bot.communes.model import CommunesFile, commune_problems
from bot.consultation.model import (
    ID_PATTERN,
    MAX_LABEL_CHARS,
    Consultation,
    Phase,
    Question,
    Text,
)
from bot.phases.kinds import FileChecks, PhaseKind, kind_problems, phase_type
from bot.survey.kinds import kind_of

# libyaml's parser when PyYAML has it: ten times faster than the pure-Python one (the file is
# read at every start and by the tests, many times). Error messages come from the pure one.
_FAST_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a consultation file, located by path and (when known) line."""

    path: str
    message: str
    line: int | None = None
    # Another file than the consultation's: the communes' own file (`communes: {file: …}`).
    file: str | None = None

    def render(self, file: str) -> str:
        file = self.file or file
        where = f"{file}:{self.line}" if self.line else file
        return f"{where}: {self.path or '(top)'}: {self.message}"


class ConsultationError(Exception):
    def __init__(self, file: str, problems: list[Problem]) -> None:
        self.file = file
        self.problems = problems
        super().__init__("\n".join(p.render(file) for p in problems))


def _line_index(text: str) -> dict[tuple[str | int, ...], int]:
    """Map every path in the YAML document to its 1-based line."""
    index: dict[tuple[str | int, ...], int] = {}
    try:
        root = yaml.compose(text, Loader=_FAST_LOADER)
    except yaml.YAMLError:
        return index

    def walk(node: yaml.Node, path: tuple[str | int, ...]) -> None:
        index[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                sub = (*path, str(key.value))
                index[sub] = key.start_mark.line + 1
                walk(value, sub)
                index[sub] = key.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, (*path, i))

    if root is not None:
        walk(root, ())
    return index


def _render_path(path: Iterable[str | int], raw: Any) -> str:
    """phases[0].projects[1].title.nl, naming list items by their id when they have one."""
    out = ""
    node = raw
    for part in path:
        if isinstance(part, int):
            item = node[part] if isinstance(node, list) and part < len(node) else None
            ident = item.get("id") if isinstance(item, dict) else None
            out += f"[{ident}]" if isinstance(ident, str) else f"[{part}]"
            node = item
        else:
            out += f".{part}" if out else str(part)
            node = node.get(part) if isinstance(node, dict) else None
    return out


def _lookup_line(
    index: dict[tuple[str | int, ...], int], path: tuple[str | int, ...]
) -> int | None:
    while path:
        if path in index:
            return index[path]
        path = path[:-1]
    return index.get(())


def load_consultation(path: str | Path) -> Consultation:
    """Read and validate a consultation file; raise ConsultationError listing every problem."""
    return check_consultation(path)[0]


def check_consultation(path: str | Path) -> tuple[Consultation, list[Problem]]:
    """`load_consultation`, and the warnings: what is valid but may not mean what was meant."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConsultationError(
            file, [Problem("", f"cannot read the file: {exc.strerror}")]
        ) from None
    return _parse(text, file)


def parse_consultation(
    text: str, file: str = "<consultation>", base: Path | None = None
) -> Consultation:
    """A consultation from its text; `base` is where a relative `communes: {file: …}` is
    looked for (default: the folder of `file`, or the working directory)."""
    return _parse(text, file, base)[0]


def _load_yaml(text: str, file: str, problem_file: str | None = None) -> Any:
    try:
        return yaml.load(text, Loader=_FAST_LOADER)
    except yaml.YAMLError:
        pass
    try:  # again, for the pure-Python parser's wording of the error
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        reason = getattr(exc, "problem", None) or str(exc)
        problem = Problem("", f"not valid YAML: {reason}", line, problem_file)
        raise ConsultationError(file, [problem]) from None


@dataclass(frozen=True)
class _Source:
    """A YAML text and its paths' lines, indexed only when a problem must be located."""

    text: str
    file: str | None = None  # None: the consultation file itself

    def line(self, loc: Loc) -> int | None:
        return _lookup_line(_cached_index(self.text), loc)


@lru_cache(maxsize=4)
def _cached_index(text: str) -> dict[tuple[str | int, ...], int]:
    return _line_index(text)


@lru_cache(maxsize=4)
def _communes_text(path: str, mtime_ns: int, size: int) -> tuple[str, Any]:
    """The communes file, parsed once per version of it: the list of Belgium's communes is
    the longest part of the default consultation, which the tests load many times over."""
    text = Path(path).read_text(encoding="utf-8")
    return text, _load_yaml(text, path, path)


def _communes_list(
    raw: dict[str, Any], file: str, base: Path | None, source: _Source
) -> tuple[Any, _Source | None, list[Problem]]:
    """`communes:` as a list: itself, or read from the file it names; the problems of the
    reference (then no communes: the rest of the file is still checked)."""
    value = raw.get("communes")
    if not isinstance(value, dict):
        return value, None, []
    try:
        reference = CommunesFile.model_validate(value)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = ("communes", *err["loc"])
            problems.append(Problem(_render_path(loc, raw), _friendly(err), source.line(loc)))
        return [], None, problems
    folder = base if base is not None else _folder_of(file)
    path = (folder / reference.file).resolve()
    try:
        stat = path.stat()
        text, items = _communes_text(str(path), stat.st_mtime_ns, stat.st_size)
    except OSError as exc:
        line = source.line(("communes", "file"))
        return [], None, [Problem("communes.file", f"cannot read {path}: {exc.strerror}", line)]
    except ConsultationError as exc:  # not YAML
        return [], None, exc.problems
    if not isinstance(items, list):
        return [], None, [Problem("", "expected a list of communes (- id: …)", 1, str(path))]
    return items, _Source(text, str(path)), []


def _folder_of(file: str) -> Path:
    return Path.cwd() if file.startswith("<") else Path(file).parent


def with_absolute_files(document: dict[str, Any], base: Path) -> dict[str, Any]:
    """The document with a relative `communes: {file: …}` made absolute (from `base`): a
    copy written elsewhere (rehearsal, playground, tests) still finds the communes."""
    value = document.get("communes")
    if isinstance(value, dict) and isinstance(value.get("file"), str):
        absolute = str((base / value["file"]).resolve())
        return {**document, "communes": {**value, "file": absolute}}
    return document


def _parse(text: str, file: str, base: Path | None = None) -> tuple[Consultation, list[Problem]]:
    raw = _load_yaml(text, file)
    if not isinstance(raw, dict):
        raise ConsultationError(
            file, [Problem("", "expected a mapping (id:, title:, phases: ...)")]
        )
    source = _Source(text)
    communes, communes_source, reference_problems = _communes_list(raw, file, base, source)
    if communes_source is not None or reference_problems:
        raw = {**raw, "communes": communes}

    def located(loc: tuple[str | int, ...], message: str) -> Problem:
        where = source
        inner: Loc = loc
        if communes_source is not None and loc[:1] == ("communes",):
            where, inner = communes_source, loc[1:]  # the communes file is the list itself
        return Problem(_render_path(loc, raw), message, where.line(inner), where.file)

    try:
        consultation = Consultation.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and "[" in p))
            problems.append(located(loc, _friendly(err)))
        raise ConsultationError(file, reference_problems + problems) from None
    problems = reference_problems + [
        located(loc, msg) for loc, msg in _semantic_problems(consultation)
    ]
    if problems:
        raise ConsultationError(file, problems)
    warnings = [located(loc, msg) for loc, msg in _ambiguous_times(consultation)]
    return _localized(consultation), warnings


def _friendly(err: Any) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        return "unknown key (check its spelling)"
    if kind == "missing":
        return "missing (required)"
    if kind == "literal_error":
        return f"{err['msg'].lower()}, got {err['input']!r}"
    if kind == "value_error":
        return str(err["ctx"]["error"]) if "ctx" in err else err["msg"]
    return err["msg"]


def _localized(c: Consultation) -> Consultation:
    """Read naive phase datetimes in the consultation's time zone; ends inclusive (see below)."""
    tz = c.tz
    phases = [
        p.model_copy(update={"starts": _aware(p.starts, tz), "ends": _inclusive_end(p.ends, tz)})
        for p in c.phases
    ]
    return c.model_copy(update={"phases": phases})


def _inclusive_end(moment: datetime, tz: ZoneInfo) -> datetime:
    """`ends: 2020-05-16 23:59` is shown as "until 23:59": it means until the last instant of
    that minute. Only a naive time without seconds is read so; anything else is taken as written."""
    if moment.tzinfo is None and moment.second == 0 and moment.microsecond == 0:
        moment = moment.replace(second=59, microsecond=999_999)
    return _aware(moment, tz)


def _is_skipped(moment: datetime, tz: ZoneInfo) -> bool:
    """A naive local time that the clocks jump over (e.g. 02:30 when 02:00 becomes 03:00)."""
    there_and_back = moment.replace(tzinfo=tz).astimezone(UTC).astimezone(tz)
    return there_and_back.replace(tzinfo=None) != moment


def _is_repeated(moment: datetime, tz: ZoneInfo) -> bool:
    """A naive local time that happens twice (e.g. 02:30 when 03:00 becomes 02:00)."""
    first, second = moment.replace(tzinfo=tz, fold=0), moment.replace(tzinfo=tz, fold=1)
    return not _is_skipped(moment, tz) and first.utcoffset() != second.utcoffset()


def _ambiguous_times(c: Consultation) -> Iterator[tuple[Loc, str]]:
    tz = c.tz
    for i, p in enumerate(c.phases):
        for name in ("starts", "ends"):
            moment: datetime = getattr(p, name)
            if moment.tzinfo is None and _is_repeated(moment, tz):
                first = moment.replace(tzinfo=tz)
                yield (
                    ("phases", i, name),
                    (
                        f"{moment:%Y-%m-%d %H:%M} happens twice in {c.timezone} (the clocks go "
                        f"back): read as the first, {first.isoformat(timespec='minutes')}; write "
                        "the offset to choose the other"
                    ),
                )


Loc = tuple[str | int, ...]


def _semantic_problems(c: Consultation) -> Iterator[tuple[Loc, str]]:
    langs = c.languages
    for i, lang in enumerate(langs):
        if not re.fullmatch(r"[a-z]{2,3}", lang):
            yield ("languages", i), f"{lang!r} is not a language code like fr, nl or en"
    if len(set(langs)) != len(langs):
        yield ("languages",), "a language is listed twice"
    try:
        ZoneInfo(c.timezone)
        zone_ok = True
    except (ZoneInfoNotFoundError, ValueError):
        zone_ok = False
        yield ("timezone",), f"unknown time zone {c.timezone!r} (write e.g. Europe/Brussels)"
    if not ID_PATTERN.match(c.id.replace("-", "_")):
        yield ("id",), "use lowercase letters, digits, - and _ (at most 24)"

    def texts(loc: Loc, value: Text | None, label: bool = False) -> Iterator[tuple[Loc, str]]:
        if value is None:
            return
        for lang in langs:
            if not (value.get(lang) or "").strip():
                yield (*loc, lang), f"missing {lang} text (every language of `languages` is needed)"
        for lang, item in value.items():
            if lang not in langs:
                yield (*loc, lang), f"{lang} is not one of the consultation's languages {langs}"
            elif label and len(item) > MAX_LABEL_CHARS:
                yield (
                    (*loc, lang),
                    (f"too long for a button ({len(item)} characters, at most {MAX_LABEL_CHARS})"),
                )

    def ids(loc: Loc, items: list[Any], what: str) -> Iterator[tuple[Loc, str]]:
        seen: set[str] = set()
        for i, item in enumerate(items):
            if not ID_PATTERN.match(item.id):
                yield (
                    (*loc, i, "id"),
                    (f"{what} id {item.id!r}: use lowercase letters, digits and _ (at most 24)"),
                )
            if item.id in seen:
                yield (*loc, i, "id"), f"duplicate {what} id {item.id!r}"
            seen.add(item.id)

    yield from texts(("title",), c.title)
    yield from texts(("intro",), c.intro)
    if isinstance(c.organizer, dict):
        yield from texts(("organizer",), c.organizer)
    yield from ids(("phases",), c.phases, "phase")
    checks = FileChecks(texts, ids)
    kinds: set[PhaseKind] = set()
    previous: Phase | None = None
    for i, p in enumerate(c.phases):
        loc: Loc = ("phases", i)
        yield from texts((*loc, "title"), p.title)
        yield from texts((*loc, "description"), p.description)
        if p.kind in kinds:
            yield (*loc, "kind"), f"there is already a {p.kind} phase"
        kinds.add(p.kind)
        if zone_ok:
            for name in ("starts", "ends"):
                moment: datetime = getattr(p, name)
                if moment.tzinfo is None and _is_skipped(moment, c.tz):
                    yield (
                        (*loc, name),
                        (
                            f"{moment:%Y-%m-%d %H:%M} does not exist in {c.timezone} (the clocks "
                            "go forward over it): choose another time"
                        ),
                    )
            starts, ends = _aware(p.starts, c.tz), _inclusive_end(p.ends, c.tz)
            if ends <= starts:
                yield (*loc, "ends"), "ends before it starts"
            if previous is not None and starts < _inclusive_end(previous.ends, c.tz):
                yield (
                    (*loc, "starts"),
                    (
                        f"starts before phase {previous.id!r} ends (phases are in time order "
                        "and may not overlap)"
                    ),
                )
            for j, r in enumerate(p.reminders):
                if r <= timedelta(0) or r >= ends - starts:
                    yield (*loc, "reminders", j), "must be shorter than the phase"
        previous = p
        yield from kind_problems(p, loc, checks)
        if p.digest is not None and p.digest <= timedelta(0):
            yield (*loc, "digest"), "must be a positive duration"

    for kind in PhaseKind:
        if kind in kinds:
            yield from phase_type(kind).consultation_problems(c)
    yield from ids(("communes",), c.communes, "commune")
    yield from commune_problems(c.communes, langs)
    if c.results.min_group < 2:
        yield (
            ("results", "min_group"),
            "at least 2: a commune's figures from one respondent are that person's answers",
        )
    yield from ids(("questions",), c.questions, "question")
    earlier: dict[str, Question] = {}
    for i, q in enumerate(c.questions):
        loc = ("questions", i)
        yield from texts((*loc, "text"), q.text)
        yield from ids((*loc, "options"), q.options, "option")
        for j, o in enumerate(q.options):
            yield from texts((*loc, "options", j, "label"), o.label, label=True)
            yield from texts((*loc, "options", j, "text"), o.text)
        for within, message in kind_of(q).problems(q):
            yield (*loc, *within), message
        if q.ordered and not kind_of(q).counted:
            yield (*loc, "ordered"), "only a question with options can keep them in order"
        if q.min is not None and q.max is not None and q.min > q.max:
            yield (*loc, "min"), f"min {q.min} is greater than max {q.max}"
        if q.when is not None:
            target = earlier.get(q.when.question)
            if target is None:
                known = c.question(q.when.question) is not None
                yield (
                    (*loc, "when", "question"),
                    (
                        f"{q.when.question!r} must be an earlier question"
                        if known
                        else f"unknown question {q.when.question!r}"
                    ),
                )
            else:
                for j, opt in enumerate(q.when.any):
                    if target.option(opt) is None:
                        yield (
                            (*loc, "when", "any", j),
                            (f"question {target.id!r} has no option {opt!r}"),
                        )
        earlier[q.id] = q


def _aware(moment: datetime, tz: ZoneInfo) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=tz)
