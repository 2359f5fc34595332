"""One options value: every CLI option reaches the API under its long name, and nothing else is listed twice."""

from __future__ import annotations

import argparse
import dataclasses
import inspect

import pytest

import vidkompy
from vidkompy._cli.main import build_parser, options_from, parse
from vidkompy.options import Options

# Command-line flags that are not run settings: what to print, where to put the output, how to run a batch.
NOT_OPTIONS = {"help", "version", "verbose", "json", "bg", "fg", "output", "folder", "output_dir", "deployment",
               "max_parallel", "action"}


def _dests(command: str) -> set[str]:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return {a.dest for a in sub.choices[command]._actions} - NOT_OPTIONS


@pytest.mark.parametrize("command", ["compose", "align", "batch"])
def test_every_cli_option_is_an_options_field(command):
    assert _dests(command) <= set(Options.names())


def test_the_options_are_exactly_compose_s_cli_options():
    assert _dests("compose") == set(Options.names())


@pytest.mark.parametrize("function", [vidkompy.compose, vidkompy.align, vidkompy.batch])
def test_the_api_takes_every_option_keyword_only_with_the_cli_s_default(function):
    params = inspect.signature(function).parameters
    args = parse(["compose", "bg.mp4", "fg.mp4"])
    for f in dataclasses.fields(Options):
        p = params[f.name]
        assert p.kind is inspect.Parameter.KEYWORD_ONLY
        assert p.default == f.default
        cli_default = getattr(args, f.name)
        assert Options(**{f.name: cli_default}) == Options(), f.name  # the CLI's default is the API's


def test_only_the_output_path_is_positional_after_the_inputs():
    params = list(inspect.signature(vidkompy.compose).parameters.values())
    positional = [p.name for p in params if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
    assert positional == ["bg", "fg", "output"]


def test_the_cli_builds_the_options_from_its_arguments():
    args = parse(["bg.mp4", "fg.mp4", "--border", "3", "--blend", "--no-gpu", "--cache-dir", "/c", "--codec",
                  "ffv1", "--segments", "4", "--dask", "tcp://h:8786", "--keyint", "50", "--audio", "none", "--force"])
    assert options_from(args) == Options(border=3, blend=True, gpu=False, cache_dir="/c", codec="ffv1", segments=4,
                                         dask="tcp://h:8786", keyint=50, audio="none", force=True)


def test_an_unknown_option_is_refused_by_name():
    with pytest.raises(TypeError, match="bordr"):
        Options.build(bordr=3)
    with pytest.raises(TypeError, match="bordr"):
        vidkompy.compose("bg.mp4", "fg.mp4", bordr=3)


def test_settings_apply_over_a_given_options_value():
    base = Options(codec="prores", blend=True)
    assert Options.build(base, border=2) == Options(codec="prores", blend=True, border=2)
    assert base.codec == "prores" and base.border == 8  # frozen: the base is unchanged


def test_paths_and_numbers_given_as_text_are_normalised():
    from pathlib import Path

    o = Options(cache_dir=Path("/tmp/c"), weights=Path("/w.pth"), segments="3")
    assert (o.cache_dir, o.weights, o.segments) == ("/tmp/c", "/w.pth", 3)
    assert Options(segments="auto").segments == "auto"


def test_no_subpackage_shadows_an_api_function():
    """A package `vidkompy/align/` made `vidkompy.align` a module once `vidkompy.align.dtw` was imported."""
    import importlib
    import pkgutil

    for m in pkgutil.walk_packages(vidkompy.__path__, "vidkompy."):
        if m.name != "vidkompy.__main__":
            importlib.import_module(m.name)
    assert all(inspect.isfunction(getattr(vidkompy, name)) for name in ("compose", "align", "batch"))
