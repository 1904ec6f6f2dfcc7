__version__ = "0.1.0"

import os as _os
# OpenMP threads that sleep when they wait instead of spinning: on cores shared with other programs spinning threads
# slowed CPU training about 15-fold; read once, when torch loads, so set here, before any module imports torch.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

_LAZY = {"load_deo": "dualdistill.checkpoint", "read_deo": "dualdistill.checkpoint"}  # loaded on first use: `import dualdistill` stays torch-free

def __getattr__(name: str):
    "The names of `_LAZY`, imported from their module when first asked for."
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'dualdistill' has no attribute {name!r}")
