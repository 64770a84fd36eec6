"""Import generated Python source from a real file, so tracebacks show the generated
line and Numba's ``cache=True`` can store compiled code beside it."""
from __future__ import annotations

import hashlib
import importlib.util
import sys
from types import ModuleType

from .._files import write_atomic
from .cffi_build import cache_dir


def import_generated(source: str, stem: str) -> ModuleType:
    """Write ``source`` to the cache (named by its hash) once, then import it."""
    key = hashlib.sha256(source.encode()).hexdigest()[:20]
    name = f"_mlpcodegen_{stem}_{key}"
    if name in sys.modules:
        return sys.modules[name]
    path = cache_dir() / "py" / f"{name}.py"
    if not path.exists() or path.read_text(encoding="utf-8") != source:
        write_atomic(path, source)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module
