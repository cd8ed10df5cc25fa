"""The one-line spec language, its canonical text form, the dict (JSON/YAML) form, and the name registry.

Grammar (whitespace is free)::

    spec    := product (">>" product)*          a >> b: join, each piece on its local clock
    product := atom ("*" atom)*                 a * b: pointwise product; 0.5 * a scales
    atom    := NUMBER | call | "(" spec ")"
    call    := NAME "(" [arg ("," arg)*] ")"
    arg     := [NAME "="] value                 positional args fill the family's leading fields
    value   := NUMBER | NAME | "[" [value ("," value)*] "]" | spec
    NUMBER  := 100 | 0.06 | 1e-4 | -2.5         a length in (0, 1) is a fraction of the run
    NAME    := identifier; true/false/none are booleans and None

Examples: ``warmup(0.06) >> cosine(floor=0.1)``, ``step(30, factor=0.1)``,
``overlay(warmup(5), cosine_restarts(period=0.25, mult=2))``, ``wsd(warmup=0.05, decay=0.2)``; the composites
``sum(a, b)`` (pointwise sum, e.g. a floor under a decay) and ``shift(a, by=1)`` (``a`` started ``by`` units in)
are written as calls. Argument errors name the schedule, the argument (with the nearest valid name for a typo,
or the missing ones) and the arguments it takes, in the text and the dict form alike.

`format_spec(s)` writes the canonical text: keyword arguments that differ from the defaults (the first
positional field unnamed), so `parse(format_spec(s)) == s` for every schedule.
"""

from __future__ import annotations

import codecs
import dataclasses
import difflib
import inspect
import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NoReturn

from lrlab import compose, families
from lrlab.checks import describe
from lrlab.errors import LrlabError, ScheduleError
from lrlab.schedule import Schedule, _cut

#: spec name -> schedule class; shared by the parser, `lrlab list` and the docs
REGISTRY: dict[str, type[Schedule]] = {
    cls.name: cls
    for cls in (
        families.Constant, families.Step, families.MultiStep, families.Exponential, families.Linear,
        families.Polynomial, families.Cosine, families.CosineRestarts, families.Tanh, families.InverseSqrt,
        families.Noam, families.Warmup, families.Cooldown, families.OneCycle, families.Cyclic,
        families.Piecewise, compose.Join, compose.Overlay, compose.Product, compose.Sum, compose.Shift,
        compose.Clamp, compose.Repeat,
    )
}

#: names that build a composite (their text form is the composite's)
MACROS: dict[str, Callable[..., Schedule]] = {"wsd": compose.wsd}

#: other names of a schedule, read and written as the registered name: older spellings (``onecycle`` and
#: ``multistep`` before every name was snake_case) and common short names
ALIASES: dict[str, str] = {"onecycle": "one_cycle", "multistep": "multi_step", "sgdr": "cosine_restarts",
                           "rsqrt": "inverse_sqrt", "step_decay": "step", "exp": "exponential", "poly": "polynomial"}

#: fields given without a name, in order
POSITIONAL: dict[str, tuple[str, ...]] = {
    "constant": ("value",), "step": ("every", "factor"), "multi_step": ("milestones", "factor"),
    "exponential": ("gamma",), "linear": ("total",), "polynomial": ("total",), "cosine": ("total",),
    "cosine_restarts": ("period",), "tanh": ("period",), "inverse_sqrt": ("timescale",),
    "noam": ("d_model", "warmup"), "warmup": ("total",), "cooldown": ("total",), "one_cycle": ("total",),
    "cyclic": ("floor", "peak", "up"), "piecewise": ("times", "levels"), "overlay": ("head", "base"),
    "clamp": ("inner",), "repeat": ("inner", "times"), "join": ("pieces",), "product": ("factors",),
    "sum": ("terms",), "shift": ("inner", "by"),
}

#: composites whose one field is a list of schedules, written as call arguments: ``sum(a, b)``
_LISTS = {"join": "pieces", "product": "factors", "sum": "terms"}

_COMPOSITE_FIELDS = set(_LISTS.values())


_SPEC_FIELDS: dict[type[Schedule], dict[str, dataclasses.Field[Any]]] = {}


def spec_fields(cls: type[Schedule]) -> dict[str, dataclasses.Field[Any]]:
    """Spec name -> dataclass field (do not modify the dict: it is kept per class)."""
    fields = _SPEC_FIELDS.get(cls)
    if fields is None:
        fields = _SPEC_FIELDS[cls] = {f.metadata.get("spec_name", f.name): f for f in dataclasses.fields(cls)}
    return fields


