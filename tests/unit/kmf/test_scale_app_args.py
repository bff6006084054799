"""`kmf scale app` takes a count or --auto, never both and never neither; refused before any call
to the scheduler (the API is not reachable here: reaching it would exit 3, not 2)."""
from __future__ import annotations

import pytest

from kmf.cli import main


@pytest.mark.parametrize("argv", [["scale", "app", "wc"], ["scale", "app", "wc", "2", "--auto"]])
def test_a_count_or_auto_is_required_but_not_both(argv, capsys):
    assert main([*argv, "--api", "http://127.0.0.1:9"]) == 2
    assert "give the instance count, or --auto" in capsys.readouterr().err
