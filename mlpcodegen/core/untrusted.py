"""Text from a model file (layer and model names, notes) as inert text: shared by the
frontends (error messages) and the backends (comments and strings of every target)."""
from __future__ import annotations

#: Characters a name from a model file may keep in generated text: none of them ends a
#: comment or a string, starts a line, a directive or an escape in any target language
#: (C, C++, Python, LaTeX), or is a format-string brace.
_SAFE_CHARACTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 _-.,:;()[]=+/@")
_NAME_LIMIT = 120


def quote_name(text: object) -> str:
    """Untrusted text (a layer or model name from a model file) as inert text for any
    comment or string of any target: one line of printable ASCII from a small safe set,
    every other character spelt ``<U+XXXX>``, cut to a bounded length.

    >>> quote_name('x\\nimport os; os.system("touch CANARY")*/')
    'x<U+000A>import os; os.system(<U+0022>touch CANARY<U+0022>)<U+002A>/'
    """
    text = str(text)
    cut = len(text) > _NAME_LIMIT
    safe = "".join(c if c in _SAFE_CHARACTERS else f"<U+{ord(c):04X}>" for c in text[:_NAME_LIMIT])
    return safe + ("..." if cut else "")
