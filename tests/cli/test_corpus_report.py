"""``bpm-server corpus report``: the compatibility table, from a small corpus made here."""
from __future__ import annotations

from pathlib import Path

from tests.cli.test_cli import Cli, failed
from tests.fixtures.diagrams import HEADER, script_task, sequence

TIMER = ('<bpmn:intermediateCatchEvent id="wait_an_hour"><bpmn:timerEventDefinition>'
         '<bpmn:timeDuration>"PT1H"</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>')


def test_the_report_lists_every_file_with_its_outcome_and_the_counts(cli: Cli, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus" / "tool"
    corpus.mkdir(parents=True)
    (corpus / "script.bpmn").write_bytes(sequence("p1", script_task("compute", "x = 1 + 1")))
    (corpus / "timer.bpmn").write_bytes(sequence("p2", TIMER, script_task("after", "done = True")))
    (corpus / "drawing.bpmn").write_bytes((HEADER + '<bpmn:process id="p3"/></bpmn:definitions>').encode())
    (corpus / "script_error.bpmn").write_bytes(sequence("p4", script_task("broken", "x = (")))
    output = tmp_path / "table.md"

    result = cli("corpus", "report", "--output", str(output), BPM_BPMN_CORPUS=str(tmp_path / "corpus"))
    assert result.returncode == 0, result.stderr
    assert "4 files: 2 completed, 0 waits, 0 failed, 2 refused, 0 crashed" in result.stdout, result.stdout
    table = output.read_text("utf-8")
    assert "| accepted, ran to completion | 2 |" in table and "| refused at upload | 2 |" in table
    assert "| `tool/timer.bpmn` | accepted, ran to completion |" in table  # the test clock moved past the timer
    assert "| `tool/drawing.bpmn` | refused at upload |  | the diagram has no executable process" in table
    assert "| `tool/script_error.bpmn` | refused at upload | broken | script error" in table
    assert str(tmp_path) not in table  # no machine path in the committed table


def test_without_a_corpus_the_report_says_how_to_give_one(cli: Cli, tmp_path: Path) -> None:
    assert "BPM_BPMN_CORPUS" in failed(cli("corpus", "report", "--output", str(tmp_path / "t.md")))
    assert not (tmp_path / "t.md").exists()
