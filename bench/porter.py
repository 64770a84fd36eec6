#!/usr/bin/env python3
"""Our Java and JavaScript predictors against sklearn-porter's, on the same scikit-learn MLPs
(issue 24: "ours >= 2x faster in each language, and its error against scikit-learn next to ours").

    python bench/porter.py [--rounds 5] [--out bench/PORTER.md]

sklearn-porter 0.7.4, the latest on PyPI, is installed into the cache (``pip install --no-deps
--target``) when it is not importable.  It does not import on Python 3.11 with today's
scikit-learn as it is, for two reasons outside its own logic, which a child process mends
before importing it (none of its files is changed): six scikit-learn module paths it imports
were removed in scikit-learn 0.24 (aliased to their packages), and its ``__init__.py`` calls
``json.load(f, encoding='utf-8')``, a keyword Python 3.9 removed (``json.load`` is wrapped to
drop it; it was ignored since Python 3.1).  Then it exports MLPClassifier to Java and to
JavaScript and MLPRegressor to JavaScript only: 0.7.4 has no MLP template for Go (nor
MLPRegressor for Java), so those cells say so.

Each program times one-sample calls itself, as bench/languages.py's drivers do: the same
1000 input rows in turn, after a warm-up, in the thread's (Java) or the process's (Node) CPU
time; rounds interleaved (ours, then sklearn-porter's, per language), medians reported.
sklearn-porter's code computes in double with ``Math.exp``/``Math.tanh`` and returns a class
index (classifier) or the value (regressor); ours is the float64 target (its own exp/tanh,
the bits of the C target), returning every output (class probabilities).  Errors are against
scikit-learn on 2000 rows: for classes the share of rows whose predicted class differs, for
values (our probabilities, the regressor's output) the largest absolute difference.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(REPO)]

import numpy as np  # noqa: E402

from mlpcodegen.core.numeric import numeric_type  # noqa: E402
from mlpcodegen.frontends.sklearn import load_object  # noqa: E402
from mlpcodegen.runtime import subprocess_peer as sp  # noqa: E402
from mlpcodegen.runtime.cache import cache_dir  # noqa: E402

PORTER = "sklearn-porter==0.7.4"
#: What sklearn-porter needs before it imports (run in its child, see the docstring).
_MENDS = r"""
import json, sys
import sklearn.tree, sklearn.ensemble, sklearn.svm, sklearn.neighbors, sklearn.neural_network
for old, new in {"sklearn.tree.tree": sklearn.tree, "sklearn.ensemble.weight_boosting": sklearn.ensemble,
                 "sklearn.ensemble.forest": sklearn.ensemble, "sklearn.svm.classes": sklearn.svm,
                 "sklearn.neighbors.classification": sklearn.neighbors,
                 "sklearn.neural_network.multilayer_perceptron": sklearn.neural_network}.items():
    sys.modules[old] = new
_load = json.load
def _load_without_encoding(fp, *args, encoding=None, **kwargs):
    return _load(fp, *args, **kwargs)
json.load = _load_without_encoding
"""
#: The child: mends, then exports the estimator this process trained and pickled to it.
_EXPORT = _MENDS + r"""
import pickle
from sklearn_porter import Porter
estimator = pickle.load(sys.stdin.buffer)
try:
    print(json.dumps({"source": Porter(estimator, language=sys.argv[1]).export(embed_data=True)}))
except Exception as error:  # its own refusal (no template for this language)
    print(json.dumps({"refused": f"{type(error).__name__}: {error}"}))
