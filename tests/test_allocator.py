"""moro.allocator: the `moro` command's process keeps freed memory and asks torch for huge pages."""

import json
import subprocess
import sys

from moro.allocator import OPT_OUT_ENV, TOP_PAD_BYTES, tune_allocator

PROBE = """
import json, os, resource, sys
from moro.allocator import tune_allocator
applied = tune_allocator() if sys.argv[1] == "tune" else None
import torch
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
torch.ones(1)
f0 = faults()
for _ in range(6):  # a network's activations, freed and made again pass after pass
    xs = [torch.ones(3_000_000 + 1000 * i) for i in range(6)]
    del xs
print(json.dumps({"applied": applied, "faults": faults() - f0, "thp": os.environ.get("THP_MEM_ALLOC_ENABLE")}))
"""


def _probe(mode):
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_settings_applied_and_page_faults_drop():
    plain, tuned = _probe("plain"), _probe("tune")
    assert tuned["applied"] == {"huge_pages": True, "top_pad_bytes": TOP_PAD_BYTES} and tuned["thp"] == "1"
    assert tuned["faults"] < 0.5 * plain["faults"], (plain, tuned)


def test_user_settings_win(monkeypatch):
    import moro.allocator as alloc

    calls = []

    class FakeLibc:
        def mallopt(self, param, value):
            calls.append((param.value, value.value))
            return 1

    monkeypatch.setattr(alloc.ctypes, "CDLL", lambda name: FakeLibc())  # this process's heap stays as it is
    env = {"THP_MEM_ALLOC_ENABLE": "0"}
    assert tune_allocator(env) == {"huge_pages": False, "top_pad_bytes": TOP_PAD_BYTES} and env["THP_MEM_ALLOC_ENABLE"] == "0"
    env = {OPT_OUT_ENV: "1"}
    assert tune_allocator(env) == {"huge_pages": False, "top_pad_bytes": 0} and "THP_MEM_ALLOC_ENABLE" not in env
    assert calls == [(-2, TOP_PAD_BYTES)]  # M_TOP_PAD, once (the opted-out call made none)
