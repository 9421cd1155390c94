"""A claim about two networks, judged on a comparison: "A is more accurate but less semantically robust than B".

The paper's headline is such a claim (InceptionV3 against ResNet50). A
comparison (`compare_networks`) holds, per criterion and metric, the
paired difference of two networks over shapes with its bootstrap interval
and sign-flip p-value; a claim holds under a criterion only where every part
of it is a significant difference in the claimed direction. Robustness is
read from the robust accuracy at each radius above 0 (and SRVR where the
comparison has it), so the verdict says at which radii the claim holds.
"""

from __future__ import annotations

import re

import numpy as np
import xarray as xr

from ..validation import check_probability

#: The metric a comparison names its accuracy over the views by.
ACCURACY = "accuracy over the space"


def judge_claim(comparison: xr.Dataset, network: str, other: str, *, significance: float = 0.05) -> xr.Dataset:
    """Whether ``network`` is more accurate but less robust than ``other``, per criterion, with intervals.

    Parameters
    ----------
    comparison : Dataset
        A comparison from [`compare_networks`][semkit.compare_networks] holding both networks.
    network : str
        The network claimed more accurate and less robust.
    other : str
        The network it is compared with.
    significance : float
        A difference counts only where its paired test's p-value is below this.

    Returns
    -------
    Dataset
        Over (criterion, metric), for accuracy and each robustness metric (robust accuracy at a radius above 0,
        SRVR): ``difference`` (network minus other, mean over shapes), ``difference_low``, ``difference_high``,
        ``p_value`` and ``direction`` (+1: significantly higher, -1: significantly lower, 0: no significant
        difference); over criterion, ``holds`` (accuracy higher and every robustness metric lower) and
        ``contradicted`` (accuracy lower or some robustness metric higher, significantly), and ``verdict``, the
        sentence. Attrs: ``claim``, ``significance``.

    Raises
    ------
    ValueError
        A network the comparison does not hold, or a comparison without accuracy or robustness metrics.
    """
    significance = check_probability(significance, "significance", closed="neither")
    names = [str(n) for n in comparison.network.values]
    for name in (network, other):
        if name not in names:
            raise ValueError(f"the comparison holds the networks {names}, not {name!r}")
    if network == other:
        raise ValueError(f"a claim compares two networks: network and other are both {network!r}")
    metrics = [str(m) for m in comparison.metric.values]
    robustness = [m for m in metrics if _radius(m) > 0 or m.startswith("SRVR")]
    if ACCURACY not in metrics or not robustness:
        raise ValueError(f"the comparison's metrics are {metrics}: a claim needs {ACCURACY!r} and robust accuracy at "
                         "a radius above 0 (compare_networks(..., radius=[0, 6, 12])) or SRVR")
    pair = comparison.sel(network=network, other=other, metric=[ACCURACY, *robustness])
    out = pair[["difference", "difference_low", "difference_high", "p_value"]].drop_vars(["network", "other"])
    significant = out.p_value < significance
    out["direction"] = xr.where(significant, np.sign(out.difference), 0).astype(int)
    accuracy, robust = out.direction.sel(metric=ACCURACY), out.direction.sel(metric=robustness)
    out["holds"] = (accuracy == 1) & (robust == -1).all("metric")
    out["contradicted"] = (accuracy == -1) | (robust == 1).any("metric")
    out["verdict"] = ("criterion", [_verdict(out.sel(criterion=c), network, other, robustness)
                                    for c in out.criterion.values])
    out.attrs = {"claim": f"{network} is more accurate but less semantically robust than {other}",
                 "significance": significance}
    shapes = int(comparison.attrs.get("shapes", 0))
    if shapes and 2 / 2 ** shapes >= significance:  # the exact sign-flip test's smallest p-value
        out["verdict"] = out.verdict + (f" With {shapes} shapes no p-value can fall below {significance:g} (the "
                                        f"smallest is 2/2^{shapes}): nothing can be shown; compare on more shapes.")
    return out


def _radius(metric: str) -> float:
    """The radius in a robust accuracy metric's name ("robust accuracy r=6" -> 6), else -1."""
    found = re.fullmatch(r"robust accuracy r=([0-9.eE+-]+)", metric)
    return float(found.group(1)) if found else -1.0


def _verdict(rows: xr.Dataset, network: str, other: str, robustness: list[str]) -> str:
    """One criterion's verdict in words, with the accuracy difference and where robustness goes either way."""
    criterion = str(rows.criterion.values)
    acc = rows.sel(metric=ACCURACY)
    accuracy = (f"accuracy {float(acc.difference):+.3f} [{float(acc.difference_low):+.3f}, "
                f"{float(acc.difference_high):+.3f}], p = {float(acc.p_value):.3f}")
    by = {d: [m for m in robustness if int(rows.direction.sel(metric=m)) == d] for d in (-1, 0, 1)}
    parts = [f"{name}: {', '.join(ms)}" for name, ms in (("less robust", by[-1]), ("more robust", by[1]),
                                                          ("no significant difference", by[0])) if ms]
    status = ("holds" if bool(rows.holds) else "is contradicted" if bool(rows.contradicted) else
              "is not shown (no significant difference where the claim needs one)")
    return f"{criterion}: the claim {status}. {network} minus {other}: {accuracy}; " + "; ".join(parts) + "."
