"""`lrlab.lazy_classes.LazyClasses`: the one mechanism behind the framework subclasses of `lrlab.integrations` and
`lrlab.tune.frameworks`."""

from __future__ import annotations

from lrlab.lazy_classes import LazyClasses


def test_each_class_is_built_once_per_argument_set_and_named_as_its_modules() -> None:
    calls: list[object] = []

    def make(base: type = object) -> type:
        calls.append(base)

        class Built(base):  # type: ignore[valid-type,misc]
            pass

        return Built

    lazy = LazyClasses("some.module", {"Thing": make})
    assert "Thing" in lazy and "Other" not in lazy
    a = lazy.get("Thing")
    assert lazy.get("Thing") is a and calls == [object]
    assert (a.__module__, a.__qualname__, a.__name__) == ("some.module", "Thing", "Thing")
    b = lazy.get("Thing", dict)  # another argument set: another class, built once too
    assert b is not a and issubclass(b, dict) and lazy.get("Thing", dict) is b and calls == [object, dict]


def test_the_tune_and_integrations_classes_come_from_one_mechanism() -> None:
    import lrlab.integrations as integrations
    import lrlab.tune.frameworks as frameworks

    assert isinstance(integrations._CLASSES, LazyClasses) and isinstance(frameworks._CLASSES, LazyClasses)
    scheduler = frameworks.TrialScheduler
    assert scheduler.__module__ == "lrlab.tune.frameworks" and frameworks.TrialScheduler is scheduler
