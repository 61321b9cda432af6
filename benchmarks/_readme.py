"""Generated blocks of the README: a benchmark writes its own output between two markers.

A block is everything between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->`` (each on a line
of its own); the text outside the markers is never touched. So every figure in the block comes
from the command that the block itself names.
"""

from pathlib import Path


def markers(name):
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def _locate(text, name, path):
    start, end = markers(name)
    lines = text.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.strip() == start]
    ends = [i for i, line in enumerate(lines) if line.strip() == end]
    if len(starts) != 1 or len(ends) != 1 or ends[0] < starts[0]:
        raise ValueError(
            f"{path}: expected exactly one line '{start}' followed later by exactly one line "
            f"'{end}' (found {len(starts)} start and {len(ends)} end marker(s)); add the two "
            "lines where the generated block belongs."
        )
    return lines, starts[0], ends[0]


def check_block(path, name):
    """Fail before a long run, not after it, when ``path`` cannot take the block."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--readme {path}: no such file.")
    _locate(path.read_text(), name, path)


def write_block(path, name, body):
    """Replace what lies between the markers of ``name`` in ``path`` with ``body``."""
    path = Path(path)
    lines, first, last = _locate(path.read_text(), name, path)
    body = body if body.endswith("\n") else body + "\n"
    path.write_text("".join(lines[: first + 1]) + body + "".join(lines[last:]))