"""

#: label -> (estimator class, hidden layers, activation, classes or None, features, seed)
MODELS = {
    "classifier 16-64-64-3 relu": ("MLPClassifier", (64, 64), "relu", 3, 16, 1),
    "classifier 8-32-32-2 tanh": ("MLPClassifier", (32, 32), "tanh", 2, 8, 2),
    "regressor 8-64-64-1 relu": ("MLPRegressor", (64, 64), "relu", None, 8, 3),
}
LANGUAGES = ("java", "js", "go")
GOAL = 2.0


def porter_path() -> Path:
    """A folder holding sklearn-porter (installed there once, without its dependencies)."""
    target = cache_dir() / "bench" / "sklearn-porter-0.7.4"
    if not (target / "sklearn_porter").is_dir():
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), PORTER],
                       check=True)
    return target


def train(kind: str, hidden, activation: str, classes, features: int, seed: int):
    """A small scikit-learn MLP trained on a fixed synthetic problem."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(2000, features))
    mix = rng.normal(size=(features, 3))
    z = np.tanh(x @ mix)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if kind == "MLPClassifier":
            y = np.digitize(z[:, 0] + 0.5 * z[:, 1], np.quantile(z[:, 0] + 0.5 * z[:, 1],
                                                                np.linspace(0, 1, classes + 1)[1:-1]))
            return MLPClassifier(hidden_layer_sizes=hidden, activation=activation, max_iter=300,
                                 random_state=seed).fit(x, y), x
        return MLPRegressor(hidden_layer_sizes=hidden, activation=activation, max_iter=300,
                            random_state=seed).fit(x, z[:, 0] + z[:, 1] * z[:, 2]), x


def export(estimator, language: str) -> dict:
    """sklearn-porter's source for ``language`` ({"source": ...}) or its refusal ({"refused": ...})."""
    import pickle

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(porter_path()), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-W", "ignore", "-c", _EXPORT, language], input=pickle.dumps(estimator),
                          capture_output=True, env=env, check=True)
    return json.loads(done.stdout)


def _weights_file(estimator, folder: Path) -> None:
    """The estimator's layers as doubles (little-endian), read by the drivers: sizes first."""
    sizes = [estimator.coefs_[0].shape[0]] + [c.shape[1] for c in estimator.coefs_]
    parts = [np.array([len(sizes), *sizes], "<f8")]
    parts += [np.ascontiguousarray(c, "<f8").ravel() for c in estimator.coefs_]
    parts += [np.ascontiguousarray(b, "<f8").ravel() for b in estimator.intercepts_]
    (folder / "weights.bin").write_bytes(b"".join(p.tobytes() for p in parts))


_JAVA_DRIVER = r"""
import java.io.DataInputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;

public final class PorterDriver {
    public static void main(String[] args) throws Exception {
        final ByteBuffer w = ByteBuffer.wrap(Files.readAllBytes(Paths.get("weights.bin"))).order(ByteOrder.LITTLE_ENDIAN);
        final int count = (int) w.getDouble();
        final int[] sizes = new int[count];
        for (int i = 0; i < count; i++) sizes[i] = (int) w.getDouble();
        final double[][][] weights = new double[count - 1][][];
        for (int l = 0; l < count - 1; l++) {
            weights[l] = new double[sizes[l]][sizes[l + 1]];
            for (int i = 0; i < sizes[l]; i++) for (int j = 0; j < sizes[l + 1]; j++) weights[l][i][j] = w.getDouble();
        }
        final double[][] bias = new double[count - 1][];
        for (int l = 0; l < count - 1; l++) {
            bias[l] = new double[sizes[l + 1]];
            for (int j = 0; j < sizes[l + 1]; j++) bias[l][j] = w.getDouble();
        }
        final int[] layers = new int[count - 1];
        System.arraycopy(sizes, 1, layers, 0, count - 1);
        final MLPClassifier clf = new MLPClassifier(args[0], args[1], layers, weights, bias);
        final ByteBuffer in = ByteBuffer.wrap(System.in.readAllBytes()).order(ByteOrder.LITTLE_ENDIAN);
        final int n = in.remaining() / 8 / sizes[0];
        final double[][] rows = new double[n][sizes[0]];
        for (int i = 0; i < n; i++) for (int k = 0; k < sizes[0]; k++) rows[i][k] = in.getDouble();
        if (args[2].equals("time")) {
            final ThreadMXBean cpu = ManagementFactory.getThreadMXBean();
            final long calls = Long.parseLong(args[3]);
            long sink = 0;
            double ns = 0.0;
            for (int round = 0; round < 6; round++) {  // as bench/languages.py's Java driver: the last round timed
                final long t0 = cpu.getCurrentThreadCpuTime();
                for (long i = 0; i < calls; i++) sink += clf.predict(rows[(int) (i % n)]);
                ns = (cpu.getCurrentThreadCpuTime() - t0) / (double) calls;
            }
            System.out.println(ns + " " + sink);
            return;
        }
        final StringBuilder out = new StringBuilder();
        for (int i = 0; i < n; i++) out.append(clf.predict(rows[i])).append('\n');
        System.out.print(out);
    }
}
"""

