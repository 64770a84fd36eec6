"""tests/toolchains.py, the tests' one helper for Debian tools: installed once per session
with apt-get (a stand-in apt-get on PATH here, so the machine is not touched), else one
skip line naming the packages, a failure under CI=true; the table .ci/run installs from."""
from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

import toolchains
from conftest import REPO
from toolchains import Tool

FAKE_APT = """#!/bin/sh
echo "$DEBIAN_FRONTEND $*" >> "{log}"
for word in "$@"; do
    if [ "$word" = mlpc-pkg-a ]; then
        printf '#!/bin/sh\\n' > "{bin}/mlpc-fake-tool"; chmod +x "{bin}/mlpc-fake-tool"
    fi
done
"""


@pytest.fixture
def fake_machine(tmp_path, monkeypatch):
    """A root machine whose apt-get is a script that logs its calls and whose package
    mlpc-pkg-a brings the command mlpc-fake-tool; the helper's session state reset."""
    bin_dir, log = tmp_path / "bin", tmp_path / "apt.log"
    bin_dir.mkdir()
    apt = bin_dir / "apt-get"
    apt.write_text(FAKE_APT.format(log=log, bin=bin_dir))
    apt.chmod(apt.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.delenv(toolchains.NO_APT, raising=False)
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setattr(toolchains, "LOCK_FILE", tmp_path / "apt.lock")
    monkeypatch.setattr(toolchains, "_tried", {})
    monkeypatch.setattr(toolchains, "_updated", [])
    monkeypatch.setitem(toolchains.TOOLS, "mlpc-fake-tool", Tool("mlpc-fake-tool", ("mlpc-pkg-a",)))
    monkeypatch.setitem(toolchains.TOOLS, "mlpc-absent-tool", Tool("mlpc-absent-tool", ("mlpc-pkg-b", "mlpc-pkg-c")))
    return log


def test_a_missing_tool_is_installed_once_with_apt(fake_machine):
    said = []
    toolchains.require("mlpc-fake-tool", say=said.append)
    toolchains.require("mlpc-fake-tool", say=said.append)
    calls = fake_machine.read_text().splitlines()
    assert calls == ["noninteractive -q -o DPkg::Lock::Timeout=600 update",
                     "noninteractive -q -o DPkg::Lock::Timeout=600 install -y --no-install-recommends mlpc-pkg-a"]
    assert said == ["mlpcodegen tests: installing mlpc-pkg-a (apt-get, for mlpc-fake-tool)"]


def test_a_tool_apt_cannot_bring_skips_with_one_line_then_fails_under_ci(fake_machine, monkeypatch):
    for _ in range(2):  # tried once: the second test asking skips without apt-get
        with pytest.raises(pytest.skip.Exception) as skipped:
            toolchains.require("mlpc-absent-tool")
    assert str(skipped.value) == ("needs mlpc-absent-tool: apt-get install mlpc-pkg-b mlpc-pkg-c (not installed by "
                                  "the tests: the packages did not bring it)")
    assert str(skipped.value) in toolchains.ONE_LINE_SKIPS  # conftest reports it at one place
    assert len(fake_machine.read_text().splitlines()) == 2  # update, install: once
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="^CI=true: needs mlpc-absent-tool: apt-get install mlpc-pkg-b"):
        toolchains.require("mlpc-absent-tool")


@pytest.mark.parametrize("setting, reason", [("no apt", "MLPCODEGEN_NO_APT is set"), ("user", "not root")])
def test_without_apt_the_skip_names_the_packages_and_why(fake_machine, monkeypatch, setting, reason):
    if setting == "no apt":
        monkeypatch.setenv(toolchains.NO_APT, "1")
    else:
        monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(pytest.skip.Exception, match=f"apt-get install mlpc-pkg-a \\(not installed by the tests: "
                                                    f"{reason}\\)"):
        toolchains.require("mlpc-fake-tool")
    assert not fake_machine.exists()  # apt-get never ran


def test_the_table_and_the_ci_script_use_it():
    for name, tools in toolchains.GROUPS.items():
        assert tools and all(tool in toolchains.TOOLS for tool in tools), name
    assert all(tool.packages for tool in toolchains.TOOLS.values())
    printed = subprocess.run([sys.executable, str(REPO / "tests" / "toolchains.py"), "--packages", "arm"],
                             capture_output=True, text=True, check=True).stdout
    assert printed == "gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm\n"
    assert "python tests/toolchains.py --install c arm " in (REPO / ".ci" / "run").read_text()
    bad = subprocess.run([sys.executable, str(REPO / "tests" / "toolchains.py"), "--packages", "nothing"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown tool 'nothing'" in bad.stderr
