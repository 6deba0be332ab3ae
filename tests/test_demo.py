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
