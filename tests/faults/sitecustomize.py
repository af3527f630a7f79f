"""Fault injection for the resume tests, from outside the library: Python imports this module at
start-up in every process that has this folder on PYTHONPATH (the `kill_after_step` fixture puts
it there). With ``SCOREAWARE_TEST_KILL_AFTER_STEP=N`` the process SIGKILLs itself when the
training loop begins step N + 1, that is after step N and its checkpoint: what ``kill -9`` from
outside does, at a step the test can name. Nothing in `scoreaware` knows about it.
"""

import os

_STEP = os.environ.get("SCOREAWARE_TEST_KILL_AFTER_STEP")

if _STEP:
    import signal

    import scoreaware.train.loop as _loop

    _update_ema = _loop.update_ema
    _done = [0]

    def _update_ema_then_maybe_die(*args, **kwargs):
        # called once per optimizer step, after it: the (N + 1)-th call is step N + 1
        if _done[0] == int(_STEP):
            os.kill(os.getpid(), signal.SIGKILL)
        _done[0] += 1
        return _update_ema(*args, **kwargs)

    _loop.update_ema = _update_ema_then_maybe_die
