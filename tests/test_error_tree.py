"""One error tree: every exception class of mcpyard is defined in ``mcpyard.errors``.

The one class defined elsewhere is Authlib's kind (Authlib renders only its own error
classes), and it is in the tree too."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import mcpyard
from mcpyard import errors

_AUTHLIB_KIND = {"mcpyard.gateway.oauth._server.InvalidTargetError"}


def _exception_classes() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(mcpyard.__path__, "mcpyard."):
        if info.name.endswith("__main__") or info.name.startswith("mcpyard.demo"):
            continue
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if (inspect.isclass(value) and issubclass(value, BaseException)
                    and value.__module__.startswith("mcpyard.")):
                found[f"{value.__module__}.{value.__qualname__}"] = value
    return found


def test_every_exception_class_is_defined_in_errors() -> None:
    classes = _exception_classes()
    outside = {name for name, cls in classes.items() if cls.__module__ != "mcpyard.errors"}
    assert outside == _AUTHLIB_KIND
    for name, cls in classes.items():
        assert issubclass(cls, errors.MCPyardError), name


def test_the_names_modules_export_are_the_tree_s_classes() -> None:
    from mcpyard import kube
    from mcpyard.bridge import _child
    from mcpyard.gateway.oauth import _metadata, oidc
    from mcpyard.mcp import asgi

    assert kube.ApiError is errors.ApiError
    assert asgi.BodyTooLarge is errors.BodyTooLarge
    assert _child.UnavailableError is errors.UnavailableError
    assert _metadata.MetadataError is errors.MetadataError
    assert (oidc.OidcError, oidc.OidcRefused, oidc.OidcUnavailable) == (
        errors.OidcError, errors.OidcRefused, errors.OidcUnavailable)


def test_the_tree_drawn_in_the_docstring_names_every_class() -> None:
    doc = errors.__doc__ or ""
    for name, value in vars(errors).items():
        if inspect.isclass(value) and issubclass(value, errors.MCPyardError):
            assert name in doc, name
