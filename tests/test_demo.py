"""The README's main-job command runs end to end."""

from __future__ import annotations

import subprocess
import sys


def test_demo_walkthrough() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "clearpoint.cli", "demo"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "Redeemed: rdm_" in out
    assert "VOUCHER_ALREADY_REDEEMED" in out
    assert "SIGNATURE_INVALID" in out
    assert "redeemed=1" in out
    # The store agent part: a real agent process reading a pty scanner.
    console = [line for line in out.splitlines() if "till |" in line]
    assert [
        label in line
        for line, label in zip(
            console, ["ACCEPTED", "REFUSED", "REFUSED", "NOT A VOUCHER", "REFUSED", "ACCEPTED"], strict=False
        )
    ] == [True] * 6, out
    assert "not text" in out  # the line noise was logged, and the next scan still went through
    assert "got 2 good-read beep(s)" in out
    book = out.split("claim book")[1].split("Points, between")[0]
    assert book.count("accepted") == 2 and book.count("refused") == 3 and book.count("not_a_voucher") == 1
    # Points: a quote, then an exchange whose figures are the quote's, balances before and after.
    assert "Balances before: Alpha 5000 miles, Beta 120 stars, platform 0 points." in out
    assert "worth 250 platform points, fee 4, 246 passed on, 819 stars" in out
    assert "EXCHANGE_STATE_COMPLETED" in out
    assert "Balances after: Alpha 4000 miles, Beta 939 stars, platform 0 points." in out
    assert "EXCHANGE_STATE_FAILED" in out and "nothing moved: Alpha 4000 miles, Beta 939 stars" in out
