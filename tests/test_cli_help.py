"""Every command-line tool answers --help and --version without importing torch, h5py or numpy, and its help
shows each default once."""

from __future__ import annotations

import argparse
import importlib
import json
import re
import subprocess
import sys
from importlib.metadata import distribution, version

import pytest

import avzsl
from avzsl.pipeline.cli import extract as cli_extract
from avzsl.pipeline.cli import report as cli_report
from avzsl.pipeline.cli import train as cli_train

# Every console script of the installed distribution, by the module its entry point names (cli.extract, ...).
CLI_MODULES = sorted(ep.value.split(":")[0].removeprefix("avzsl.pipeline.")
                     for ep in distribution("avzsl").entry_points if ep.group == "console_scripts")
HEAVY = ("torch", "h5py", "numpy", "gensim", "av", "matplotlib")

_PROBE = """
import contextlib, io, json, sys
results = {}
for name in sys.argv[1:]:
    module = __import__(f"avzsl.pipeline.{name}", fromlist=["main"])
    out = io.StringIO()
    for flag in ("--help", "--version"):
        with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
            module.main([flag])
    results[name] = {"heavy": [m for m in HEAVY if m in sys.modules], "out": out.getvalue()}
print(json.dumps(results))
"""


def test_help_and_version_import_no_heavy_module() -> None:
    assert len(CLI_MODULES) >= 10, CLI_MODULES  # extract, train, evaluate, predict, report, sweep, ... splits
    code = f"HEAVY = {HEAVY!r}\n{_PROBE}"
    # One fresh interpreter; modules are probed in order, so the first one that imports a heavy module is named.
    done = subprocess.run([sys.executable, "-c", code, *CLI_MODULES], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout)
    expected = version("avzsl")
    for name in CLI_MODULES:
        assert results[name]["heavy"] == [], f"{name} --help imported {results[name]['heavy']}"
        assert "usage:" in results[name]["out"], name
        assert f" {expected}\n" in results[name]["out"], f"{name} --version: {results[name]['out'][-200:]}"


def test_package_version() -> None:
    assert avzsl.__version__ == version("avzsl")


@pytest.mark.parametrize("module", [cli_extract, cli_report, cli_train])
def test_help_shows_each_default_once(module) -> None:
    text = module.build_parser().format_help()
    assert "(default: None)" not in text
    assert "(default: False)" not in text
    flat = " ".join(text.split())
    assert "(default: bundled GloVe 6B 50-d) (default" not in flat
    assert "(default: RUN/report) (default" not in flat


def _all_parsers() -> list[tuple[str, argparse.ArgumentParser]]:
    """(name, parser) of every CLI and of every subcommand (avzsl-import avca, avzsl-export avca)."""
    found = []
    for name in CLI_MODULES:
        parser = importlib.import_module(f"avzsl.pipeline.{name}").build_parser()
        found.append((name, parser))
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                found += [(f"{name} {sub}", p) for sub, p in action.choices.items()]
    return found


def test_every_cli_help_shows_defaults_once_and_required_options_as_required() -> None:
    parsers = _all_parsers()
    assert len(parsers) >= len(CLI_MODULES) + 2, [n for n, _ in parsers]
    for name, parser in parsers:
        text = parser.format_help()
        for empty in ("(default: None)", "(default: False)", "(default: [])"):
            assert empty not in text, f"{name}: {empty}"
        usage = " ".join(parser.format_usage().split())
        for action in parser._actions:
            if action.help in (None, argparse.SUPPRESS):
                continue
            # One option's help as argparse renders it: "(default" at most once.
            rendered = parser.formatter_class(parser.prog)._expand_help(action)
            assert rendered.count("(default") <= 1, f"{name} {action.option_strings}: {rendered}"
            assert not re.search(r"\(default: \[", rendered), f"{name} {action.option_strings}: {rendered}"
            if action.required and action.option_strings:
                flag = action.option_strings[0]
                assert re.search(rf"(^| ){flag} ", usage), f"{name}: {flag} not in {usage}"
                assert not re.search(rf"\[{flag}[ \]]", usage), f"{name}: {flag} shown as optional in {usage}"


def test_train_help_lists_methods_without_other_options(capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        cli_train.main(["--list-methods"])
    assert exited.value.code == 0
    assert "coordinate_generalize" in capsys.readouterr().out


def test_required_options_shown_as_required_in_usage() -> None:
    usage = " ".join(cli_extract.build_parser().format_usage().split())
    assert "--videos VIDEOS --out OUT" in usage and "[--videos" not in usage and "[--out" not in usage
    usage = " ".join(cli_train.build_parser().format_usage().split())
    assert "--cache CACHE --out OUT" in usage and "[--cache" not in usage and "[--out" not in usage
    assert "(--splits SPLITS | --benchmark" in usage


def test_list_encoders_needs_no_other_option(capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        cli_extract.main(["--list-encoders"])
    assert exited.value.code == 0
    assert "selavi_vggsound" in capsys.readouterr().out
