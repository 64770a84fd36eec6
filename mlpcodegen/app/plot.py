"""``mlpcodegen formula --png``: the formula, wrapped to the page, above a full-width
plot of the network against the formula with rounded weights (one-input networks).

The picture is laid out for a reader: a fixed page width, every equation broken at a
``+``/``-`` between terms to fit it, the plot under it across the page.  A nested formula
that does not fit in a few lines is drawn per layer (the "named" layout); a network
whose formula would not fit on a page at all is refused with an error (exit 1), never
drawn as a placeholder.
"""
from __future__ import annotations

import functools
import io
import os
import re
from typing import Any, Optional

import numpy as np

from ..core._files import write_atomic
from ..backends.latex import latex_equations, resolve_layout, rounded_network
from ..core.errors import UnsupportedError
from ..core.ir import Network
from ..core.reference import evaluate

WIDTH_INCHES = 10.0
DPI = 110
FONT_SIZE = 12
LINE_INCHES = 0.42
PLOT_INCHES = 3.8
#: Most text lines drawn; a formula needing more is refused (the text form has no limit).
MAX_LINES = 64
#: A nested formula longer than this many lines is drawn per layer instead.
NESTED_MAX_LINES = 6
_TEXT_INCHES = WIDTH_INCHES - 0.7
_GAP = 0.06  # inches between pieces: a little more than mathtext's space around + and -


def _terms(latex: str) -> list[str]:
    """``a + \\tanh{\\left(b - c\\right)}`` -> ``["a", "+ \\tanh(b", "- c)"]``: pieces that
    are each valid math text (mathtext needs balanced braces, not parentheses), split at
    every ``+``/``-`` between terms that is outside braces."""
    latex = latex.replace("{\\left(", "(").replace("\\right)}", ")").replace("\\left(", "(").replace("\\right)", ")")
    terms, depth, start = [], 0, 0
    for i, char in enumerate(latex):
        depth += {"{": 1, "}": -1}.get(char, 0)
        if depth == 0 and i > start and latex[i - 1 : i + 2] in (" + ", " - ") and latex[i - 2] != ",":
            terms.append(latex[start : i - 1])
            start = i
    return terms + [latex[start:]]


def _width(text: str) -> float:
    """Rendered width of ``$text$`` in inches at the picture's font size.  Digits all
    have one width (tabular figures), so pieces that differ only in digits share one
    measurement."""
    return _measure(re.sub(r"\d", "0", text))


@functools.lru_cache(maxsize=4096)
def _measure(text: str) -> float:
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextToPath

    width, _, _ = TextToPath().get_text_width_height_descent(f"${text}$", FontProperties(size=FONT_SIZE), ismath=True)
    return width / 72.0


def wrap_equation(left: str, right: str, width: float = _TEXT_INCHES) -> list[str]:
    """Lines of math text (without ``$``) showing ``left = right`` within ``width`` inches.
    Each piece is measured once (mathtext parses slowly: measuring every candidate line
    made a 2-16-16-1 picture take a minute); a line's width is the sum of its pieces'."""
    lines, current, used = [], f"{left} =", _width(f"{left} =")
    for term in _terms(right):
        extra = _width(term) + _GAP
        if used + extra > width and current != f"{left} =":
            lines.append(current)
            current, used = r"\quad", _width(r"\quad")
        current, used = f"{current} {term}", used + extra
    return lines + [current]


def _wrapped(net: Network, digits: Optional[int], expand: bool, layout: str) -> list[str]:
    """The formula as lines that fit the page: nested when that stays short, else named."""
    layout = resolve_layout(net, layout)
    named_lines = sum(layer.n_out for layer in net.layers)
    if layout == "named" and named_lines > MAX_LINES:
        raise _too_large(net, named_lines)
    lines = [line for left, right in latex_equations(net, digits=digits, expand=expand, layout=layout)
             for line in wrap_equation(left, right)]
    if layout == "nested" and len(lines) > NESTED_MAX_LINES and named_lines <= MAX_LINES:
        return _wrapped(net, digits, expand, "named")
    if len(lines) > MAX_LINES:
        raise _too_large(net, len(lines))
    return lines


def check_drawable(net: Network, digits: Optional[int], expand: bool, layout: str) -> None:
    """Refuse (UnsupportedError) a formula too large for one page before anything is
    printed or written: ``formula --png`` would otherwise print the text, then fail."""
    _wrapped(net, digits, expand, layout)


