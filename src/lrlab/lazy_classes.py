"""Subclasses of an optional framework's classes (a transformers ``TrainerCallback``, a Lightning ``Callback``, a
Keras schedule), built on first use so that importing lrlab never imports the framework.

One mechanism for every module that has them (`lrlab.integrations`, `lrlab.tune.frameworks`): a registry of
factories; each class is built once per argument set, cached, and named as if its module defined it (it prints,
and pickles by name, as ``module.Name``).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping


class LazyClasses:
    """The framework subclasses of one module.

    Args:
        module: the module the classes belong to (its ``__name__``).
        factories: class name -> a function building the class (importing its framework); it takes the
            arguments given to `get`.
    """

    def __init__(self, module: str, factories: Mapping[str, Callable[..., type]]) -> None:
        self.module = module
        self.factories = dict(factories)
        self._built: dict[tuple[Hashable, ...], type] = {}

    def __contains__(self, name: object) -> bool:
        return name in self.factories

    def get(self, name: str, *args: Hashable) -> type:
        """The class ``name`` built by its factory with ``args``: the first call builds it, later ones return it."""
        key = (name, *args)
        if key not in self._built:
            cls = self.factories[name](*args)
            cls.__module__ = self.module
            cls.__qualname__ = cls.__name__ = name
            self._built[key] = cls
        return self._built[key]
