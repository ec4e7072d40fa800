"""Privacy processors: plugins with ``validate`` and ``operate``, registered by name.

A processor is stateless; its ``config`` is a JSON-like mapping. ``validate`` lists every problem (empty when
the config is usable); ``operate`` validates, then processes. ``parameters`` is the record an export manifest
keeps for the step: name, version and the effective settings, never secrets (keys are named by id only).
Built-in processors register themselves the same way a third-party one would (``register``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

from trustlane.errors import UsageError

Config = Mapping[str, Any]


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


#: marks a setting without a default
REQUIRED: Any = _Required()


class Processor(ABC):
    name: ClassVar[str]
    version: ClassVar[str]
    #: the settings ``validate`` accepts, with their defaults (``REQUIRED``: no default)
    defaults: ClassVar[dict[str, Any]] = {}
    #: settings that are secrets: ``parameters`` omits them
    secret: ClassVar[frozenset[str]] = frozenset()

    @abstractmethod
    def check(self, config: dict[str, Any]) -> list[str]:
        """Problems with a config whose keys are known and defaults filled in."""

    @abstractmethod
    def apply(self, data: Any, config: dict[str, Any]) -> Any:
        """Process ``data`` under a valid, complete config."""

    def settings(self, config: Config) -> dict[str, Any]:
        return {**self.defaults, **config}

    def validate(self, config: Config) -> list[str]:
        unknown = sorted(set(config) - set(self.defaults))
        problems = [f"{self.name}: unknown setting {k!r} (known: {', '.join(sorted(self.defaults))})" for k in unknown]
        full = self.settings(config)
        problems += [f"{self.name}: setting {k!r} is required" for k, v in full.items() if v is REQUIRED]
        if problems:
            return problems
        return [f"{self.name}: {p}" for p in self.check(full)]

    def operate(self, data: Any, config: Config) -> Any:
        problems = self.validate(config)
        if problems:
            raise UsageError("; ".join(problems), hint=f"fix the {self.name} settings and run again")
        return self.apply(data, self.settings(config))

    def parameters(self, config: Config) -> dict[str, Any]:
        """The manifest record: name, version and the effective settings less secrets."""
        shown = {k: v for k, v in sorted(self.settings(config).items()) if k not in self.secret}
        return {"processor": self.name, "version": self.version, "settings": shown}


_REGISTRY: dict[str, type[Processor]] = {}


def register(cls: type[Processor]) -> type[Processor]:
    """Class decorator: make a processor available by its ``name``."""
    existing = _REGISTRY.get(cls.name)
    if existing is not None and existing is not cls:
        raise ValueError(f"a privacy processor named {cls.name!r} is already registered ({existing.__qualname__})")
    _REGISTRY[cls.name] = cls
    return cls


def get(name: str) -> Processor:
    _load_builtins()
    try:
        return _REGISTRY[name]()
    except KeyError:
        raise UsageError(
            f"unknown privacy processor {name!r}", hint=f"use one of {', '.join(sorted(_REGISTRY))}"
        ) from None


def names() -> list[str]:
    _load_builtins()
    return sorted(_REGISTRY)


def _load_builtins() -> None:
    # Importing the modules runs their @register decorators.
    from trustlane.privacy import aggregates, identifiers, location, risk  # noqa: F401
    from trustlane.privacy.image import processor  # noqa: F401
