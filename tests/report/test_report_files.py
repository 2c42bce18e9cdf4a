"""The reports folder keeps the newest summaries only, and nothing else is touched."""

from __future__ import annotations

from conveyor.report.summary.assemble import _keep_newest


def test_only_the_newest_reports_are_kept(tmp_path):
    for day in range(1, 8):
        for suffix in (".html", ".md", ".json"):
            (tmp_path / f"summary-202612{day:02d}T100000Z{suffix}").write_text("x")
    (tmp_path / "notes.txt").write_text("mine")
    _keep_newest(tmp_path, 5)
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == ["notes.txt"] + sorted(f"summary-202612{d:02d}T100000Z{s}"
                                          for d in range(3, 8) for s in (".html", ".json", ".md"))