_JS_DRIVER = r"""
const { readFileSync } = require("node:fs");
const Model = require("./porter.cjs");
const w = readFileSync("weights.bin");
const values = new Float64Array(w.buffer.slice(w.byteOffset, w.byteOffset + w.length));
let at = 0;
const count = values[at++], sizes = [];
for (let i = 0; i < count; i++) sizes.push(values[at++]);
const weights = [], bias = [];
for (let l = 0; l < count - 1; l++) {
    const layer = [];
    for (let i = 0; i < sizes[l]; i++) { const row = []; for (let j = 0; j < sizes[l + 1]; j++) row.push(values[at++]); layer.push(row); }
    weights.push(layer);
}
for (let l = 0; l < count - 1; l++) { const b = []; for (let j = 0; j < sizes[l + 1]; j++) b.push(values[at++]); bias.push(b); }
const layers = sizes.slice(1);
const model = process.argv[3] === "-" ? new Model(process.argv[2], layers, weights, bias)
                                      : new Model(process.argv[2], process.argv[3], layers, weights, bias);
const raw = readFileSync(0);
const x = new Float64Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length));
const nIn = sizes[0], n = x.length / nIn, rows = [];
for (let i = 0; i < n; i++) rows.push(Array.from(x.subarray(i * nIn, (i + 1) * nIn)));
const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) * 1000; };
if (process.argv[4] === "time") {
    const calls = Number(process.argv[5]);
    function ones(count) { let s = 0; for (let i = 0; i < count; i++) s += model.predict(rows[i % n]); return s; }
    let sink = 0;
    for (let r = 0; r < 3; r++) sink += ones(calls);  // as bench/languages.py's JS driver
    const t0 = cpu();
    sink += ones(calls);
    process.stdout.write(`${(cpu() - t0) / calls} ${sink}\n`);
} else {
    process.stdout.write(rows.map((row) => String(model.predict(row))).join("\n") + "\n");
}
"""


class PorterProgram:
    """sklearn-porter's exported code for one estimator and language, with a driver."""

    def __init__(self, estimator, language: str, source: str, folder: Path) -> None:
        self.language, self.folder = language, folder
        folder.mkdir(parents=True, exist_ok=True)
        _weights_file(estimator, folder)
        out = estimator.out_activation_
        if language == "java":
            (folder / "MLPClassifier.java").write_text(source)
            (folder / "PorterDriver.java").write_text(_JAVA_DRIVER)
            subprocess.run(["javac", "-nowarn", "-d", ".", "MLPClassifier.java", "PorterDriver.java"], cwd=folder,
                           check=True, capture_output=True)
            self.command = ["java", "-cp", ".", "PorterDriver", estimator.activation, out]
        else:
            name = "MLPClassifier" if hasattr(estimator, "classes_") else "MLPRegressor"
            # its file defines the class as a script; one appended line makes it a CommonJS module
            (folder / "porter.cjs").write_text(source + f"\nmodule.exports = {name};\n")
            (folder / "driver.cjs").write_text(_JS_DRIVER)
            self.command = ["node", "driver.cjs", estimator.activation, out if name == "MLPClassifier" else "-"]

    def _run(self, arguments: list[str], x: np.ndarray) -> str:
        done = subprocess.run(self.command + arguments, input=np.ascontiguousarray(x, "<f8").tobytes(),
                              capture_output=True, cwd=self.folder, check=True, timeout=600)
        return done.stdout.decode()

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.array([float(v) for v in self._run(["predict"], x).split()])

    def time(self, x: np.ndarray, calls: int) -> float:
        return float(self._run(["time", str(calls)], x).split()[0])


def errors(estimator, ours: np.ndarray, porter: "np.ndarray | None", x: np.ndarray) -> dict:
    """Each side's error against scikit-learn (see the docstring)."""
    if hasattr(estimator, "classes_"):
        proba, classes = estimator.predict_proba(x), estimator.predict(x)
        expected = proba[:, 1:] if ours.shape[1] == 1 else proba
        ours_class = (ours[:, 0] > 0.5).astype(int) if ours.shape[1] == 1 else ours.argmax(axis=1)
        out = {"ours_values": float(np.max(np.abs(ours - expected))),
               "ours_classes": float(np.mean(estimator.classes_[ours_class] != classes))}
        if porter is not None:
            out["porter_classes"] = float(np.mean(estimator.classes_[porter.astype(int)] != classes))
        return out
    expected = estimator.predict(x)
    out = {"ours_values": float(np.max(np.abs(ours[:, 0] - expected)))}
    if porter is not None:
        out["porter_values"] = float(np.max(np.abs(porter - expected)))
    return out


