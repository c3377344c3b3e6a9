"""The README's tour runs as written (issue N): `make run` on a fresh state folder, then every
command block in order (tests/readme_tour.py). The checker itself is shown failing on toy blocks,
so a tour that passes is not one that cannot fail."""

from __future__ import annotations

import io
import os

from tests.readme_tour import ASSIGNED, README, Shell, blocks


def test_every_skipped_block_says_why_and_the_walk_through_is_not_skipped() -> None:
    found = blocks(README.read_text())
    skipped = [b for b in found if b.skip]
    assert all(len(b.skip.split()) >= 3 for b in skipped), [b.skip for b in skipped]
    ran = "".join(b.text for b in found if not b.skip)
    for command in ("/auth/register", "/organizations", "/registrations", "/analytics/export"):
        assert command in ran, f"the tour no longer runs the README's {command} step"


def test_the_shell_stops_on_what_a_reader_would_miss() -> None:
    shell = Shell(dict(os.environ), io.StringIO())
    try:
        assert shell.run("A=1\nB=$(echo two)\n") == (0, "")
        assert shell.value("B") == "two"
        code, _ = shell.run('echo "org: $ORG"\n')  # never set: the README's old $ORG
        assert code != 0
    finally:
        shell.close()
    shell = Shell(dict(os.environ), io.StringIO())
    try:
        code, _ = shell.run("false | cat\necho after\n")  # a failing pipe stops the block
        assert code != 0
    finally:
        shell.close()


def test_blocks_are_read_with_their_skip_reasons() -> None:
    text = (
        "intro\n\n```bash\nA=1\n```\n\n<!-- tour: skip: needs docker compose -->\n"
        "```bash\n  docker compose up\n```\n"
    )
    first, second = blocks(text)
    assert (first.line, first.text, first.skip) == (3, "A=1\n", None)
    assert (second.text, second.skip) == ("docker compose up\n", "needs docker compose")


def test_only_statements_count_as_assignments_not_environment_prefixes() -> None:
    text = 'A=1\nB=$(x)\nC=v cmd --flag\nD="q"; E=w  # note\nF=$PWD/exports .venv/bin/tool\n'
    assert ASSIGNED.findall(text) == ["A", "B", "D", "E"]


# The tour itself runs in tests/test_run.py, with the run's own checks: one `make run` for both.
