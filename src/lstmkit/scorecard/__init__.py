"""The public scorecard: ``lstmkit benchmark forecasting|classification``, the library's defaults on every bundled
data set with the peers beside them, in one process, written to ``docs/results/scorecard.md``.

Not library code (like :mod:`lstmkit.bench`, the speed benchmark): nothing imports it but itself and
``lstmkit/cli/benchmark.py``. Each task module runs its rows (:mod:`.forecasting`, :mod:`.classification`);
:mod:`.report` writes the page.
"""
