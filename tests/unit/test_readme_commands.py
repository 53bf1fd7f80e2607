"""The README and its table of checked commands (tests/readme_commands.py)
stay equal: a README command without a check, or a check of a command the
README no longer shows, fails here, in the unit tier, in seconds."""
import ast
import os

from tests import readme_commands as R

INTEGRATION = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           "integration", "test_readme.py")


def _tests_defined() -> set[str]:
    with open(INTEGRATION, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    return {n.name for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")}


def test_every_readme_command_has_a_check_and_every_check_a_command():
    shown = R.shell_commands()
    assert set(shown) - set(R.COMMANDS) == set(), "README commands nobody checks"
    assert set(R.COMMANDS) - set(shown) == set(), "checked commands the README no longer shows"


def test_each_run_entry_names_a_test_that_exists():
    defined = _tests_defined()
    for cmd, (how, what) in R.COMMANDS.items():
        assert how in ("run", "elsewhere"), cmd
        if how == "run":
            assert what in defined, f"{cmd!r}: no {what} in tests/integration/test_readme.py"
        else:
            assert len(what) > 20, f"{cmd!r}: say what covers it instead"


def test_the_readme_has_its_python_snippet_and_two_command_quick_start():
    assert len(R.python_blocks()) == 1
    quick = R.shell_blocks()[0]
    assert quick == ["sudo ./run.sh", "sudo ./test.sh"]


def test_extraction_strips_comments_and_blank_lines():
    text = "x\n```sh\n# only a comment\nfoo --bar   # says why\n\nbaz\n```\n```python\nprint(1)\n```\n"
    assert R.shell_blocks(text) == [["foo --bar", "baz"]]
    assert R.python_blocks(text) == ["print(1)\n"]
