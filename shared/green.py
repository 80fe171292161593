"""Cooperative I/O for the whole process.

nameko runs on eventlet, so every blocking call must yield to the hub. psycopg 3 picks its C wait
function when imported, which blocks the hub: two requests then deadlock when one waits on a row
lock the other holds. Call :func:`patch` before anything imports psycopg or opens a socket.
"""

from __future__ import annotations

import warnings

with warnings.catch_warnings():
    # eventlet announces its bugfix-only status on import; nameko 2.14 needs it regardless.
    warnings.simplefilter("ignore")
    import eventlet

_patched = False


def patch() -> None:
    global _patched
    if _patched:
        return
    eventlet.monkey_patch()
    import psycopg.waiting

    # select() is green after monkey_patch; poll/epoll are not offered by eventlet.
    psycopg.waiting.wait = psycopg.waiting.wait_select
    _patched = True
