"""What runs in the student's namespace: call the answers on given inputs, report plain data.

A *probe* is a module-level function ``probe(answers, *args) -> data`` in an exercise module; it
looks the student's objects up by name (``answers["log_abs_det"]``), calls them on the arguments the
check chose, and returns JSON data. Only source text travels: that of :mod:`cflib.grading.wire`
(whose encoders the probe uses as globals) followed by the probe's; it imports anything else inside
its body.

This module is the harness around a probe. It uses the standard library only, and the grader sends
its *source text* (from the grader's own copy of cflib) into the student's kernel, where it runs in a
fresh namespace: a notebook that patches ``cflib`` in its kernel cannot change it. The in-notebook
:func:`cflib.grading.check` runs the same code in-process. Nothing here decides a verdict; it only
reports what the answers did:

    {"value": data} | {"missing": [names]} | {"raised": {"call", "type", "message"}}
    | {"probe_failed": "..."}
"""

from __future__ import annotations

import json
import sys
from typing import Any

MAX_MESSAGE = 300


class Missing(Exception):
    """An answer is not defined in the namespace."""


class Raised(Exception):
    """The student's code raised while the probe called it."""

    def __init__(self, call: str, error: BaseException):
        super().__init__(call)
        self.call = call
        self.error = error


def _short(value: object, limit: int = 40) -> str:
    """How an argument is shown in a message: plain values as such, others by type and shape."""
    if value is None or isinstance(value, bool | int | float | str):
        text = repr(value)
        return text if len(text) <= limit else text[: limit - 3] + "..."
    shape = getattr(value, "shape", None)
    if isinstance(shape, tuple | list) or type(shape).__name__ == "Size":
        return f"<{type(value).__name__} of shape {tuple(shape)}>"
    return "<function>" if callable(value) else f"<{type(value).__name__}>"


class _Call:
    """A student's callable, wrapped so that what it raises is reported with the call."""

    def __init__(self, name: str, function: Any):
        self._name = name
        self._function = function

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return self._function(*args, **kwargs)
        except (Exception, SystemExit) as error:
            shown = [_short(a) for a in args] + [f"{k}={_short(v)}" for k, v in kwargs.items()]
            raise Raised(f"{self._name}({', '.join(shown)})", error) from None


class Answers:
    """The notebook's namespace as a probe sees it: ``answers["name"]``, read-only."""

    def __init__(self, namespace: dict[str, Any]):
        self._namespace = namespace

    def __contains__(self, name: str) -> bool:
        return name in self._namespace

    def __getitem__(self, name: str) -> Any:
        if name not in self._namespace:
            raise Missing(name)
        value = self._namespace[name]
        return _Call(name, value) if callable(value) else value


def run(
    namespace: dict[str, Any], source: str, function: str, args: list[Any], needs: list[str]
) -> dict[str, Any]:
    """Define the probe from ``source`` in a fresh namespace and call it on ``args``."""
    missing = [name for name in needs if name not in namespace]
    if missing:
        return {"missing": missing}
    scope: dict[str, Any] = {"__name__": "cflib_probe"}
    try:
        exec(compile(source, "<cflib probe>", "exec"), scope)
        value = scope[function](Answers(namespace), *args)
    except Missing as missing_name:
        return {"missing": [str(missing_name)]}
    except Raised as raised:
        message = str(raised.error)
        if len(message) > MAX_MESSAGE:
            message = message[: MAX_MESSAGE - 3] + "..."
        return {
            "raised": {"call": raised.call, "type": type(raised.error).__name__, "message": message}
        }
    except Exception as error:
        return {"probe_failed": f"{type(error).__name__}: {str(error)[:MAX_MESSAGE]}"}
    return {"value": value}


def to_json(result: dict[str, Any]) -> str:
    """``result`` as JSON text; a value that is not plain data becomes a ``probe_failed`` report."""
    try:
        return json.dumps(result)
    except (TypeError, ValueError) as error:
        return json.dumps({"probe_failed": f"the probe's result is not plain data: {error}"})


def emit(
    namespace: dict[str, Any],
    token: str,
    source: str,
    function: str,
    args_json: str,
    needs: list[str],
) -> None:
    """Run the probe and write its result to stdout between two copies of ``token``."""
    text = to_json(run(namespace, source, function, json.loads(args_json), needs))
    sys.stdout.write(f"{token}{text}{token}\n")
    sys.stdout.flush()