def all_names() -> list[str]:
    return sorted([*REGISTRY, *MACROS, *ALIASES])


# ------------------------------------------------------------------------------------------------ parsing

#: the longest spec text `parse` reads, in characters: a longer one is refused before it is read
MAX_SPEC_CHARS = 1_000_000
#: how deep brackets may nest (calls, parentheses and lists): deeper text is refused before it is parsed
MAX_DEPTH = 100
#: how much of the spec an error message quotes around the column it points at
_EXCERPT = 100

#: one token after optional whitespace; `bad` catches any other character, so one scan reads the whole text
_TOKEN = re.compile(
    r"\s*(?:(?P<num>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op>>>|[()\[\],=*])|(?P<bad>.))",
    re.S,
)
_CLOSE = {")": "(", "]": "["}


def _excerpt(text: str, col: int) -> tuple[str, int]:
    """At most `_EXCERPT` characters of `text` around `col` (one line), and where `col` falls in them."""
    text = text.translate({ord(c): " " for c in "\t\n\r\f\v"})  # one line, so the pointer lines up
    if len(text) <= _EXCERPT:
        return text, col
    a = max(0, min(col - _EXCERPT // 2, len(text) - _EXCERPT))
    b = a + _EXCERPT
    head, tail = ("..." if a > 0 else ""), ("..." if b < len(text) else "")
    return head + text[a:b] + tail, col - a + len(head)


def _quote(token: str) -> str:
    """A token as an error message shows it: repr, cut short."""
    return describe(token, 40)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[tuple[str, str, int]] = []
        for m in _TOKEN.finditer(text, 0, len(text.rstrip())):  # (trailing whitespace would be scanned n**2)
            kind = m.lastgroup or "op"
            if kind == "bad":
                self.fail(m.start(kind), f"unexpected character {m.group(kind)!r}")
            self.tokens.append((kind, m.group(kind), m.start(kind)))
        self._check_brackets()
        self.i = 0

    def _check_brackets(self) -> None:
        """Every bracket closed by its own kind, and no deeper than `MAX_DEPTH`, before anything is parsed: an
        unbalanced one is reported where it is, not where the parser runs out of text."""
        opened: list[tuple[str, int]] = []
        for _, value, col in self.tokens:
            if value in ("(", "["):
                opened.append((value, col))
                if len(opened) > MAX_DEPTH:
                    self.fail(col, f"brackets nest more than {MAX_DEPTH} deep (the limit, lrlab.spec.MAX_DEPTH)")
            elif value in _CLOSE:
                if not opened:
                    self.fail(col, f"unbalanced parenthesis: {value!r} closes nothing")
                kind, at = opened.pop()
                if kind != _CLOSE[value]:
                    self.fail(col, f"unbalanced parenthesis: {value!r} does not close {kind!r} at column {at + 1}")
        if opened:
            kind, at = opened[-1]
            closer = ")" if kind == "(" else "]"
            self.fail(at, f"unbalanced parenthesis: {kind!r} is never closed (add {closer!r})")

    def fail(self, col: int, message: str) -> NoReturn:
        line, at = _excerpt(self.text, col)
        raise ScheduleError(f"{_cut(message, 2000)} at column {col + 1}\n  {line}\n  {' ' * at}^")

    def peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def col(self) -> int:
        tok = self.peek()
        return tok[2] if tok else len(self.text)

    def take(self, value: str | None = None, kind: str | None = None) -> tuple[str, str, int]:
        tok = self.peek()
        if tok is None or (value is not None and tok[1] != value) or (kind is not None and tok[0] != kind):
            want = repr(value) if value else (kind or "a token")
            got = "end of text" if tok is None else _quote(tok[1])
            self.fail(self.col(), f"expected {want}, got {got}")
        self.i += 1
        return tok

    def at(self, value: str) -> bool:
        tok = self.peek()
        return tok is not None and tok[1] == value

    # spec := product (">>" product)*
    def spec(self) -> Any:
        return self._chain(">>", self.product, compose.Join, "pieces")

    # product := atom ("*" atom)*
    def product(self) -> Any:
        return self._chain("*", self.atom, compose.Product, "factors")

    def _chain(self, op: str, operand: Callable[[], Any], cls: type[Schedule], field: str) -> Any:
        """``a op b op c ...`` built at once from all its operands (as ``a >> b`` and ``a * b`` would, flattening
        nested joins and products), so a chain of n pieces costs O(n), not O(n**2)."""
        first = self.col()
        items = [operand()]
        cols: list[int] = []
        while self.at(op):
            cols.append(self.col())
            self.take(op)
            items.append(operand())
        if not cols:
            return items[0]
        parts: list[Schedule] = []
        for k, x in enumerate(items):
            one = _need_schedule(self, x, cols[max(k - 1, 0)])
            parts.extend(getattr(one, field) if isinstance(one, cls) else (one,))
        try:
            return cls(**{field: tuple(parts)})
        except ScheduleError as e:
            self.fail(first, str(e))

    def atom(self) -> Any:
        tok = self.peek()
        if tok is None:
            self.fail(len(self.text), "expected a schedule such as cosine(), got end of text")
        assert tok is not None
        kind, value, col = tok
        if kind == "num":
            self.take()
            return _number(value)
        if value == "(":
            self.take("(")
            inner = self.spec()
            self.take(")")
            return inner
        if kind == "name":
            nxt = self.tokens[self.i + 1] if self.i + 1 < len(self.tokens) else None
            if nxt is not None and nxt[1] == "(":
                return self.call()
            if ALIASES.get(value, value) in REGISTRY or value in MACROS:
                self.fail(col, f"{value} needs parentheses: write {value}()")
            self.take()
            return _word(value)
        self.fail(col, f"expected a schedule or a number, got {_quote(value)}")

    def value(self) -> Any:
        if self.at("["):
            self.take("[")
            items: list[Any] = []
            while not self.at("]"):
                items.append(self.value())
                if not self.at("]"):
                    self.take(",")
            self.take("]")
            return tuple(items)
        tok, nxt = self.peek(), (self.tokens[self.i + 1] if self.i + 1 < len(self.tokens) else None)
        if tok and tok[0] == "name" and (nxt is None or nxt[1] in (",", ")", "]")):
            self.take()
            return _word(tok[1])  # a bare word such as shape=linear, even where it names a schedule too
        return self.spec()

    def call(self) -> Schedule:
        _, name, col = self.take(kind="name")
        key = ALIASES.get(name, name)
        if key not in REGISTRY and key not in MACROS:
            close = difflib.get_close_matches(name, all_names(), n=1, cutoff=0.5)
            hint = f"; did you mean {close[0]}?" if close else ""
            self.fail(col, f"unknown schedule {_quote(name)}{hint} (known: {', '.join(all_names())})")
        self.take("(")
        args: list[tuple[Any, int]] = []
        kwargs: dict[str, tuple[Any, int]] = {}
        while not self.at(")"):
            acol = self.col()
            tok = self.peek()
            nxt = self.tokens[self.i + 1] if self.i + 1 < len(self.tokens) else None
            if tok and tok[0] == "name" and nxt and nxt[1] == "=":
                self.take()
                self.take("=")
                if tok[1] in kwargs:
                    self.fail(acol, f"{name}: argument {_quote(tok[1])} given twice")
                kwargs[tok[1]] = (self.value(), acol)
            else:
                if kwargs:
                    self.fail(acol, f"{name}: positional argument after keyword arguments")
                args.append((self.value(), acol))
            if not self.at(")"):
                self.take(",")
        self.take(")")
        return _build(self, key, args, kwargs, col)


def _number(text: str) -> int | float:
    v = float(text)
    if re.fullmatch(r"[-+]?\d+", text):
        return int(text)
    return v


def _word(word: str) -> Any:
    low = word.lower()
    if low in ("true", "false"):
        return low == "true"
    if low == "none":
        return None
    return word


def _need_schedule(p: _Parser, x: Any, col: int) -> Schedule:
    if isinstance(x, Schedule):
        return x
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return families.Constant(value=float(x))
    p.fail(col, f"expected a schedule on both sides of the operator, got {describe(x)}")
    raise AssertionError


def _options(name: str) -> list[str]:
    """The argument names a schedule or macro takes, in order."""
    if name in MACROS:
        return [k for k, prm in inspect.signature(MACROS[name]).parameters.items()
                if prm.kind in (prm.KEYWORD_ONLY, prm.POSITIONAL_OR_KEYWORD)]
    return [f for f in spec_fields(REGISTRY[name]) if f != "name"]


def _required(name: str) -> list[str]:
    if name in MACROS:
        return [k for k, prm in inspect.signature(MACROS[name]).parameters.items() if prm.default is prm.empty]
    return [k for k, f in spec_fields(REGISTRY[name]).items() if k != "name" and f.default is dataclasses.MISSING
            and f.default_factory is dataclasses.MISSING]


def _current_name(name: str, key: str) -> str:
    """An argument's current name: an old one (the class's `Schedule.renamed`) is read as the new."""
    cls = REGISTRY.get(name)
    return cls.renamed.get(key, key) if cls is not None else key


def _unknown_arg(name: str, key: object) -> str:
    options = _options(name)
    close = difflib.get_close_matches(str(key), options, n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]}?" if close else ""
    return f"{name} has no argument {describe(key)}{hint} (arguments: {', '.join(options)})"


def _missing_args(name: str, given: Iterable[str]) -> str | None:
    have = set(given)
    missing = [k for k in _required(name) if k not in have]
    if not missing:
        return None
    noun = "argument" if len(missing) == 1 else "arguments"
    return (f"{name} is missing required {noun} {', '.join(repr(k) for k in missing)} "
            f"(arguments: {', '.join(_options(name))})")


def _build(p: _Parser, name: str, args: list[tuple[Any, int]], kwargs: dict[str, tuple[Any, int]],
           col: int) -> Schedule:
    if name in MACROS:
        if args:
            p.fail(args[0][1], f"{name} takes keyword arguments only")
        for k, (_, kcol) in kwargs.items():
            if k not in _options(name):
                p.fail(kcol, _unknown_arg(name, k))
        try:
            return MACROS[name](**{k: v for k, (v, _) in kwargs.items()})
        except ScheduleError as e:
            p.fail(col, f"in {name}(...): {e}")
        except TypeError as e:
            p.fail(col, f"{name}: invalid argument value ({e})")
    cls = REGISTRY[name]
    fields = spec_fields(cls)
    positional = POSITIONAL.get(name, ())
    values: dict[str, Any] = {}
    if name in _LISTS and args and not kwargs:
        # join(a, b, c) / product(a, b) / sum(a, b), or one list: sum([a, b])
        if len(args) == 1 and isinstance(args[0][0], tuple):
            values[positional[0]] = tuple(_need_schedule(p, v, args[0][1]) for v in args[0][0])
        else:
            values[positional[0]] = tuple(_need_schedule(p, v, c) for v, c in args)
    else:
        if len(args) > len(positional):
            p.fail(args[len(positional)][1],
                   f"{name} takes at most {len(positional)} positional argument(s) ({', '.join(positional)})")
        given_as: dict[str, str] = {}
        for (v, _), fname in zip(args, positional):
            values[fname] = v
            given_as[fname] = f"{fname} (positional)"
        for k, (v, kcol) in kwargs.items():
            key = _current_name(name, k)
            if key not in fields or key == "name":
                p.fail(kcol, _unknown_arg(name, k))
            if key in values:
                twice = "" if given_as[key] == k else f" (as {given_as[key]} and {k})"
                p.fail(kcol, f"{name}: argument {key!r} given twice{twice}")
            values[key] = v
            given_as[key] = k if k == key else f"{k}, its old name"
    missing = _missing_args(name, values)
    if missing:
        p.fail(col, missing)
    init = {fields[k].name: _coerce(v) for k, v in values.items()}
    try:
        return cls(**init)
    except ScheduleError as e:
        p.fail(col, f"in {name}(...): {e}")
    except TypeError as e:
        p.fail(col, f"{name}: invalid argument value ({e})")
    raise AssertionError


def _coerce(v: Any) -> Any:
    if isinstance(v, list):
        return tuple(v)
    return v


def parse(text: str, total: float | None = None) -> Schedule:
    """Parse a spec such as ``warmup(0.06) >> cosine(floor=0.1)``.

    Args:
      text: the spec (see the module docstring for the grammar).
      total: the run's length in clock units; when given, fractions and open lengths are resolved
        (`Schedule.bind`).
    Returns:
      The schedule. Raises `ScheduleError` pointing at the column of the problem (quoting at most 100 characters
      around it), for a text longer than `MAX_SPEC_CHARS` characters, or brackets nested deeper than
      `MAX_DEPTH`. Parsing takes time linear in the length of the text.
    """
    if not isinstance(text, str) or not text.strip():
        raise ScheduleError(f"spec must be a non-empty text such as 'cosine()', got {describe(text)}")
    if len(text) > MAX_SPEC_CHARS:
        raise ScheduleError(f"spec is {len(text):,} characters long; the limit is {MAX_SPEC_CHARS:,} "
                            f"(lrlab.spec.MAX_SPEC_CHARS); it starts {describe(text)}")
    p = _Parser(text)
    result = p.spec()
    if p.peek() is not None:
        p.fail(p.col(), f"unexpected {_quote(p.peek()[1])} after a complete schedule")  # type: ignore[index]
    schedule = _need_schedule(p, result, 0)
    return schedule.bind(total) if total is not None else schedule


# ------------------------------------------------------------------------------------------------ formatting


def as_schedule(value: object, total: float | None = None, *, name: str = "schedule",
                total_hint: str = "pass total=N") -> Schedule:
    """``value`` (spec text or a `Schedule`) as a schedule bound to ``total``, for APIs that take either.

    Raises `LrlabError` naming ``name`` when ``value`` is neither, or when the result still has a length left as a
    fraction of the run or open (``total_hint`` says how to give it)."""
    if isinstance(value, str):
        s = parse(value, total=total)
    elif isinstance(value, Schedule):
        s = value.bind(total) if total is not None else value
    else:
        raise LrlabError(f"{name} must be an lrlab schedule or spec text such as 'cosine()', got {describe(value)}")
    if s.needs_total:
        raise LrlabError(f"{name} {s} has a length given as a fraction of the run, or left open: {total_hint}")
    return s


def _fmt_value(v: Any) -> str:
    if isinstance(v, Schedule):
        return format_spec(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "none"
    if isinstance(v, (int, float)):
        f = float(v)
        if f.is_integer() and abs(f) < 1e16:
            return str(int(f))
        r = repr(f)
        return r
    if isinstance(v, (tuple, list)):
        return "[" + ", ".join(_fmt_value(x) for x in v) + "]"
    return str(v)


def _is_default(f: dataclasses.Field[Any], v: Any) -> bool:
    if f.default is not dataclasses.MISSING:
        d = f.default
    elif f.default_factory is not dataclasses.MISSING:
        d = f.default_factory()
    else:
        return False
    if isinstance(d, float) and isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v) == d and not (math.isnan(d))
    return (bool(v == d) and type(v) is type(d)) or (v is None and d is None)


def format_spec(s: Schedule) -> str:
    """Canonical spec text of a schedule; `parse(format_spec(s)) == s`."""
    if isinstance(s, compose.Join):
        return " >> ".join(_fmt_factor(p, in_join=True) for p in s.pieces)
    if isinstance(s, compose.Product):
        return " * ".join(_fmt_factor(f, in_join=False) for f in s.factors)
    if isinstance(s, compose.Sum):
        return f"sum({', '.join(format_spec(x) for x in s.terms)})"
    cls = type(s)
    parts: list[str] = []
    positional = POSITIONAL.get(cls.name, ())
    for sname, f in spec_fields(cls).items():
        if sname == "name":
            continue
        v = getattr(s, f.name)
        if _is_default(f, v):
            continue
        text = _fmt_value(v)
        if positional and sname == positional[0] and not parts:
            parts.append(text)
        else:
            parts.append(f"{sname}={text}")
    return f"{cls.name}({', '.join(parts)})"


def _fmt_factor(s: Schedule, *, in_join: bool) -> str:
    if isinstance(s, families.Constant) and s.total is None and not in_join:
        return _fmt_value(s.value)
    text = format_spec(s)
    if isinstance(s, compose.Join) or (isinstance(s, compose.Product) and not in_join):
        return f"({text})"
    return text


# ------------------------------------------------------------------------------------------------ dict form


def to_dict(s: Schedule) -> dict[str, Any]:
    """A JSON/YAML-ready dict: ``{"name": "cosine", "total": 1000}``; composites nest."""
    out: dict[str, Any] = {"name": type(s).name}
    for sname, f in spec_fields(type(s)).items():
        if sname == "name":
            continue
        v = getattr(s, f.name)
        if _is_default(f, v) and sname not in _COMPOSITE_FIELDS:
            continue
        out[sname] = _dict_value(v)
    return out


def _dict_value(v: Any) -> Any:
    if isinstance(v, Schedule):
        return to_dict(v)
    if isinstance(v, tuple):
        return [_dict_value(x) for x in v]
    return v


def from_dict(d: Mapping[str, Any]) -> Schedule:
    """Inverse of `to_dict`. Errors are `ScheduleError`s naming the schedule and the key: an unknown key (with
    the nearest valid one), a missing required key, or a value out of range. Old names of schedules (`ALIASES`)
    and of arguments (`Schedule.renamed`) are read as the current ones."""
    return _from_dict(d, 0)


def _from_dict(d: Mapping[str, Any], depth: int) -> Schedule:
    if not isinstance(d, Mapping) or "name" not in d:
        raise ScheduleError(f"a schedule dict needs a 'name' key (one of {', '.join(all_names())}), "
                            f"got {describe(d, 200)}")
    raw = d["name"]
    name = ALIASES.get(str(raw), str(raw))
    if not isinstance(raw, str) or (name not in REGISTRY and name not in MACROS):
        close = difflib.get_close_matches(str(raw), all_names(), n=1, cutoff=0.5)
        hint = f"; did you mean {close[0]}?" if close else ""
        raise ScheduleError(f"unknown schedule name {describe(raw)}{hint} (known: {', '.join(all_names())})")
    if depth > MAX_DEPTH:
        raise ScheduleError(f"schedule dicts nest more than {MAX_DEPTH} deep (the limit, lrlab.spec.MAX_DEPTH)")
    keys: dict[str, str] = {}  # current name -> the key it was given as
    for k in d:
        if k == "name":
            continue
        key = _current_name(name, str(k))
        if key not in _options(name):
            raise ScheduleError(_unknown_arg(name, k))
        if key in keys:
            raise ScheduleError(f"{name}: argument {key!r} given twice (as {keys[key]!r} and {k!r})")
        keys[key] = str(k)
    missing = _missing_args(name, keys)
    if missing:
        raise ScheduleError(missing)
    args = {key: _from_dict_value(d[k], depth) for key, k in keys.items()}
    try:
        if name in MACROS:
            return MACROS[name](**args)
        fields = spec_fields(REGISTRY[name])
        return REGISTRY[name](**{fields[k].name: v for k, v in args.items()})
    except TypeError as e:  # a value of the wrong kind, e.g. a number where a list of schedules belongs
        raise ScheduleError(f"{name}: invalid argument value ({e}); arguments: {', '.join(_options(name))}") from None


def load(source: str, total: float | None = None) -> Schedule:
    """A schedule from spec text, or from a file when ``source`` starts with ``@``: ``@run.json`` /
    ``@run.yaml`` holding the dict form (or ``{"schedule": <dict or text>}``), or any other file holding the
    spec text. Files are read as UTF-8 (a byte-order mark is allowed); other encodings are refused by name."""
    if not source.startswith("@"):
        return parse(source, total=total)
    path = source[1:]
    text = _read_text(path)
    data: Any
    if path.endswith(".json"):
        import json

        try:
            data = json.loads(text)
        except ValueError as e:
            raise ScheduleError(f"{path} is not valid JSON: {e}") from None
        except RecursionError:
            raise ScheduleError(f"{path} nests too deep to read (schedules nest at most {MAX_DEPTH} deep)") from None
    elif path.endswith((".yaml", ".yml")):
        try:
            import yaml
        except ImportError:
            raise ScheduleError("reading YAML needs PyYAML: pip install pyyaml") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise ScheduleError(f"{path} is not valid YAML: {e}") from None
        except RecursionError:
            raise ScheduleError(f"{path} nests too deep to read (schedules nest at most {MAX_DEPTH} deep)") from None
    else:
        return parse(text.strip(), total=total)
    if isinstance(data, Mapping) and "schedule" in data:
        data = data["schedule"]
    schedule = parse(data) if isinstance(data, str) else from_dict(data)
    return schedule.bind(total) if total is not None else schedule


def _read_text(path: str) -> str:
    """A schedule file's text, decoded as UTF-8; a file in another encoding is refused, naming it."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as e:
        raise ScheduleError(f"cannot read schedule file {path!r}: {e.strerror}") from None
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or b"\x00" in raw:
        raise ScheduleError(f"schedule file {path!r} is not UTF-8 text (it looks like UTF-16 or UTF-32: it "
                            "holds zero bytes); save it as UTF-8")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ScheduleError(f"schedule file {path!r} is not UTF-8 text (byte {raw[e.start]:#04x} at offset "
                            f"{e.start}); save it as UTF-8") from None


def _from_dict_value(v: Any, depth: int) -> Any:
    if isinstance(v, Mapping):
        return _from_dict(v, depth + 1)
    if isinstance(v, list):
        return tuple(_from_dict_value(x, depth + 1) for x in v)
    return v
