"""Option kinds shared by the `lrlab` verbs: one of a fixed set of names (`Choice`), a comma-separated list of
them (`CommaChoice`), and a task (`Task`: a built-in name, ``text:PATH`` or ``hf:NAME``).

Each kind is the option's ``parser`` (it checks the value when the command line is read: a bad one is a usage
error naming the allowed values, exit 2, before anything runs) and its shell completion; `option` declares a
typer option with both:

    preset: Annotated[str, option(Choice(PRESET_NAMES), help="model size")] = "tiny"

`refuse_beside_resume` is how a verb that resumes a folder (``compare``, ``tune``) refuses settings given beside
``--resume``: their options default to None, so the ones given are the ones not None.

Importing this module loads typer and `lrlab.errors` only.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import typer

from lrlab.errors import LrlabError

__all__ = ["Choice", "CommaChoice", "Task", "option", "refuse_beside_resume"]


@dataclass(frozen=True)
class Choice:
    """One of ``values`` (case-sensitive)."""

    values: tuple[str, ...]
    #: the option's placeholder in help (default: the values, when they are short)
    name: str = ""

    def __init__(self, values: Sequence[str], name: str = "") -> None:
        object.__setattr__(self, "values", tuple(values))
        object.__setattr__(self, "name", name)

    @property
    def metavar(self) -> str:
        joined = "|".join(self.values)
        return joined if len(joined) <= 20 else (self.name or "NAME")

    def __call__(self, value: str) -> str:
        if value not in self.values:
            raise typer.BadParameter(f"{value!r} is not one of {', '.join(self.values)}")
        return value

    def complete(self, incomplete: str) -> list[str]:
        return [v for v in self.values if v.startswith(incomplete)]


@dataclass(frozen=True)
class CommaChoice(Choice):
    """A comma-separated list of names from ``values`` (``--optimizers adamw,sgd``); kept as the text given,
    checked name by name; the shell completes the last name."""

    def __init__(self, values: Sequence[str], name: str = "NAME,...") -> None:
        super().__init__(values, name)

    @property
    def metavar(self) -> str:
        return self.name

    def __call__(self, value: str) -> str:
        names = [p.strip() for p in value.split(",") if p.strip()]
        if not names:
            raise typer.BadParameter(f"give at least one of {', '.join(self.values)}, separated by commas")
        for name in names:
            if name not in self.values:
                raise typer.BadParameter(f"{name!r} is not one of {', '.join(self.values)}")
        return value

    def complete(self, incomplete: str) -> list[str]:
        head, _, last = incomplete.rpartition(",")
        prefix = head + "," if head else ""
        return [prefix + v for v in self.values if v.startswith(last)]


@dataclass(frozen=True)
class Task:
    """A task as `lrlab.bench.tasks.get_task` reads it: a built-in name, ``text:PATH`` (a text file, which
    must exist; the shell completes the path) or ``hf:NAME`` (a Hugging Face dataset, ``hf:NAME#COLUMN``)."""

    builtin: tuple[str, ...] = ("lm", "vision")
    prefixes: tuple[str, ...] = ("text:", "hf:")

    @property
    def metavar(self) -> str:
        return "TASK"

    def forms(self) -> str:
        extra = {"text:": "text:PATH", "hf:": "hf:NAME"}
        names = [*self.builtin, *(extra[p] for p in self.prefixes)]
        return ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else names[0]

    def __call__(self, value: str) -> str:
        if value in self.builtin:
            return value
        for prefix in self.prefixes:
            if value.startswith(prefix):
                rest = value[len(prefix):]
                if not rest:
                    raise typer.BadParameter(f"{value!r} names no {'file' if prefix == 'text:' else 'dataset'}; "
                                             f"give {self.forms()}")
                if prefix == "text:" and not os.path.isfile(rest):
                    raise typer.BadParameter(f"{value!r}: there is no file {rest!r}")
                return value
        raise typer.BadParameter(f"{value!r} is not a task; give {self.forms()}")

    def complete(self, incomplete: str) -> list[str]:
        if incomplete.startswith("text:") and "text:" in self.prefixes:
            paths = sorted(glob.glob(glob.escape(incomplete[5:]) + "*"))[:200]
            return ["text:" + p + ("/" if os.path.isdir(p) else "") for p in paths]
        return [v for v in (*self.builtin, *self.prefixes) if v.startswith(incomplete)]


def option(kind: Choice | Task, *decls: str, help: str = "", **kwargs: Any) -> Any:
    """A typer option whose value ``kind`` checks and the shell completes (``decls``: its names, e.g.
    ``"--task"``; the rest as `typer.Option`)."""
    return typer.Option(*decls, parser=kind, autocompletion=kind.complete, metavar=kind.metavar, help=help,
                        **kwargs)


def refuse_beside_resume(given: Sequence[str], record: str) -> None:
    """With ``--resume DIR`` a verb takes its settings from ``DIR/record``: `LrlabError` naming each setting option
    given beside it (``given``: their parameter names, e.g. ``checkpoint_every``), nothing when none was given."""
    if given:
        names = dict.fromkeys("--" + name.replace("_", "-") for name in given)
        raise LrlabError(f"--resume takes its settings from DIR/{record}; drop {', '.join(names)}")
