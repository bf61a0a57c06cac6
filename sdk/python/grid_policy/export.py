"""Turning a policy class into the export class componentize-py looks for.

A policy is a settings dataclass (see :mod:`grid_policy.settings`) with the world's methods,
each taking a :class:`~grid_policy.context.Context` last. The component's app module says::

    from grid_policy.export import export_pricing
    WitWorld = export_pricing(MyPricing)

The policy is built from the gateway's settings on the first evaluation of an instance and
kept for the instance's life (settings change only with a new policy version, which gets new
instances). Nothing here runs at import: componentize-py imports the app module at build
time, when no host is there to ask.
"""

from __future__ import annotations

from .context import Context
from .settings import SettingsError, parse_settings
from .wit import Err
from .wit import host as _host_module

_LEVELS = {"trace": "TRACE", "debug": "DEBUG", "info": "INFO", "warn": "WARN", "error": "ERROR"}


def _host():
    # Imported with this module, at build time: under --stub-wasi an import first reached
    # during an evaluation would trap.
    return _host_module


class _Base:
    _policy_cls: type = object
    _policy = None
    _context = None

    def validate_settings(self, settings: str) -> None:
        try:
            parse_settings(self._policy_cls, settings)
        except SettingsError as e:
            raise Err(str(e)) from None

    def _get(self):
        # Kept on the class: componentize-py may make a new WitWorld for each call.
        cls = type(self)
        if cls._policy is None:
            cls._policy = parse_settings(cls._policy_cls, _host().settings())
        return cls._policy

    @classmethod
    def _ctx(cls) -> Context:
        # One per instance life: it holds nothing but the host's functions (the clock is read
        # when the policy asks), so building it per call would only cost time.
        if cls._context is None:
            host = _host()
            cls._context = Context(
                host.now, lambda level, message: host.log(host.Level[_LEVELS[level]], message)
            )
        return cls._context


def export_pricing(policy_cls: type) -> type:
    """The ``WitWorld`` class of a pricing component whose policy is ``policy_cls``
    (a settings dataclass with ``quote(request, node, ctx) -> Quote``)."""

    class WitWorld(_Base):
        _policy_cls = policy_cls

        def quote(self, request, node):
            return self._get().quote(request, node, self._ctx())

    return WitWorld


def export_payee(policy_cls: type) -> type:
    """The ``WitWorld`` class of a payee component (``check(order, node, ctx) -> Decision``)."""

    class WitWorld(_Base):
        _policy_cls = policy_cls

        def check(self, order, node):
            return self._get().check(order, node, self._ctx())

    return WitWorld


def export_authorization(policy_cls: type) -> type:
    """The ``WitWorld`` class of an authorization component
    (``authorize_session(request, ctx)``, ``authorize_request(request, ctx)``)."""

    class WitWorld(_Base):
        _policy_cls = policy_cls

        def authorize_session(self, request):
            return self._get().authorize_session(request, self._ctx())

        def authorize_request(self, request):
            return self._get().authorize_request(request, self._ctx())

    return WitWorld
