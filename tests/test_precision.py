"""``--precision auto``: bfloat16 only where the hardware computes it natively."""

from __future__ import annotations

from pathlib import Path

import pytest

from gdbm.utils.precision import cpu_flags, native_bfloat16, resolve_precision

AVX2 = "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu sse2 avx avx2 fma\n\nprocessor\t: 1\nflags\t\t: fpu avx2\n"
SAPPHIRE = "processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n"


@pytest.fixture
def cpuinfo(tmp_path: Path):
    def write(text: str) -> Path:
        path = tmp_path / "cpuinfo"
        path.write_text(text)
        return path
    return write


def test_cpu_flags_are_read_from_every_processor(cpuinfo):
    assert cpu_flags(cpuinfo(AVX2)) == {"fpu", "sse2", "avx", "avx2", "fma"}
    assert cpu_flags(cpuinfo(SAPPHIRE)) >= {"avx512_bf16", "amx_bf16"}
    assert cpu_flags("/no/such/cpuinfo") == set()


def test_auto_picks_bfloat16_only_where_the_cpu_has_it(cpuinfo):
    assert resolve_precision("auto", "cpu", cpuinfo(AVX2)) == "float32"
    assert resolve_precision("auto", "cpu", cpuinfo(SAPPHIRE)) == "bfloat16"
    assert resolve_precision("auto", "cpu", "/no/such/cpuinfo") == "float32"
    assert resolve_precision("float32", "cpu", cpuinfo(SAPPHIRE)) == "float32"


def test_explicit_bfloat16_is_kept_with_a_warning_where_it_is_emulated(cpuinfo):
    with pytest.warns(RuntimeWarning, match="emulated"):
        assert resolve_precision("bfloat16", "cpu", cpuinfo(AVX2)) == "bfloat16"


def test_a_gpu_is_asked_not_the_cpu(cpuinfo, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: not including_emulation)
    assert native_bfloat16("cuda", cpuinfo(AVX2))
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation)
    assert not native_bfloat16("cuda:0", cpuinfo(SAPPHIRE))  # emulated bfloat16 on an older GPU does not count
    assert not native_bfloat16("meta", cpuinfo(SAPPHIRE))


def test_the_log_line_says_what_runs_and_why(cpuinfo):
    from gdbm.utils.precision import describe_precision

    assert describe_precision("auto", "cpu", cpuinfo(AVX2)) == (
        "network arithmetic float32 on cpu (auto; bfloat16 is emulated here)")
    assert describe_precision("auto", "cpu", cpuinfo(SAPPHIRE)) == (
        "network arithmetic bfloat16 on cpu (auto; bfloat16 is native here)")
    assert describe_precision("bfloat16", "cpu", cpuinfo(AVX2)).startswith("network arithmetic bfloat16 on cpu (asked")