def bench_model(label: str, spec, rounds: int, calls: int) -> list[dict]:
    kind, hidden, activation, classes, features, seed = spec
    estimator, train_x = train(kind, hidden, activation, classes, features, seed)
    net = load_object(estimator)
    x = np.random.default_rng(seed + 100).normal(size=(2000, features))
    timed_x = x[:1000]
    numeric = numeric_type("float64")
    results = []
    for language in LANGUAGES:
        row = {"model": label, "language": language, "kind": kind}
        exported = export(estimator, language)
        ours = sp.build(net, language, sp.TOOLCHAINS[language], numeric, "mlp")
        porter = None
        if "source" in exported:
            folder = cache_dir() / "bench" / "porter" / f"{label.split()[0]}-{seed}-{language}-{os.getpid()}"
            porter = PorterProgram(estimator, language, exported["source"], folder)
        else:
            row["refused"] = exported["refused"]
        row.update(errors(estimator, ours.predict(x, "one"), porter.predict(x) if porter else None, x))
        times = {"ours": [], "porter": []}
        for _ in range(rounds):  # interleaved: a burst of load falls on both
            times["ours"].append(ours.time(timed_x, calls, 1)[0])
            if porter:
                times["porter"].append(porter.time(timed_x, calls))
        row["ours_ns"] = statistics.median(times["ours"])
        if porter:
            row["porter_ns"] = statistics.median(times["porter"])
            row["ratio"] = row["porter_ns"] / row["ours_ns"]
        results.append(row)
        print(json.dumps(row), flush=True)
    return results


def _error_text(row: dict, side: str) -> str:
    parts = []
    if f"{side}_classes" in row:
        parts.append(f"classes differ on {row[side + '_classes'] * 100:.2f}% of rows")
    if f"{side}_values" in row:
        parts.append(f"max |Δ| {row[side + '_values']:.1e}")
    return "; ".join(parts) or "-"


def table(results: list[dict]) -> list[str]:
    lines = ["| model | language | ours: ns per call | sklearn-porter: ns per call | porter ÷ ours | target | "
             "ours against scikit-learn | sklearn-porter against scikit-learn |", "|" + "---|" * 8]
    for r in results:
        if "ratio" in r:
            goal = f"≥ {GOAL:.0f}: {'met' if r['ratio'] >= GOAL else '**not met**'}"
            porter, ratio = f"{r['porter_ns']:.0f}", f"{r['ratio']:.1f}"
        else:
            goal, porter, ratio = "no comparison", f"none: no {r['language']} template for {r['kind']}", "-"
        lines.append(f"| {r['model']} | {r['language']} | {r['ours_ns']:.0f} | {porter} | {ratio} | {goal} | "
                     f"{_error_text(r, 'ours')} | {_error_text(r, 'porter')} |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=100_000, help="one-sample calls per timing")
    parser.add_argument("--out", type=Path, default=HERE / "PORTER.md")
    args = parser.parse_args()
    missing = [tool for tool in ("javac", "node", "go") if shutil.which(tool) is None]
    if missing:
        print(f"porter.py: needs {', '.join(missing)} on PATH (Debian: see tests/toolchains.py)", file=sys.stderr)
        return 1
    import sklearn

    started = time.time()
    results = [row for label, spec in MODELS.items() for row in bench_model(label, spec, args.rounds, args.calls)]
    command = "python bench/porter.py " + " ".join(sys.argv[1:])
    text = ["# Our Java and JavaScript against sklearn-porter (issue 24)", "",
            f"`{command.strip()}` — {args.rounds} interleaved rounds of {args.calls:,} one-sample calls, "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {time.time() - started:.0f} s, load average "
            f"{os.getloadavg()[0]:.1f} after; scikit-learn {sklearn.__version__}, {PORTER}.", "",
            __doc__.split("\n\n", 2)[2].strip(), "", *table(results), ""]
    args.out.write_text("\n".join(text), encoding="utf-8")
    print("\n".join(text))
    return 0


if __name__ == "__main__":
    sys.exit(main())
