"""The run page's paging and filters over HTTP, on a seeded store; the diff and chart helpers."""

from __future__ import annotations

import asyncio
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
import uvicorn
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.api import create_api
from monitor.api.ui import PAGE_SIZE, TrendRun, diff_segments, trend_chart
from monitor.core.model import Run, RunStatus, ScoreSummary
from monitor.storage import open_store
from tests.ui.seed import flip_verdict, seed_benchmark, seed_run

T0 = datetime(2026, 11, 1, tzinfo=UTC)
KEY = re.compile(r'<article class="flip [a-z_]+" data-key="([^"]+)"')


class Served:
    """The API of a seeded store under uvicorn on 127.0.0.1, in a thread."""

    def __init__(self, folder: Path) -> None:
        self.store = open_store(f"sqlite:///{folder}/m.db")
        keys = seed_benchmark(self.store, T0, n=400)
        passed = dict.fromkeys(keys, True)
        # 120 items flip pass -> fail and 5 fail -> pass (they failed in the baseline run)
        self.down, self.up = keys[:120], keys[395:]
        before = passed | dict.fromkeys(self.up, False)
        base = seed_run(self.store, monitor="m", endpoint="e", started_at=T0, passed=before)
        after = passed | dict.fromkeys(self.down, False)
        self.run = seed_run(
            self.store,
            monitor="m",
            endpoint="e",
            started_at=T0 + timedelta(hours=1),
            passed=after,
            verdict=flip_verdict(base.id, self.down, self.up),
        )
        settings_ = SimpleNamespace(monitors=[], server=SimpleNamespace(ui_auth=False))
        app = create_api(SimpleNamespace(store=self.store, settings=settings_))
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=lambda: asyncio.run(self.server.serve()))
        self.thread.start()
        while not self.server.started:
            time.sleep(0.02)
        self.url = f"http://127.0.0.1:{self.server.servers[0].sockets[0].getsockname()[1]}"

    def page(self, query: str) -> str:
        with urllib.request.urlopen(f"{self.url}/ui/runs/{self.run.id}?{query}") as answer:
            return str(answer.read().decode())

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.store.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A run of 400 items with 125 flipped items, served over HTTP."""
    s = Served(tmp_path_factory.mktemp("paging"))
    yield s
    s.close()


class TestPaging:
    """Large runs page through their flipped items."""

    def test_pages_cover_every_flipped_item_once(self, served: Served) -> None:
        """Three pages of at most 50 hold the 125 flipped items, none twice."""
        seen: list[str] = []
        for page in (1, 2, 3):
            html = served.page(f"page={page}")
            keys = KEY.findall(html)
            assert len(keys) <= PAGE_SIZE
            assert f"page {page} of 3" in html
            seen += keys
        assert sorted(seen) == sorted(served.down + served.up)
        assert len(set(seen)) == len(seen)

    def test_a_page_past_the_end_shows_the_last(self, served: Served) -> None:
        """Asking for page 99 shows page 3, not an empty list."""
        assert "page 3 of 3" in served.page("page=99")

    def test_split_filter(self, served: Served) -> None:
        """split=hard keeps the odd-numbered items (tests/ui/seed.py alternates easy, hard)."""
        keys: list[str] = []
        for page in (1, 2):
            keys += KEY.findall(served.page(f"split=hard&page={page}"))
        expected = {k for k in served.down + served.up if int(k[1:]) % 2}
        assert set(keys) == expected

    def test_a_slice_is_a_scorer_the_filter_accepts(self, served: Served) -> None:
        """`scorer=exact_match[category=refund]` (a slice's verdict) is a filter, not a 422;
        a name with stray brackets still is one."""
        query = urllib.parse.urlencode({"scorer": "exact_match[category=refund]"})
        assert "No flipped items for this filter." in served.page(query)  # 200, filtered
        with pytest.raises(urllib.error.HTTPError) as bad:
            served.page(urllib.parse.urlencode({"scorer": "exact_match]["}))
        assert bad.value.code == 422
        bad.value.close()

    def test_fail_to_pass_items_are_marked(self, served: Served) -> None:
        """The five items that recovered are shown as fail -> pass."""
        html = "".join(served.page(f"page={p}") for p in (1, 2, 3))
        for key in served.up:
            assert f'<article class="flip fail_to_pass" data-key="{key}"' in html


class TestOverview:
    """The overview over HTTP on the seeded store."""

    def test_a_new_run_shows_at_once(self, served: Served) -> None:
        """The overview's cached reads are dropped when a pair gets a new run."""

        def overview() -> str:
            with urllib.request.urlopen(f"{served.url}/ui/") as answer:
                return str(answer.read().decode())

        first = overview()
        assert ">0.700<" in first  # the latest run: 280 of 400 pass
        assert overview() == first
        keys = [f"i{k}" for k in range(400)]
        seed_run(
            served.store,
            monitor="m",
            endpoint="e",
            started_at=T0 + timedelta(hours=2),
            passed={k: k != "i0" for k in keys},
        )
        assert ">0.998<" in overview()


class TestDiff:
    """Word-level differences of two outputs."""

    def test_one_word_changed(self) -> None:
        """Only the changed word is marked; the rest is shared."""
        left, right = diff_segments("the cat sat on the mat", "the dog sat on the mat")
        assert [p for p in left if p[0] == "del"] == [("del", " cat")]
        assert [p for p in right if p[0] == "ins"] == [("ins", " dog")]

    @given(st.text(max_size=80), st.text(max_size=80))
    @settings(max_examples=200, deadline=None)
    def test_segments_rebuild_both_texts(self, before: str, after: str) -> None:
        """Joining the kept and deleted parts gives `before`; kept and inserted, `after`."""
        left, right = diff_segments(before, after)
        assert "".join(t for k, t in left if k in ("same", "del")) == before
        assert "".join(t for k, t in right if k in ("same", "ins")) == after
        assert all(k != "ins" for k, _ in left)
        assert all(k != "del" for k, _ in right)

    def test_long_outputs_are_not_matched_word_by_word(self) -> None:
        """Past the token cap the differing middle is marked whole (the cost is bounded)."""
        before = "start " + "a " * 3000 + "end"
        after = "start " + "b " * 3000 + "end"
        left, right = diff_segments(before, after)
        assert [k for k, _ in left] == ["same", "del", "same"]
        assert "".join(t for _, t in right) == after


def trend_row(run_id: int, value: float, model: str = "m") -> TrendRun:
    run = Run(run_id, "m", "e", "b", "v1", "schedule", RunStatus.SUCCEEDED, T0, model_id=model)
    return TrendRun(run, ScoreSummary("s", value, value - 0.02, value + 0.02, 100), None, None)


class TestTrendChart:
    """The chart's geometry."""

    def test_one_point_per_run_left_to_right(self) -> None:
        """Points are ordered in x; a higher score is drawn higher (smaller y)."""
        chart = trend_chart([trend_row(1, 0.8), trend_row(2, 0.9), trend_row(3, 0.7)])
        xs = [p.x for p in chart.points]
        assert xs == sorted(xs)
        assert chart.points[1].y < chart.points[0].y < chart.points[2].y
        assert chart.ci_band

    def test_model_change_is_marked(self) -> None:
        """A new model fingerprint draws one marker between the two runs."""
        chart = trend_chart([trend_row(1, 0.8), trend_row(2, 0.8, model="m2")])
        (marker,) = chart.markers
        assert chart.points[0].x < marker.x < chart.points[1].x
        assert "m2" in marker.label
