import numpy as np
import pytest

from semkit.cli import main


def test_report_writes_the_figure_and_table(tmp_path, capsys):
    assert main(["report", "--out", str(tmp_path), "--shape", "vase", "--step", "90"]) == 0
    assert (tmp_path / "azimuth_curve_vase.png").stat().st_size > 10_000
    table = np.genfromtxt(tmp_path / "azimuth_curve_vase.csv", delimiter=",", names=True)
    np.testing.assert_array_equal(table["azimuth"], [0, 90, 180, 270])
    assert ((table["efficientnet_lite0_score"] >= 0) & (table["efficientnet_lite0_score"] <= 1)).all()
    assert "wrote" in capsys.readouterr().out


def test_report_rejects_bad_arguments(tmp_path):
    with pytest.raises(SystemExit):
        main(["report", "--out", str(tmp_path), "--shape", "teapot"])
    with pytest.raises(SystemExit):
        main(["report", "--out", str(tmp_path), "--step", "0"])
