"""tweakwise.lazy: a client made on first use, once, whichever thread asks first."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from tweakwise.lazy import Lazy


def test_a_value_is_returned_as_it_is():
    value = object()
    assert Lazy(value).get() is value
    assert Lazy(None).get() is None


def test_nothing_is_made_until_the_first_get():
    made = []
    lazy = Lazy(lambda: made.append(1) or "client")
    assert made == []
    assert lazy.get() == "client" and lazy.get() == "client"
    assert made == [1]


def test_threads_asking_at_once_share_one_value():
    made = []
    start = threading.Barrier(8)

    def make():
        made.append(threading.get_ident())
        time.sleep(0.05)  # long enough for the other threads to ask meanwhile
        return object()

    lazy = Lazy(make)

    def ask():
        start.wait()
        return lazy.get()

    with ThreadPoolExecutor(8) as pool:
        values = list(pool.map(lambda _: ask(), range(8)))
    assert len(made) == 1
    assert all(value is values[0] for value in values)
