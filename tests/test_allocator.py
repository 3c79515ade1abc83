import platform
import subprocess
import sys

import pytest

from pdekit.allocator import retain_freed_memory, retain_freed_memory_unless_disabled


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the setting is glibc's")
def test_glibc_accepts_the_raised_thresholds_in_a_fresh_process():
    script = "from pdekit.allocator import retain_freed_memory; print(retain_freed_memory())"
    assert subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.strip() == "True"


def test_the_environment_can_turn_it_off_and_bad_thresholds_are_refused(monkeypatch):
    monkeypatch.setenv("PDEKIT_RETAIN_FREED_MEMORY", "0")
    assert retain_freed_memory_unless_disabled() is False
    with pytest.raises(ValueError, match="threshold_bytes must be positive"):
        retain_freed_memory(0)
