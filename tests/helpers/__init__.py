"""What several test modules share: fake CIFAR-10 archives and the tiny training runs."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def assert_one_error_line(code: int, stderr: str, *must_name: str) -> None:
    """A command's user error: exit code 1 and one `error:` line naming each of `must_name`."""
    lines = stderr.strip().splitlines()
    assert code == 1
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    for text in must_name:
        assert text in lines[0], (text, lines[0])
