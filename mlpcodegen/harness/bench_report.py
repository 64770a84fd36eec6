"""The benchmark's outputs: a Markdown report (tables, facts and ratios) and a PNG plot,
written atomically; :func:`summary_lines`, the few facts ``mlpcodegen bench`` prints.

The project's own speed goals (:func:`targets`) are for ``bench/bench_speed.py``
(``write_report(..., goals=True)``): a user's report states facts and ratios only."""
from __future__ import annotations

import platform
from pathlib import Path
from typing import Optional, Sequence

from ..core._files import write_atomic
from .bench import ModelBench, Timing

PEERS = ("model.predict", "ONNX Runtime (1 thread)", "LiteRT, XNNPACK (1 thread)")
CFFI_ONE = ("C via cffi: bound call", "C via cffi: scalar entry")


def _ns(seconds: Optional[float]) -> str:
    if seconds is None:
        return "—"
    return f"{seconds * 1e9:,.0f} ns" if seconds < 1e-5 else f"{seconds * 1e6:,.0f} µs" if seconds < 1e-2 \
        else f"{seconds * 1e3:,.1f} ms"


def _rate(rate: Optional[float]) -> str:
    return "—" if rate is None else f"{rate / 1e6:,.3g} M/s" if rate >= 1e6 else f"{rate / 1e3:,.3g} k/s"


def _ratio(value: Optional[float]) -> str:
    if value is None:
        return "—"
    return f"{value:,.0f}×" if value >= 100 else f"{value:.3g}×"


def _fastest_peer_one(bench: ModelBench) -> Optional[Timing]:
    peers = [p for p in bench.paths if p.kind == "peer" and p.one]
    return min(peers, key=lambda p: p.one) if peers else None


def _fastest_peer_rate(bench: ModelBench, rows: int) -> Optional[Timing]:
    peers = [p for p in bench.paths if p.kind == "peer" and rows in p.rates]
    return max(peers, key=lambda p: p.rates[rows]) if peers else None


def model_table(bench: ModelBench, rows: Sequence[int]) -> list[str]:
    predict = bench.get("model.predict")
    peer_one = _fastest_peer_one(bench)
    head = "| path | kind | max ulp | 1 sample | × predict | × fastest peer |"
    rule = "|---|---|---|---|---|---|"
    for n in rows:
        head += f" {n:,} rows | × fastest peer |"
        rule += "---|---|"
    lines = [f"## {bench.label}: {bench.describe}", "", head + " note |", rule + "---|"]
    fastest = {n: _fastest_peer_rate(bench, n) for n in rows}
    for p in bench.paths:
        one_x = predict.one / p.one if predict and predict.one and p.one else None
        peer_x = peer_one.one / p.one if peer_one and p.one else None
        ulp = "—" if p.ulp is None else f"{p.ulp:.2g}"
        cells = [p.name, p.kind, ulp, _ns(p.one), _ratio(one_x), _ratio(peer_x)]
        for n in rows:
            rate = p.rates.get(n)
            cells += [_rate(rate), _ratio(rate / fastest[n].rates[n] if rate and fastest[n] else None)]
        lines.append("| " + " | ".join(cells) + f" | {p.note} |")
    lines.append("")
    if peer_one:
        lines.append(f"Fastest peer for one sample: {peer_one.name}.")
    lines += ["", "| fact | value |", "|---|---|"]
    lines += [f"| {key} | {value:,.3g} |" if isinstance(value, float) else f"| {key} | {value:,} |"
              for key, value in bench.facts.items()]
    return lines + [""]


def summary_lines(bench: ModelBench) -> list[str]:
    """A few lines of facts and ratios for one model: one-sample latency (model.predict,
    the fastest other runtime, the C function), throughput on the most rows, conversion
    and compile time, code size, and the largest error of any path."""
    lines = [f"{bench.label}: {bench.describe}, float32, one thread"]
    predict, peer = bench.get("model.predict"), _fastest_peer_one(bench)
    c_one = min((p for p in (bench.get(n) for n in CFFI_ONE) if p and p.one), key=lambda p: p.one, default=None)
    in_c = bench.get("generated C, timed inside C")
    if c_one:
        versus = [f"{_ratio(other.one / c_one.one)} faster than {other.name}" for other in (predict, peer)
                  if other and other.one and other is not c_one]
        lines.append(f"  one sample: {c_one.name} {_ns(c_one.one)} ({'; '.join(versus) or 'no peer timed'})"
                     + (f"; the C alone {_ns(in_c.one)}" if in_c and in_c.one else ""))
    rows = max((n for p in bench.paths for n in p.rates), default=None)
    c_batch, fastest = bench.get("C via cffi: net(x)"), _fastest_peer_rate(bench, rows) if rows else None
    if rows and c_batch and rows in c_batch.rates:
        versus = f" ({_ratio(c_batch.rates[rows] / fastest.rates[rows])} the rate of {fastest.name})" if fastest else ""
        lines.append(f"  {rows:,} rows: C via cffi {_rate(c_batch.rates[rows])}{versus}")
    lines += [f"  {_fact(key, value)}" for key, value in bench.facts.items()]
    ulps = [p.ulp for p in bench.paths if p.ulp is not None]
    if ulps:
        lines.append(f"  largest error of any path on the checked rows: {max(ulps):.2g} float32 ulp "
                     f"against the float64 reference")
    return lines


