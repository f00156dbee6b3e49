"""What a crawl or an import did, counted for the closing summary."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Summary:
    stored: int = 0                 # new records written by this run
    total: int = 0                  # records in the file at the end
    already_stored: int = 0         # skipped unfetched: an earlier run stored that file or parameter vector
    duplicates: int = 0             # fetched or read, but the same pixels are already stored
    failed: Counter = field(default_factory=Counter)  # reason -> count
    retries: int = 0                # extra attempts made (crawl only)
    seconds: float = 0.0
    interrupted: bool = False       # stopped by Ctrl-C; a rerun continues

    def fail(self, reason: str) -> None:
        self.failed[reason] += 1

    @property
    def n_failed(self) -> int:
        return sum(self.failed.values())

    def lines(self) -> list[str]:
        rate = self.stored / self.seconds if self.seconds > 0 else 0.0
        out = [f"stored:     {self.stored} new ({self.total} in the file), {rate:.1f}/s over {self.seconds:.1f} s"]
        if self.already_stored:
            out.append(f"resumed:    {self.already_stored} already in the file, skipped")
        out.append(f"duplicates: {self.duplicates} skipped (same image already stored)")
        reasons = ", ".join(f"{reason}: {n}" for reason, n in self.failed.most_common())
        out.append(f"failed:     {self.n_failed}" + (f" ({reasons})" if reasons else ""))
        if self.retries:
            out.append(f"retries:    {self.retries}")
        if self.interrupted:
            out.append("interrupted: run the same command again to continue")
        return out
