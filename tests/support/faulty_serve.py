"""``eventbatch`` with one dedupe planted out: the fault the crash-torture test must catch.

Where it sits: test support for ``tests/integration/test_crash_torture.py``.
``python -m tests.support.faulty_serve ARGS`` is ``python -m eventbatch ARGS``
after ``plant()``: the real command line, the real pipeline, with one
well-defined check removed at runtime, so the torture's checker and ``replay
--verify`` (run unpatched) can be shown to notice.

The check removed: a clock-driven component (the simulated kubelet, the
timer service) does not append an answer to a cause whose answer is already
on its way to the log (``Reactor.fresh`` leaves out the causes in flight).
Without it, the answer is appended again each time the component acts
before it has read its first answer back: the same cause answered twice.
``plant()`` is the one function to change when that check moves.
"""

from __future__ import annotations

import sys

FAULT = "Reactor.fresh keeps the causes already in flight: a cause is answered again before its answer is read back"


def plant() -> None:
    from eventbatch.reactor import Reactor

    def fresh(self, now: int):
        return self.due(now)  # the in-flight check left out

    Reactor.fresh = fresh


def main() -> int:
    plant()
    from eventbatch.cli import main as cli

    return cli(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