def _fact(key: str, value: float) -> str:
    """``compile C (s)``, 0.108 -> ``compile C: 0.108 s``."""
    what, _, unit = key.rpartition(" (")
    what, unit = (what, unit.rstrip(")")) if what and key.endswith(")") else (key, "")
    number = f"{value:,.3g}" if isinstance(value, float) else f"{value:,}"
    return f"{what}: {number} {unit}".rstrip()


def _one(bench: ModelBench, name: str) -> Optional[float]:
    path = bench.get(name)
    return path.one if path else None


def targets(bench: ModelBench, seed_like: bool) -> list[tuple[str, str, str, Optional[bool]]]:
    """(target, measured, needed, met) for the issue's targets on this model."""
    out: list[tuple[str, str, str, Optional[bool]]] = []
    cffi = [p for p in (bench.get(n) for n in CFFI_ONE) if p and p.one]
    best = min(cffi, key=lambda p: p.one) if cffi else None
    empty, in_c, plain = _one(bench, "empty cffi call (2 pointers)"), _one(bench, "generated C, timed inside C"), \
        _one(bench, "plain C loops, timed inside C")

    def add(what: str, measured: Optional[float], needed: float, higher: bool, unit: str = "×") -> None:
        if measured is None:
            out.append((what, "not measured", f"{'≥' if higher else '≤'} {needed:g}{unit}", None))
            return
        met = measured >= needed if higher else measured <= needed
        out.append((what, f"{measured:,.3g}{unit}", f"{'≥' if higher else '≤'} {needed:g}{unit}", met))

    if best and empty and in_c:
        add(f"cffi one sample ({best.name.split(': ')[1]}) / (empty cffi call + in-C)", best.one / (empty + in_c), 1.3,
            False)
    lite, predict = _one(bench, "LiteRT, XNNPACK (1 thread)"), _one(bench, "model.predict")
    add("cffi one sample: × faster than LiteRT", lite / best.one if best and lite else None, 5, True)
    add("cffi one sample: × faster than model.predict", predict / best.one if best and predict else None, 1e5, True)
    add("in-C one sample / plain C loops", in_c / plain if in_c and plain else None, 0.6 if seed_like else 1.0, False)
    rows = max((n for p in bench.paths for n in p.rates), default=None)
    c_batch = bench.get("C via cffi: net(x)")
    for peer, factor in (("LiteRT, XNNPACK (1 thread)", 1.2), ("ONNX Runtime (1 thread)", 2.0)):
        other = bench.get(peer)
        have = c_batch and other and rows in c_batch.rates and rows in other.rates
        add(f"batch {rows:,} rows, C via cffi: × {peer}",
            c_batch.rates[rows] / other.rates[rows] if have else None, factor, True)
    convert = next((v for k, v in bench.facts.items() if k.startswith("convert")), None)
    add("convert .keras -> C (fresh process, no TensorFlow)", convert, 0.3, False, " s")
    compile_s = next((v for k, v in bench.facts.items() if k.startswith("compile C")), None)
    add("compile the C", compile_s, 1.0, False, " s")
    return out


