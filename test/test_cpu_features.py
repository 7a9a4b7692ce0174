"""bf16 is used only on CPUs with native bfloat16: emulated, it is ~10x slower than float32."""
import warnings

import pytest

from pick_place_rl.core.cpu_features import native_bf16, resolve_bf16


def test_native_bf16_reads_the_cpu_flags(tmp_path):
    x86 = tmp_path / 'x86'
    x86.write_text('processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f\n\n'
                   'processor\t: 1\nflags\t\t: fpu sse2 avx2 avx512f\n')
    assert not native_bf16(str(x86))
    x86.write_text('processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16 amx_tile\n')
    assert native_bf16.__wrapped__(str(x86))
    arm = tmp_path / 'arm'
    arm.write_text('processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\n')
    assert native_bf16(str(arm))
    assert not native_bf16(str(tmp_path / 'missing'))


def test_resolve_bf16_keeps_float32_with_a_warning_where_bf16_is_emulated():
    assert resolve_bf16(False, 'x') is False
    if native_bf16():
        assert resolve_bf16(True, 'x') is True
    else:
        with pytest.warns(RuntimeWarning, match='no native bfloat16'):
            assert resolve_bf16(True, 'DQN trainer') is False
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        resolve_bf16(False, 'x')
