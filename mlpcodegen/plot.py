"""``mlpcodegen formula --png``: the formula rendered with matplotlib's mathtext and,
for one-input networks, the network's output against the (rounded) formula's."""
from __future__ import annotations

import io
import os
from typing import Any, Optional

import numpy as np

from ._files import write_atomic
from .backends.latex import latex_equations
from .backends.sympy import expression_function, expression_strings
from .ir import Network
from .reference import evaluate

#: Above this many LaTeX characters the formula is not drawn (it could not be read).
MAX_RENDERED_CHARS = 3000


def render_png(net: Network, path: "str | os.PathLike[str]", *, digits: Optional[int] = 3, expand: bool = False,
               layout: str = "auto", domain: tuple[float, float] = (-1.0, 1.0)) -> Any:
    """Write the picture to ``path`` (atomically) and return the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    equations = latex_equations(net, digits=digits, expand=expand, layout=layout)
    text_lines = [f"${left} = {right}$" for left, right in equations]
    drawable = sum(len(line) for line in text_lines) <= MAX_RENDERED_CHARS
    if not drawable:
        text_lines = [f"(formula of {len(equations)} equations is too large to draw; use --latex)"]
    plots = net.n_inputs == 1
    height = 0.45 * len(text_lines) + (3.2 if plots else 0.3)
    figure = plt.figure(figsize=(9, height))
    for i, line in enumerate(text_lines):
        figure.text(0.01, 1 - (i + 0.7) * 0.45 / height, line, fontsize=12, va="center")
    if plots:
        _plot_against_formula(net, figure, digits, domain, top=1 - (len(text_lines) * 0.45 + 0.2) / height)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return write_atomic(path, buffer.getvalue())



def _plot_against_formula(net: Network, figure: Any, digits: Optional[int], domain: tuple[float, float],
                          top: float) -> None:
    axes = figure.add_axes((0.08, 0.08, 0.88, max(top - 0.14, 0.2)))
    x = np.linspace(domain[0], domain[1], 400)[:, None]
    exact = evaluate(net, x)
    formula = expression_function(expression_strings(net, "numpy", digits=digits), 1)(x)
    for j in range(net.n_outputs):
        axes.plot(x[:, 0], exact[:, j], lw=2.5, alpha=0.6, label=f"network y{j + 1 if net.n_outputs > 1 else ''}")
        axes.plot(x[:, 0], formula[:, j], "--", lw=1.2,
                  label=f"formula, {digits} digits" if digits else "formula (exact weights)")
    error = float(np.max(np.abs(formula - exact)))
    axes.set_title(f"network vs formula: max |difference| {error:.3g} on [{domain[0]:g}, {domain[1]:g}]")
    axes.set_xlabel("x")
    axes.legend(loc="best", fontsize=9)
    axes.grid(alpha=0.3)
