"""Write a benchmark's printed lines into docs/performance.md between its own markers."""

from __future__ import annotations

import os
import time
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "performance.md"


def update_doc(key: str, title: str, lines: list[str], command: str) -> None:
    """Replace (or append) the block between `<!-- key:begin -->` and `<!-- key:end -->`."""
    begin, end = f"<!-- {key}:begin -->", f"<!-- {key}:end -->"
    block = "\n".join(
        [
            begin,
            f"Measured {time.strftime('%Y-%m-%d')} on this machine ({os.cpu_count()} cores), "
            f"`{command}`:",
            "",
            "```",
            *lines,
            "```",
            end,
        ]
    )
    text = DOC.read_text() if DOC.exists() else "# Performance\n"
    if begin in text:
        text = text[: text.index(begin)] + block + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip() + f"\n\n## {title}\n\n" + block + "\n"
    DOC.write_text(text)
