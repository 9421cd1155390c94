"""Old spellings that keep working, each with a DeprecationWarning that names the new one.

Three kinds: a function under an old name (:func:`alias`), a keyword
under an old name (:func:`renamed`), and arguments that became
keyword-only but were once passed by position (:func:`keyword_only`).
"""

from __future__ import annotations

import functools
import sys
import warnings
from typing import Any, Callable, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


def _warn(message: str) -> None:
    """Warn at the user's call, however many of these decorators stand between it and here."""
    frame, level = sys._getframe(0), 1
    while frame is not None and frame.f_code.co_filename == __file__:
        frame, level = frame.f_back, level + 1
    warnings.warn(message, DeprecationWarning, stacklevel=level)


def alias(function: F, old: str) -> F:
    """``function`` under its old name ``old``: it warns, then calls ``function``."""

    @functools.wraps(function)
    def old_name(*args: Any, **kwargs: Any) -> Any:
        _warn(f"{old} is now {function.__name__}; the old name will go")
        return function(*args, **kwargs)

    old_name.__name__ = old
    old_name.__qualname__ = old
    return old_name  # type: ignore[return-value]


def renamed(**old_to_new: str) -> Callable[[F], F]:
    """A decorator: keyword arguments under their old names (``old="new"``) are passed under the new ones."""

    def decorate(function: F) -> F:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            for old, new in old_to_new.items():
                if old in kwargs:
                    if new in kwargs:
                        raise TypeError(f"{function.__name__}() got {old}= and {new}=; pass {new}= only")
                    _warn(f"{function.__name__}({old}=...) is now {function.__name__}({new}=...)")
                    kwargs[new] = kwargs.pop(old)
            return function(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def keyword_only(after: int, *names: str) -> Callable[[F], F]:
    """A decorator: positional arguments past the first ``after`` are passed as the keywords ``names``, in order
    (arguments that were positional once and are keyword-only now)."""

    def decorate(function: F) -> F:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if len(args) > after:
                extra = args[after:]
                if len(extra) > len(names):
                    raise TypeError(f"{function.__name__}() takes {after} positional arguments but {len(args)} were given")
                moved = dict(zip(names, extra))
                clash = set(moved) & set(kwargs)
                if clash:
                    raise TypeError(f"{function.__name__}() got multiple values for {sorted(clash)}")
                _warn(f"{function.__name__}(): pass {', '.join(f'{n}=' for n in moved)} by keyword")
                kwargs.update(moved)
                args = args[:after]
            return function(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
