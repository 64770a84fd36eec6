"""The benchmark's outputs: a Markdown report (tables, ratios, the issue's targets)
and a PNG plot.  Written atomically."""
from __future__ import annotations

import platform
from pathlib import Path
from typing import Optional, Sequence

from .._files import write_atomic
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
                 seed_labels: Sequence[str] = ()) -> Path:
    """Write ``out`` (Markdown) and ``out``'s ``.png`` sibling; return the PNG path."""
    intro = ["# Speed, side by side (float32, one process)", "",
             f"Generated by `{command}` on this machine ({platform.machine()}, {_cpu_name()}); "
             "single-thread everywhere.  1 sample: median latency of one call; rows: samples per second for one "
             "call on that many rows (C inside C: best of several runs of a C driver).  `max ulp`: worst error "
             "of the path on 256 rows against the float64 reference, in float32 ULPs at the reference "
             "magnitude.  Ratios are within this run.", ""]
    lines: list[str] = []
    summary = ["## Targets", "", "| model | target | measured | needed | met |", "|---|---|---|---|---|"]
    for bench in benches:
        lines += model_table(bench, rows)
        for what, measured, needed, met in targets(bench, bench.label in seed_labels):
            summary.append(f"| {bench.label} | {what} | {measured} | {needed} | "
                           f"{'—' if met is None else 'yes' if met else '**no**'} |")
    png = out.with_suffix(".png")
    lines = intro + summary + ["", f"![speed]({png.name})", ""] + lines
    write_atomic(out, "\n".join(lines) + "\n")
    plot(benches, rows, png)
    return png


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def plot(benches: Sequence[ModelBench], rows: Sequence[int], png: Path) -> None:
    """Log-scale bars: latency of one sample and throughput on the most rows, per model."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    most = max(rows)
    fig, axes = plt.subplots(len(benches), 2, figsize=(13, 3.2 + 2.6 * len(benches)), squeeze=False)
    for row, bench in zip(axes, benches):
        for ax, values, title, unit in (
                (row[0], [(p.name, p.one * 1e9) for p in bench.paths if p.one], "1 sample (ns, lower is better)", "ns"),
                (row[1], [(p.name, p.rates[most]) for p in bench.paths if most in p.rates],
                 f"{most:,} rows (samples/s, higher is better)", "/s")):
            names = [name for name, _ in values]
            colours = ["#d62728" if bench.get(n).kind == "peer" else "#7f7f7f" if bench.get(n).kind == "floor"
                       else "#1f77b4" for n in names]
            ax.barh(range(len(values)), [v for _, v in values], color=colours)
            ax.set_yticks(range(len(values)), names, fontsize=7)
            ax.invert_yaxis()
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # minor labels overlap
            ax.set_title(f"{bench.label}: {title}", fontsize=9)
    fig.tight_layout()
    temp = png.with_name(png.name + ".tmp.png")
    fig.savefig(temp, dpi=90)
    plt.close(fig)
    temp.replace(png)