def _too_large(net: Network, lines: int) -> UnsupportedError:
    return UnsupportedError(
        f"the formula of {net.describe()} needs {lines} lines or more, too many to draw on one page "
        f"(limit {MAX_LINES}); print it as text with `mlpcodegen formula MODEL` (LaTeX, --layout named), "
        "or draw a smaller model"
    )


def render_png(net: Network, path: "str | os.PathLike[str]", *, digits: Optional[int] = 3, expand: bool = False,
               layout: str = "auto", domain: tuple[float, float] = (-1.0, 1.0)) -> Any:
    """Write the picture to ``path`` (atomically) and return the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines = _wrapped(net, digits, expand, layout)
    plots = net.n_inputs == 1
    text_height = LINE_INCHES * len(lines) + 0.3
    height = text_height + (PLOT_INCHES + 0.3 if plots else 0.0)
    figure = plt.figure(figsize=(WIDTH_INCHES, height))
    for i, line in enumerate(lines):
        figure.text(0.25 / WIDTH_INCHES, 1 - (0.15 + (i + 0.5) * LINE_INCHES) / height, f"${line}$",
                    fontsize=FONT_SIZE, va="center")
    if plots:
        bottom = 0.55 / height
        axes = figure.add_axes((0.8 / WIDTH_INCHES, bottom, 1 - 1.0 / WIDTH_INCHES,
                                (height - text_height) / height - bottom - 0.35 / height))
        _plot_against_formula(net, axes, digits, domain)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    plt.close(figure)
    return write_atomic(path, buffer.getvalue())


def _plot_against_formula(net: Network, axes: Any, digits: Optional[int], domain: tuple[float, float]) -> None:
    x = np.linspace(domain[0], domain[1], 400)[:, None]
    exact = evaluate(net, x)
    formula = evaluate(rounded_network(net, digits), x) if digits is not None else exact
    for j in range(net.n_outputs):
        label = "y" if net.n_outputs == 1 else f"y_{j}"
        axes.plot(x[:, 0], exact[:, j], lw=2.5, alpha=0.6, label=f"network ${label}$")
        axes.plot(x[:, 0], formula[:, j], "--", lw=1.2,
                  label=f"formula ${label}$, weights to {digits} digits" if digits is not None else "formula")
    error = float(np.max(np.abs(formula - exact)))
    axes.set_title(f"network vs formula: max |difference| {error:.3g} on [{domain[0]:g}, {domain[1]:g}]",
                   fontsize=10)
    axes.set_xlabel("x")
    axes.legend(loc="best", fontsize=9)
    axes.grid(alpha=0.3)


def write_simplify_png(net: Network, simpler: Network, low: float, high: float, title: str,
                       path: "str | os.PathLike[str]", *, mkdir: bool = False, bound: Optional[float] = None) -> Any:
    """``simplify --png``: the network against the simpler formula (top, full width) and
    their difference (bottom, its own scale: an error of 1e-3 on a curve of range 1 is
    invisible on the first), for one-input networks.  Written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = np.linspace(low, high, 2001)[:, None]
    exact, approx = evaluate(net, x), evaluate(simpler, x)
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(WIDTH_INCHES, 7.0), sharex=True,
                                         gridspec_kw={"height_ratios": (3, 2)})
    for j in range(net.n_outputs):
        label = "y" if net.n_outputs == 1 else f"y_{j}"
        top.plot(x[:, 0], exact[:, j], lw=2.5, alpha=0.55, label=f"network ${label}$")
        top.plot(x[:, 0], approx[:, j], "--", lw=1.3, label=f"simplified ${label}$")
        bottom.plot(x[:, 0], approx[:, j] - exact[:, j], lw=1.0, label=f"simplified - network ${label}$")
    top.set_title(title, fontsize=11)
    top.legend(loc="best", fontsize=9)
    error = float(np.max(np.abs(approx - exact)))
    bottom.set_title(f"error: max |simplified - network| {error:.3g} on [{low:g}, {high:g}] (2,001 points)", fontsize=10)
    bottom.axhline(0.0, color="0.5", lw=0.6)
    if bound is not None and np.isfinite(bound):
        for side in (-bound, bound):
            bottom.axhline(side, color="C3", lw=1.0, ls=":")
        bottom.plot([], [], color="C3", lw=1.0, ls=":", label=f"certified bound ±{bound:.3g}")
        bottom.legend(loc="best", fontsize=9)
    bottom.set_xlabel("x")
    for axes in (top, bottom):
        axes.grid(alpha=0.3)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    plt.close(figure)
    return write_atomic(path, buffer.getvalue(), mkdir=mkdir)
