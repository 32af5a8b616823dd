"""codesign.cli: every listed subcommand has its module."""

import importlib

import pytest

from codesign import cli


@pytest.mark.parametrize("name", cli.COMMANDS)
def test_every_listed_command_imports(name):
    mod = importlib.import_module(f"codesign.commands.{name}")
    assert mod.NAME == name
    assert mod.HELP
    assert callable(mod.add_arguments) and callable(mod.run)


def test_a_listed_command_without_a_module_is_an_error(monkeypatch):
    monkeypatch.setattr(cli, "COMMANDS", (*cli.COMMANDS, "nosuchcommand"))
    with pytest.raises(ImportError, match="'nosuchcommand' is listed .* does not exist"):
        cli.build_parser()


def test_parser_offers_exactly_the_listed_commands(capsys):
    parser = cli.build_parser()
    for name in cli.COMMANDS:
        with pytest.raises(SystemExit) as exc:
            parser.parse_args([name, "--help"])
        assert exc.value.code == 0
    capsys.readouterr()
    # the flow writes report.md; there is no such command: one line, exit code 2
    assert cli.main(["report"]) == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'report'" in err and len(err.strip().splitlines()) == 1


def test_cache_that_is_a_file_is_one_line_before_training(tmp_path, monkeypatch, capsys):
    f = tmp_path / "cachefile"
    f.write_text("")
    monkeypatch.setenv("CODESIGN_CACHE", str(f))
    out = tmp_path / "o"
    assert cli.main(["dse", "--model", "digits", "--device", "XC7Z020", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"error: the model cache {f} (CODESIGN_CACHE) is not a directory; point "
                   "CODESIGN_CACHE at a directory or unset it")
    assert not out.exists()


def test_cache_slot_holding_another_network_is_refused(tmp_path, monkeypatch):
    """A checkpoint copied into another network's cache slot is not explored under that name."""
    import shutil

    from models import zoo
    from models.checkpoint import checkpoint_path
    from models.zoo import ModelError

    monkeypatch.setenv("CODESIGN_CACHE", str(tmp_path / "cache"))
    b = zoo.load("digits", progress=False)
    slot = checkpoint_path("eventdigits")
    slot.parent.mkdir(parents=True)
    shutil.copy(b.checkpoint, slot)
    with pytest.raises(ModelError, match="holds a checkpoint of 'digits'; delete"):
        zoo.load("eventdigits", train_if_missing=False)


@pytest.mark.parametrize("argv", [["flow", "--util=--"], ["sim", "--build", "b", "--stall=--"],
                                  ["dse", "--model", "m", "--device", "X", "--out", "o",
                                   "--points=--"]])
def test_an_option_given_double_dash_as_its_value_fails_in_one_line(argv):
    """argparse drops a "--" value and hands the option an empty list; the CLI refuses it."""
    from codesign import cli
    from common.errors import CodesignError

    with pytest.raises(CodesignError, match=r"argument --[a-z-]+: expected one value") as exc:
        cli.build_parser().parse_args(argv)
    assert "\n" not in str(exc.value)


def test_sigterm_is_one_line_exit_143_and_the_handler_is_put_back(tmp_path):
    """A command stopped with SIGTERM unwinds like Ctrl-C (its `finally` blocks run: a tool's
    process is killed, locks released) and says so in one line; main() puts the previous
    handler back."""
    import signal
    import subprocess
    import sys

    code = (
        "import os, signal, sys, time\n"
        "from codesign import cli\n"
        "def run(args):\n"
        "    try:\n"
        "        os.kill(os.getpid(), signal.SIGTERM)\n"
        "        time.sleep(30)\n"
        "    finally:\n"
        "        print('unwound', flush=True)\n"
        "cli.run_command = run\n"
        "code = cli.main(['dse', '--model', 'digits', '--device', 'XC7Z020', '--out', "
        f"{str(tmp_path / 'o')!r}])\n"
        "assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL\n"
        "sys.exit(code)\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.returncode == 143, p.stderr
    assert p.stdout.strip() == "unwound"
    assert p.stderr.strip() == "error: terminated (SIGTERM)"
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # pytest's own is untouched
