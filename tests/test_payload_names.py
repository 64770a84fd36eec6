"""Names from a model file are data (issue 9, S1): layer and model names made of code,
comment closers, NUL, CR/LF, preprocessor lines, backslashes, unicode and 10 kB of text
go through every target, the import or compile of its output and the ``formula``
command in every style, and never run, never break the output, never appear raw, and
change nothing but the quoted names."""
import io
import json
import zipfile
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO
from mlpcodegen import runtime
from mlpcodegen.backends import emit
from mlpcodegen.backends._text import quote_name
from mlpcodegen.app.cli import main
from mlpcodegen.frontends.keras import load
from mlpcodegen.core.ir import Activation, Dense, Network
from mlpcodegen.runtime.pymodule import import_generated

SEED = REPO / "generated" / "seed" / "seed.keras"
PLAIN = ["plain_model_name", "plain_input_name", "plain_layer_one", "plain_layer_two", "plain_layer_three"]


def payloads(canary: Path) -> list[str]:
    """Five names (model, input layer, three Dense layers) per set; every set creates
    ``canary`` if any of its text is executed as Python or a shell command."""
    touch = f'__import__("os").system("touch {canary}")'
    return [
        [f"x\nimport os; os.system(\"touch {canary}\")", f'"""\n{touch}\n"""', f"'''\n{touch}\n'''",
         f"*/\n{touch}\n/*", f"a\r\n{touch}  # \\"],
        [f"# \\\n{touch}", f"\x00\n{touch}", f"\r{touch}\r", f"#include \"{canary}\"\n#define y {touch}",
         f"\\immediate\\write18{{touch {canary}}}"],
        ["ünïcødé — 名字 \u2028" + touch, "\u2029\u0085" + touch, "x" * 10_000 + "\n" + touch,
         "{name}{0}%s$x$ \\\\" + touch, "`" + touch + "`;$(touch " + str(canary) + ")"],
    ]


def seed_with_names(tmp_path: Path, names: list[str], stem: str) -> Path:
    """generated/seed/seed.keras with its model and layer names replaced in config.json
    (weights are stored by position, so the archive stays valid)."""
    with zipfile.ZipFile(SEED) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(members["config.json"])
    config["config"]["name"] = names[0]
    for layer, name in zip(config["config"]["layers"], names[1:]):
        layer["config"]["name"] = name
    members["config.json"] = json.dumps(config).encode()
    path = tmp_path / f"{stem}.keras"
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def neutral(text: str, names: list[str]) -> str:
    """``text`` with each quoted name replaced by its position: what must not differ."""
    for i, name in sorted(enumerate(names), key=lambda pair: -len(quote_name(pair[1]))):
        text = text.replace(quote_name(name), f"<name {i}>")
    return text


def ir_names(net: Network) -> list[str]:
    """The names as the frontend kept them (it may make the model's name an identifier)."""
    return [net.name] + [layer.name for layer in net.layers]


def assert_inert(text: str, names: list[str], canary: Path) -> None:
    assert not canary.exists(), "a name was executed"
    for name in names:
        for line in name.splitlines() or [name]:
            if len(line) > 3 and line not in PLAIN:
                assert line not in text, f"raw name text {line[:60]!r} in the output"
    assert "\x00" not in text and "\r" not in text


@pytest.fixture(params=range(3), ids=["python-breakers", "c-and-latex-breakers", "unicode-and-long"])
def named(request, tmp_path):
    canary = tmp_path / "CANARY"
    names = payloads(canary)[request.param]
    return names, canary, seed_with_names(tmp_path, names, "payload"), seed_with_names(tmp_path, PLAIN, "plain")


@pytest.mark.parametrize("target,dtype", [("python", "float64"), ("numpy", "float32"), ("numba", "float64"),
                                          ("sympy", "float64"), ("c", "float32"), ("c", "float64")])
def test_payload_names_in_every_target_are_inert(named, target, dtype):
    names, canary, payload_file, plain_file = named
    net, plain = load(payload_file), load(plain_file)
    assert net.layers[0].name == names[2]  # the layer names reach the IR as they are
    text, plain_text = (emit(n, target, dtype=dtype, name="f") for n in (net, plain))
    assert_inert(text, names, canary)
    assert neutral(text, ir_names(net)) == neutral(plain_text, ir_names(plain))
    function = runtime.load(net, target, dtype=dtype, name="f")  # import / compile the output
    assert not canary.exists()
    x = np.linspace(-1, 1, 7)[:, None]
    np.testing.assert_array_equal(function(x), runtime.load(plain, target, dtype=dtype, name="f")(x))


def test_payload_names_in_latex_and_the_ir(named):
    names, canary, payload_file, plain_file = named
    net, plain = load(payload_file), load(plain_file)
    for options in ({"layout": "nested"}, {"layout": "named", "expand": True}):
        text = emit(net, "latex", **options)
        assert_inert(text, names, canary)
        assert neutral(text, ir_names(net)) == neutral(emit(plain, "latex", **options), ir_names(plain))
    # the IR built in memory, names straight from Python
    rng = np.random.default_rng(0)
    layers = tuple(Dense(rng.normal(size=(2, 2)), rng.normal(size=2), Activation(a), n)
                   for a, n in zip(("tanh", "softmax"), names[2:4]))
    for target in ("python", "numpy", "sympy", "latex", "c"):
        text = emit(Network(2, layers, name=names[0], notes=tuple(names)), target)
        assert_inert(text, names, canary)
        import_generated(text, "payload") if target in ("python", "numpy", "sympy") else None
        assert not canary.exists()


@pytest.mark.parametrize("style", ["--latex", "--numpy", "--python", "--sympy", "--png"])
def test_formula_command_with_payload_names(named, style, tmp_path):
    names, canary, payload_file, plain_file = named
    outputs = []
    for path in (payload_file, plain_file):
        these = ir_names(load(path))
        extra = [str(tmp_path / f"{path.stem}.png")] if style == "--png" else []
        stdout, stderr = io.StringIO(), io.StringIO()
        with redirect_stdout(stdout), redirect_stderr(stderr):
            code = main(["formula", str(path), style, *extra])
        assert code == 0, stderr.getvalue()
        assert not canary.exists()
        assert_inert(stdout.getvalue() + stderr.getvalue(), names, canary)
        outputs.append(neutral(stdout.getvalue(), these))
    assert outputs[0] == outputs[1]
    if style == "--png":
        assert (tmp_path / "payload.png").read_bytes() == (tmp_path / "plain.png").read_bytes()


def test_the_package_never_execs_or_evals_text():
    """Generated text is imported from its file (harness.pymodule) or compiled by gcc,
    never passed to exec/eval/compile; SymPy objects are built directly."""
    import re

    # the builtins, not a method of the same name (torch's module.eval() is a mode switch)
    pattern = re.compile(r"(?:(?<![.\w])|\bbuiltins\.)(?:(exec|eval)\(|compile\([^)]*[\"'](exec|eval)[\"'])")
    offenders = [f"{path.relative_to(REPO)}:{i}" for path in sorted((REPO / "mlpcodegen").rglob("*.py"))
                 for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
                 if pattern.search(line.split("#")[0])]
    assert offenders == []
