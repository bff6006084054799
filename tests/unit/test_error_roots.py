"""Every error kmf defines derives from `kmfwire.errors.KmfError`, so that ``except KmfError`` catches
any of them; each may keep the built-in it always was as a second base (``except ValueError`` still
works). Private exceptions (``_Stopped``, ``_Missing``, ...) are control flow inside one module and
never leave it, so they are not errors of kmf's and are left out."""
from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

from kmfwire.errors import KmfError

pytestmark = pytest.mark.timeout(120)

PACKAGES = ("kmf", "scheduler", "localmesos", "executor", "streams", "config", "kmfwire", "mesoslib", "kmfio")


def production_modules() -> list[str]:
    names = []
    for package in PACKAGES:
        names.append(package)
        root = importlib.import_module(package)
        for info in pkgutil.walk_packages(root.__path__, prefix=f"{package}."):
            if info.name.rsplit(".", 1)[-1] != "__main__":  # running it would start the program
                names.append(info.name)
    return names


def exception_classes() -> list[type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for name in production_modules():
        module = importlib.import_module(name)
        for _, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, BaseException) and value.__module__ == name:
                found[f"{name}.{value.__qualname__}"] = value
    return list(found.values())


def test_the_walk_finds_the_known_roots():
    names = {cls.__name__ for cls in exception_classes()}
    assert {"ClusterError", "ApiError", "ShellError", "WordCountError", "DemoError", "ConfigError"} <= names


def test_every_public_exception_class_derives_from_kmf_error():
    outside = sorted(f"{cls.__module__}.{cls.__qualname__}" for cls in exception_classes()
                     if not cls.__name__.startswith("_") and not issubclass(cls, KmfError))
    assert outside == []