def write_report(benches: Sequence[ModelBench], rows: Sequence[int], out: Path, command: str,
                 seed_labels: Sequence[str] = (), *, goals: bool = False) -> Path:
    """Write ``out`` (Markdown) and ``out``'s ``.png`` sibling; return the PNG path.
    ``goals``: also the table of the project's speed goals (``bench/bench_speed.py``;
    ``seed_labels`` name the models judged as tiny there)."""
    intro = ["# Speed, side by side (float32, one process)", "",
             f"Generated by `{command}` on this machine ({platform.machine()}, {_cpu_name()}); "
             "single-thread everywhere.  1 sample: median latency of one call; rows: samples per second for one "
             "call on that many rows (C inside C: best of several runs of a C driver).  `max ulp`: worst error "
             "of the path on 256 rows against the float64 reference, in float32 ULPs at the reference "
             "magnitude.  Ratios are within this run.", "", "## Summary", "", "```"]
    intro += [line for bench in benches for line in summary_lines(bench)] + ["```", ""]
    lines: list[str] = []
    for bench in benches:
        lines += model_table(bench, rows)
    if goals:
        intro += _goals_table(benches, seed_labels)
    png = out.with_suffix(".png")
    lines = intro + [f"![speed]({png.name})", ""] + lines
    write_atomic(out, "\n".join(lines) + "\n")
    plot(benches, rows, png)
    return png


def _goals_table(benches: Sequence[ModelBench], seed_labels: Sequence[str]) -> list[str]:
    table = ["## Targets", "", "| model | target | measured | needed | met |", "|---|---|---|---|---|"]
    for bench in benches:
        for what, measured, needed, met in targets(bench, bench.label in seed_labels):
            table.append(f"| {bench.label} | {what} | {measured} | {needed} | "
                         f"{'—' if met is None else 'yes' if met else '**no**'} |")
    return table + [""]


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


#: kind -> (colour, legend text) of the plot's bars.
KINDS = {"peer": ("#d62728", "other runtimes"), "mlpcodegen": ("#1f77b4", "mlpcodegen, called from Python"),
         "floor": ("#7f7f7f", "empty call (the call's own cost)"), "in C": ("#2ca02c", "timed inside C (no Python)")}


def _tick(value: float, units: Sequence[tuple[str, float]]) -> str:
    """``value`` in the largest unit it reaches: 3e-7 s -> ``300 ns``; 2e7 /s -> ``20 M/s``."""
    for unit, factor in units:
        if value >= factor * 0.999:
            return f"{value / factor:.3g} {unit}"
    unit, factor = units[-1]
    return f"{value / factor:.3g} {unit}"


TIME_UNITS = (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9))
RATE_UNITS = (("G/s", 1e9), ("M/s", 1e6), ("k/s", 1e3), ("/s", 1.0))


def plot(benches: Sequence[ModelBench], rows: Sequence[int], png: Path) -> None:
    """Log-scale bars per model: latency of one sample, and samples per second on the
    most rows; colours by kind of path (legend), values printed at the bars."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    most = max(rows)
    fig, axes = plt.subplots(len(benches), 2, figsize=(13, 1.2 + 3.6 * len(benches)), squeeze=False)
    for row, bench in zip(axes, benches):
        _bars(row[0], bench, [(p, p.one) for p in bench.paths if p.one], TIME_UNITS,
              f"{bench.label}: one sample", "seconds per sample (log scale; shorter is faster)")
        _bars(row[1], bench, [(p, p.rates[most]) for p in bench.paths if most in p.rates], RATE_UNITS,
              f"{bench.label}: {most:,} rows in one call", "samples per second (log scale; longer is faster)")
    used = {p.kind for bench in benches for p in bench.paths}
    fig.legend(handles=[Patch(color=colour, label=text) for kind, (colour, text) in KINDS.items() if kind in used],
               loc="upper center", ncol=4, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / fig.get_figheight()))
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    write_atomic(png, buffer.getvalue())


def _bars(ax, bench: ModelBench, values: list, units, title: str, label: str) -> None:
    import matplotlib.ticker as ticker

    ax.barh(range(len(values)), [v for _, v in values], color=[KINDS.get(p.kind, KINDS["mlpcodegen"])[0]
                                                              for p, _ in values])
    ax.set_yticks(range(len(values)), [p.name for p, _ in values], fontsize=7)
    ax.invert_yaxis()
    ax.set_xscale("log")
    if values:
        low, high = min(v for _, v in values), max(v for _, v in values)
        ax.set_xlim(low / 2, high * 4)  # room for the value printed after the longest bar
        subs = (1.0,) if high / low > 1e3 else (1.0, 2.0, 5.0)
        ax.xaxis.set_major_locator(ticker.LogLocator(base=10, subs=subs, numticks=20))
        ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: _tick(v, units)))
        ax.xaxis.set_minor_formatter(ticker.NullFormatter())
        for y, (_, v) in enumerate(values):
            ax.text(v * 1.08, y, _tick(v, units), va="center", fontsize=6)
    ax.tick_params(axis="x", labelsize=7)
    ax.set_xlabel(label, fontsize=8)
    ax.set_title(title, fontsize=9)
