"""The report's first page: the answer table of summary.md as valid RST, before the
workflow's description."""

from __future__ import annotations

import io

from docutils.core import publish_parts

from linbench.aggregate import first_markdown_table, landing_page, rst_text

SUMMARY = """# linbench results

Intro with a | pipe? No: prose.

| features | loss | best regularizer | strength | gain over none (test) | verdict |
|:---------|:-----|:-----------------|:---------|----------------------:|:--------|
| hog | svm | **dropout** | p = 0.2 | +6.0 pts [+5.2, +6.8] | *better* |
| hog_fine | softmax | l2 | λ = 1 | "n/a" | `none` * x |

## Later

| other | table |
|---|---|
| 1 | 2 |
"""
# Snakemake appends link targets for its categories and report items to the page.
LINKS = """

.. _1 The answer: javascript:app.showCategory('1%20The%20answer')
.. _answer.png: javascript:app.showResultInfo('answer.png')
.. _summary.md: javascript:app.showResultInfo('summary.md')
"""


def html_of(rst: str) -> tuple[str, str]:
    warnings = io.StringIO()
    parts = publish_parts(rst, writer="html", settings_overrides={"warning_stream": warnings})
    return parts["html_body"], warnings.getvalue()


def test_the_first_table_is_read_without_its_rule_line():
    rows = first_markdown_table(SUMMARY)
    assert rows[0] == [
        "features",
        "loss",
        "best regularizer",
        "strength",
        "gain over none (test)",
        "verdict",
    ]
    assert rows[1][2] == "**dropout**" and len(rows) == 3
    assert first_markdown_table("no table here") == []


def test_markdown_marks_become_plain_escaped_rst():
    assert rst_text("**dropout**") == "dropout"
    assert rst_text("`none` * x | y_") == r"none \* x \| y\_"


def test_the_page_opens_on_the_answer_and_renders_without_a_warning():
    page = landing_page(SUMMARY, "The study\n---------\n\nText.\n", "answer.png", "1 The answer")
    assert page.startswith("The answer\n==========\n")
    assert page.index("csv-table") < page.index("The study")
    html, warnings = html_of(page + LINKS)
    assert warnings == ""
    assert '<h1 class="title">The answer</h1>' in html
    assert "<td>dropout</td>" in html and "<td>λ = 1</td>" in html
    assert "<td>&quot;n/a&quot;</td>" in html and "<td>none * x</td>" in html
    assert "Later" not in html  # only the first table


def test_a_summary_without_a_table_still_gives_a_page():
    html, warnings = html_of(
        landing_page("# nothing yet\n", "", "answer.png", "1 The answer") + LINKS
    )
    assert warnings == "" and "summary.md has no table yet" in html


def test_the_check_sees_a_broken_caption():
    """What the checks above guard against: an unescaped mark warns."""
    _, warnings = html_of("A cell with *one star.\n")
    assert "WARNING" in warnings
