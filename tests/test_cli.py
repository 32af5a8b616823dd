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
