"""Run the Dagger SDK's own module registration offline and print what it would send the engine, as JSON.

Usage: python tests/dagger_registration.py [module:Class]
Without an argument the module is found the way the runtime finds it (the `dagger.mod` entry point of the
installed package). The SDK reads the main object's name from the environment when it is imported, so this runs
in a fresh interpreter. Query execution is intercepted: the registration builds its TypeDef calls as usual, and
the one query it executes (`module.id`) is recorded instead of sent. Exits non-zero when registration fails (for
example on an argument type the API cannot represent).
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from typing import Any


def _selections(value: Any) -> Any:
    """A query context or Dagger object as the list of its field selections (recursively); anything else as is."""
    context = getattr(value, "_ctx", value)
    if not hasattr(context, "selections"):
        return value
    return [
        {"type": f.type_name, "field": f.name, "args": {k: _selections(v) for k, v in f.args.items()}}
        for f in context.selections
    ]


def main(argv: list[str]) -> int:
    target = argv[1] if len(argv) > 1 else None
    main_object = target.split(":", 1)[1] if target else "Dbstack"
    os.environ["DAGGER_MAIN_OBJECT"] = main_object
    os.environ["DAGGER_MODULE_FILE"] = os.devnull

    import anyio
    from dagger.client import _core
    from dagger.mod.cli import load_module

    executed: list[Any] = []

    async def record(self: Any, return_type: Any = None) -> str:
        executed.append(_selections(self))
        return "module-id"

    _core.Context.execute = record  # type: ignore[method-assign,assignment]
    if target:
        module_name, class_name = target.split(":", 1)
        module = getattr(importlib.import_module(module_name), class_name).__dagger_module__
    else:
        module = load_module()
    try:
        anyio.run(module.register)
    except Exception as exc:  # the SDK's RegistrationError, or a TypeError on an unsupported type
        print(f"registration failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(executed, default=repr))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
