"""Applications on top of the library: the ipywidgets explorer, the papermill reports, and the ``semkit`` command.

* `.explorer`: [`Explorer`][semkit.app.Explorer]: point at a view, see every network's answer, ask the trust
  questions there; `.panel` its widgets, `.canvas` the map that takes clicks, `.tasks` its background work,
  `.overlays` the answers drawn on the map;
* `.reports`: [`run_reports`][semkit.app.run_reports], the report notebooks run on the defaults;
* `.cli`: ``semkit report | sweep | ...``.
"""

from .explorer import Explorer
from .reports import REPORT_NOTEBOOKS, ReportError, run_reports, setup

__all__ = ["Explorer", "REPORT_NOTEBOOKS", "ReportError", "run_reports", "setup"]
