"""The measured single-core rates the benchmarks' %peak columns divide by (fastae/machine.h)."""

import pytest

from fastae import _core


def test_fma_peak_and_sgemm_rate_are_measured_and_consistent():
    fma = _core.measured_fma_peak_gflops(runs=20)
    sgemm = _core.measured_sgemm_gflops(256, 0.05)
    if "FMA" not in _core.build_info() and fma == 0.0:
        pytest.skip("this build has no FMA vectors (the peak is reported as 0)")
    # A core does at least one 8-lane FMA per 10 ns (1.6 GFLOP/s) and no product can run much
    # faster than independent FMAs in registers (the peak is a best run; allow its noise).
    assert fma > 1.6
    assert 0.0 < sgemm < 1.5 * fma


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: _core.measured_fma_peak_gflops(runs=0), "runs must be >= 1"),
        (lambda: _core.measured_sgemm_gflops(0), "n must be in"),
        (lambda: _core.measured_sgemm_gflops(10000), "n must be in"),
        (lambda: _core.measured_sgemm_gflops(64, -1.0), "seconds must be in"),
        (lambda: _core.measured_sgemm_gflops(64, float("nan")), "seconds must be in"),
    ],
)
def test_bad_arguments_are_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()
