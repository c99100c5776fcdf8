"""The ``nmt`` command: every program under one name, each telling its usage by the name typed."""

import gc
import importlib
import os
import subprocess
import sys

import pytest
from tiny_checkpoints import ROOT

from nmt.__main__ import COMMANDS, main, program
from nmt.commands.cli import Exit


def test_every_command_is_a_module_with_a_main():
    for command in COMMANDS:
        assert callable(importlib.import_module(f"nmt.commands.{command}").main)


def test_the_program_imports_its_command_with_the_collector_paused_then_freezes_what_it_made(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["nmt", "translate", "--beam"])
    try:
        with pytest.raises(SystemExit) as exited:
            program()
        assert exited.value.code == 2  # the command's own argument error: it ran
        assert gc.isenabled()
        assert gc.get_freeze_count() > 0  # what the import made is out of later collections
    finally:
        gc.unfreeze()


def test_main_called_in_process_freezes_nothing_of_its_callers():
    with pytest.raises(SystemExit):
        main(["translate", "--beam"], prog="nmt")
    assert gc.isenabled() and gc.get_freeze_count() == 0


def test_help_lists_every_command_with_what_it_does(capsys):
    assert main(["--help"], prog="nmt") == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: nmt COMMAND")
    for command, what in COMMANDS.items():
        assert f"  {command} " in out and what in out


def test_no_command_prints_the_usage_and_exits_2(capsys):
    assert main([], prog="nmt") == 2
    assert "commands:" in capsys.readouterr().err


def test_an_unknown_command_is_one_line_naming_the_commands(capsys):
    assert main(["tranlsate"], prog="nmt") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown command 'tranlsate'" in err and "translate" in err


@pytest.mark.parametrize("typed", [["nmt"], [sys.executable, "-m", "nmt"]], ids=["console script", "python -m nmt"])
def test_a_commands_usage_names_it_as_typed(typed):
    result = subprocess.run([*typed, "translate", "--help"], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stderr
    name = "nmt" if typed == ["nmt"] else "python -m nmt"
    assert result.stdout.startswith(f"usage: {name} translate ")


def test_a_commands_errors_name_it_as_typed(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["translate", "--beam"], prog="nmt")
    assert exited.value.code == 2
    assert capsys.readouterr().err.startswith("nmt translate: error: ")


def run_in_a_process(code: str, **kwargs) -> subprocess.CompletedProcess:
    """A Python process that runs ``code`` and then ``nmt.__main__.run()``, its output buffered as
    in a user's shell (PYTHONUNBUFFERED, which some CI machines set, would write it at once)."""
    script = f"import atexit, sys\nimport nmt.__main__ as entry\n{code}\nentry.run()\n"
    env = {name: value for name, value in os.environ.items() if name != "PYTHONUNBUFFERED"}
    return subprocess.run([sys.executable, "-c", script], text=True, cwd=ROOT, env=env, timeout=60, **kwargs)


def test_a_process_ends_with_its_commands_status_after_the_exit_handlers_ran():
    result = run_in_a_process(
        "atexit.register(print, 'the handler ran')\nsys.argv = ['nmt', 'translate', '--beam']", capture_output=True
    )
    assert result.returncode == 2
    assert result.stdout == "the handler ran\n"
    assert "translate: error: " in result.stderr


def test_a_process_whose_command_exits_with_a_message_prints_it_and_ends_with_status_1():
    result = run_in_a_process("entry.program = lambda command=None: sys.exit('no such file: x')", capture_output=True)
    assert (result.returncode, result.stderr) == (1, "no such file: x\n")


def test_a_process_prints_what_its_command_left_in_the_buffer_before_it_ends():
    result = run_in_a_process(
        "entry.program = lambda command=None: print('the last line', end='') or 0", capture_output=True
    )
    assert (result.returncode, result.stdout) == (0, "the last line")


def test_a_process_whose_reader_is_gone_before_the_last_flush_ends_quietly_with_its_status():
    read, write = os.pipe()
    os.close(read)  # the reader has gone, as after `nmt translate ... | head -1`
    try:
        result = run_in_a_process(
            "entry.program = lambda command=None: print('unread') or 0", stdout=write, stderr=subprocess.PIPE
        )
    finally:
        os.close(write)
    assert (result.returncode, result.stderr) == (Exit.READER_GONE, "")


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="/dev/full, a device that is always full, is Linux's")
def test_a_process_that_cannot_write_what_its_command_left_in_the_buffer_says_so_in_one_line():
    with open("/dev/full", "w") as full:
        result = run_in_a_process(
            "entry.program = lambda command=None: print('unwritten') or 0", stdout=full, stderr=subprocess.PIPE
        )
    assert result.returncode == Exit.ERROR
    assert result.stderr == "error: standard output: cannot write (No space left on device)\n"
