import numpy as np
import pytest

import semkit

from semkit.cli import main


def test_report_writes_the_figure_and_table(tmp_path, capsys):
    assert main(["report", "--out", str(tmp_path), "--shape", "vase", "--step", "45"]) == 0
    assert (tmp_path / "azimuth_curve_vase.png").stat().st_size > 10_000
    assert (tmp_path / "map2d_park_bench.png").stat().st_size > 10_000
    curves = semkit.open_map(tmp_path / "azimuth_curve_vase.nc")
    assert curves.score.dims == ("network", "shape", "azimuth") and curves.sizes["network"] == 3
    np.testing.assert_array_equal(curves.azimuth, np.arange(0, 360, 45))
    grid = semkit.open_map(tmp_path / "map2d_park_bench.nc")
    assert grid.score.shape == (4, 3) and grid.attrs["network"] == "efficientnet_lite0"
    assert "wrote" in capsys.readouterr().out


def test_report_rejects_bad_arguments(tmp_path):
    with pytest.raises(SystemExit):
        main(["report", "--out", str(tmp_path), "--shape", "teapot"])
    with pytest.raises(SystemExit):
        main(["report", "--out", str(tmp_path), "--step", "0"])
