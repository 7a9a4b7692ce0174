"""What the CPU can do natively, for choices that would otherwise be slow by a large factor.

bfloat16 autocast pays off only where the CPU has bfloat16 instructions (x86 AVX512-BF16 or
AMX, Arm BF16). Elsewhere PyTorch emulates it: on an AVX2-only AMD EPYC one DDPG update of 256
took 253 ms under bf16 against 17 ms in float32, and one classic-DQN update 626 against 70 ms
(``bench/bench_ddpg_update.py``). So a bf16 request is honoured only on such CPUs.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
import warnings

#: /proc/cpuinfo flags (x86 'flags', Arm 'Features') of native bfloat16 arithmetic
BF16_FLAGS = frozenset({'avx512_bf16', 'amx_bf16', 'bf16'})


@lru_cache(maxsize=1)
def native_bf16(cpuinfo: str = '/proc/cpuinfo') -> bool:
    """True when the CPU lists a bfloat16 instruction set (False where that is unknown)."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return False
    for line in text.splitlines():
        key, _, value = line.partition(':')
        if key.strip() in ('flags', 'Features') and BF16_FLAGS & set(value.split()):
            return True
    return False


def resolve_bf16(requested: bool, who: str) -> bool:
    """``requested`` where the CPU has native bfloat16; else False, with a warning that says
    why (emulated bfloat16 is about 10x slower than float32)."""
    if requested and not native_bf16():
        warnings.warn(f'{who}: bf16 is on, but this CPU has no native bfloat16 '
                      '(AVX512-BF16, AMX or Arm BF16); training in float32 instead '
                      '(emulated bf16 is about 10x slower)', RuntimeWarning, stacklevel=2)
        return False
    return requested
