"""Imports gradio without regenerating its type stubs, which is a third of the app's cold start.

Owns :func:`import_gradio`. Gradio 6's ``ComponentMeta`` calls ``create_or_modify_pyi`` for every component class
it defines: it re-reads and ``ast``-parses the class's source file and may write a ``.pyi`` next to it in
site-packages. That is an editor aid for gradio's own developers; at run time it only costs time (on this
machine ``import gradio`` took 3.1 s with it and 2.0–2.2 s without) and writes into the installed package.
An import hook replaces the function with a no-op as soon as its module has run, before any component class
exists. If a gradio version no longer has the function, nothing is replaced and gradio imports as usual.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
from types import ModuleType

META_MODULE = "gradio.component_meta"
STUB_WRITER = "create_or_modify_pyi"


def _no_stubs(*_args, **_kwargs) -> None:
    return None


class _SkipStubs(importlib.abc.MetaPathFinder):
    """Finds ``gradio.component_meta`` through the other finders and patches it right after it executes."""

    def find_spec(self, name, path, target=None):
        if name != META_MODULE:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        run = spec.loader.exec_module

        def exec_module(module: ModuleType) -> None:
            run(module)
            if callable(getattr(module, STUB_WRITER, None)):
                setattr(module, STUB_WRITER, _no_stubs)

        spec.loader.exec_module = exec_module
        return spec


def import_gradio() -> ModuleType:
    """``import gradio``, skipping the stub generation when gradio is not imported yet."""
    if META_MODULE not in sys.modules and not any(isinstance(f, _SkipStubs) for f in sys.meta_path):
        sys.meta_path.insert(0, _SkipStubs())
    import gradio

    return gradio
