"""Progress lines: units that fit the size, bounded line counts for known and unknown totals."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_spotfire.upload.progress import ProgressLogger, UploadProgress, format_bytes


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (48_213, "47.1 KiB"),
        (8 * 1024**2, "8.0 MiB"),
        (1536 * 1024**2, "1.5 GiB"),
        (3 * 1024**4, "3.0 TiB"),
        (5 * 1024**5, "5120.0 TiB"),
    ],
)
def test_format_bytes_picks_the_unit_that_fits(n, text):
    assert format_bytes(n) == text


class ListLog:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, msg: str, *args: Any) -> None:
        self.lines.append(msg % args)


def test_a_small_upload_is_not_shown_as_zero_mib():
    log = ListLog()
    ProgressLogger(log, "/A/x")(UploadProgress(300, 300, 1, 1, 0.5))
    assert log.lines == ["Uploading to /A/x: 300 B of 300 B (100%), 1/1 chunks, 600 B/s"]


def test_unknown_totals_log_at_powers_of_two():
    log = ListLog()
    progress = ProgressLogger(log, "/A/s")
    for n in range(1, 1001):
        progress(UploadProgress(n * 1024, None, n, None, 1.0))
    assert len(log.lines) == 10  # chunks 1, 2, 4, ..., 512
    assert log.lines[0] == "Uploading to /A/s: 1.0 KiB sent in 1 chunks (total not known yet), 1.0 KiB/s"
    assert log.lines[-1].startswith("Uploading to /A/s: 512.0 KiB sent in 512 chunks")
    assert UploadProgress(5, None, 1, None, 1.0).fraction is None
