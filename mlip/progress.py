"""Progress of long loops (training, MD, labelling, active learning) that logs read well.

On a terminal, :class:`Progress` is a tqdm bar. Without one (a batch job on a cluster,
``nohup``, CI: stderr is not a tty) a redrawn bar turns into thousands of log lines, so
there it writes one plain line per :meth:`Progress.report` instead, with what the bar
would show::

    epoch 3/10: 120/400 step (30%), 4.1 step/s, E=1.2 F=35.1

:meth:`Progress.update` advances the count (and the bar's fields) without a line; the
loop calls :meth:`Progress.report` at its validation or log interval. One helper, used
by all of them, so every long job logs the same way.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from tqdm.auto import tqdm


def is_terminal(stream: TextIO | None = None) -> bool:
    """Whether ``stream`` (default stderr, where progress goes) is shown live: a terminal,
    or a Jupyter kernel (tqdm's widget)."""
    stream = sys.stderr if stream is None else stream
    try:
        if stream.isatty():
            return True
    except (AttributeError, ValueError):  # closed or replaced streams
        return False
    shell = sys.modules.get("IPython")
    ipython = getattr(shell, "get_ipython", lambda: None)() if shell else None
    return ipython is not None and "IPKernelApp" in getattr(ipython, "config", {})


class Progress:
    """A count towards ``total`` (None: open-ended) in ``unit``s; see the module docstring.

    ``enabled`` False shows nothing; ``terminal`` None asks :func:`is_terminal`;
    ``text_every``: without a terminal, a report writes a line only when the count moved
    at least this much since the last line (0: every report). :meth:`close` writes a
    last line when the count moved since the last one.
    """

    def __init__(
        self,
        total: int | None,
        unit: str,
        desc: str = "",
        *,
        initial: int = 0,
        enabled: bool = True,
        stream: TextIO | None = None,
        terminal: bool | None = None,
        text_every: int = 0,
    ) -> None:
        self.total, self.unit, self.desc = total, unit, desc
        self.count = self._start_count = self._last_line = initial
        self.enabled = enabled
        self.stream = sys.stderr if stream is None else stream
        self.terminal = is_terminal(self.stream) if terminal is None else terminal
        self.text_every = text_every
        self.fields: dict[str, Any] = {}
        self._start = time.monotonic()
        self._bar = None
        if enabled and self.terminal:
            self._bar = tqdm(total=total, initial=initial, unit=unit, desc=desc or None,
                             file=self.stream, dynamic_ncols=True)  # fmt: skip

    def set_description(self, desc: str) -> None:
        self.desc = desc
        if self._bar is not None:
            self._bar.set_description(desc)

    def update(self, n: int = 1, **fields: Any) -> None:
        """Advance by ``n``; ``fields`` replace what the bar shows next to the count."""
        self.count += n
        if self._bar is not None:
            self._bar.update(n)
        if fields:
            self._set(fields)

    def report(self, **fields: Any) -> None:
        """The loop's interval: the bar's fields, or (without a terminal) a line."""
        if fields:
            self._set(fields)
        if self.enabled and self._bar is None:
            if self.count - self._last_line >= self.text_every or self.count == self.total:
                self._write()

    def line(self) -> str:
        """What the bar shows, as one line of text."""
        done = f"{self.count}/{self.total}" if self.total else f"{self.count}"
        percent = f" ({100 * self.count / self.total:.0f}%)" if self.total else ""
        elapsed = max(time.monotonic() - self._start, 1e-9)
        rate = (self.count - self._start_count) / elapsed
        fields = "".join(f" {k}={v}" for k, v in self.fields.items())
        head = f"{self.desc}: " if self.desc else ""
        return f"{head}{done} {self.unit}{percent}, {rate:.3g} {self.unit}/s" + (
            f",{fields}" if fields else ""
        )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self.enabled and self.count != self._last_line:
            self._write()
        self.enabled = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _set(self, fields: dict[str, Any]) -> None:
        self.fields = dict(fields)
        if self._bar is not None:
            self._bar.set_postfix(fields)

    def _write(self) -> None:
        print(self.line(), file=self.stream, flush=True)
        self._last_line = self.count
