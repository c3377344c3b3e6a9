"""Payment providers behind one port (``base.PaymentProvider``), found by name.

A provider is a module of this package that registers a factory built from the settings:

    @register("acme")
    def build(settings) -> PaymentProvider: ...

``build_providers`` imports every module here first, so adding a provider is adding a module
(and its settings); nothing else names providers.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterator, Sequence

from core.settings import Settings
from domain.payment.errors import UnknownProvider
from domain.payment.providers.base import PaymentProvider

Factory = Callable[[Settings], PaymentProvider]
_FACTORIES: dict[str, Factory] = {}


def register(name: str) -> Callable[[Factory], Factory]:
    def add(factory: Factory) -> Factory:
        _FACTORIES[name] = factory
        return factory

    return add


def factories() -> dict[str, Factory]:
    """Every provider this build knows, by name."""
    for module in pkgutil.iter_modules(__path__):
        if module.name not in ("base", "signing"):
            importlib.import_module(f"{__name__}.{module.name}")
    return dict(_FACTORIES)


class Providers:
    """The enabled providers of a process; the first is the default."""

    def __init__(self, providers: Sequence[PaymentProvider]) -> None:
        self._by_name = {p.name: p for p in providers}
        self.default = providers[0].name if providers else None

    def get(self, name: str | None = None) -> PaymentProvider:
        """``name`` (default: the default provider); ``UnknownProvider`` if not enabled."""
        name = name or self.default
        provider = self._by_name.get(name) if name else None
        if provider is None:
            raise UnknownProvider(
                f"No payment provider {name!r} is enabled"
                if name
                else "No payment provider is enabled",
                details={"enabled": sorted(self._by_name)},
            )
        return provider

    def __iter__(self) -> Iterator[PaymentProvider]:
        return iter(self._by_name.values())

    @property
    def names(self) -> list[str]:
        return list(self._by_name)

    def close(self) -> None:
        for provider in self._by_name.values():
            provider.close()


def build_providers(settings: Settings, names: Sequence[str] | None = None) -> Providers:
    """Build the providers named (default: ``settings.enabled_payment_providers``)."""
    known = factories()
    wanted = list(settings.enabled_payment_providers if names is None else names)
    unknown = sorted(set(wanted) - set(known))
    if unknown:
        raise ValueError(f"unknown payment providers {unknown}; known: {sorted(known)}")
    return Providers([known[name](settings) for name in wanted])
