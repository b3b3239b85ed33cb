"""The ``phisnet`` command: the package's own errors end in one line and exit code 2; any
other exception is a bug and keeps its traceback."""

import pytest

from ase_phisnet.cli import main as cli_main
from ase_phisnet.errors import InputError, PhiSNetError

pytestmark = pytest.mark.fast


def test_a_package_error_is_one_line_with_exit_code_2(capsys):
    assert cli_main.main(["md", "no-such-molecule", "-o", "unused"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("phisnet md: error: unknown molecule 'no-such-molecule'") and err.count("\n") == 1


def test_other_exceptions_keep_their_traceback(monkeypatch):
    def broken(args):
        raise ValueError("a bug, not bad input")

    import ase_phisnet.cli.evaluate as evaluate

    monkeypatch.setattr(evaluate, "run", broken)
    with pytest.raises(ValueError, match="a bug"):
        cli_main.main(["evaluate", "water-pbe-def2svp", "data.h5"])


def test_input_errors_are_also_ase_input_errors_and_value_errors():
    from ase.calculators.calculator import InputError as AseInputError

    assert issubclass(InputError, PhiSNetError) and issubclass(InputError, AseInputError) and issubclass(InputError, ValueError)


@pytest.mark.parametrize("command", ["md", "optimize", "vibrations"])
def test_without_model_the_shipped_one_for_the_molecule_is_chosen_or_the_shipped_ones_named(command, capsys, tmp_path):
    from ase_phisnet.model.io import shipped_model_for

    assert shipped_model_for([1, 8, 1]) == "water-pbe-def2svp"  # not the CCSD(T) model, also trained on H2O
    with pytest.raises(InputError, match="no shipped model was trained on H4O2"):
        shipped_model_for([8, 1, 1, 8, 1, 1])  # a water dimer: H and O, but no model has seen one
    assert cli_main.main([command, "ethanol", "-o", str(tmp_path / command)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"phisnet {command}: error: no shipped model was trained on C2H6O;") and "water-pbe-def2svp (H2O)" in err
    assert not (tmp_path / command).exists()  # refused before anything was written
