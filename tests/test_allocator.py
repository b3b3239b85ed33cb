"""allocator.keep_freed_memory: process-wide memory settings for repeated calculator steps."""

import pathlib
import platform
import subprocess
import sys

import pytest

THP = pathlib.Path("/sys/kernel/mm/transparent_hugepage/enabled")

# a fresh interpreter: PyTorch reads THP_MEM_ALLOC_ENABLE at its first tensor of 2 MB or more
SCRIPT = """
import resource, sys, torch
from ase_phisnet import allocator
if sys.argv[1] == "settings":
    assert allocator.keep_freed_memory() is True
def allocate():  # 11.5 MB, as an ethanol step's outer products
    torch.empty(625 * 2304, dtype=torch.float64).fill_(1.0)
allocate()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    allocate()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 10)
"""


def faults_per_block(mode: str) -> float:
    return float(subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, check=True).stdout)


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc and Linux memory settings")
@pytest.mark.skipif(not THP.exists() or "[never]" in THP.read_text(), reason="transparent huge pages are off on this machine")
def test_large_blocks_no_longer_fault_page_by_page():
    """An 11.5 MB block is 2,800 pages of 4 KiB; with the settings it faults in huge pages."""
    with_settings = faults_per_block("settings")
    assert with_settings < 50, with_settings
    assert with_settings < faults_per_block("default") or with_settings == 0
