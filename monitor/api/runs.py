"""Runs, one run, and a run's item results (optionally only the items that flipped)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query

from monitor.api.deps import Daemon, NameFilter, RunId, Store, masked, problems
from monitor.core.model import ItemResult, Run, RunStatus
from monitor.documents import repeats_document, rescore_document, run_document
from monitor.storage import SqlStore

router = APIRouter(prefix="/api/v1")


@router.get("/runs", responses=problems(422, 503))
async def runs(
    db: Store,
    *,
    monitor: NameFilter = None,
    endpoint: NameFilter = None,
    status: RunStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> dict[str, Any]:
    def read() -> list[dict[str, Any]]:
        found = db.list_runs(
            monitor=monitor, endpoint=endpoint, status=status, limit=limit, offset=offset
        )
        ids = [r.id for r in found]
        scores, verdicts = db.run_scores(ids), db.run_verdicts(ids)
        checks = db.judge_checks(ids)
        return [
            run_document(r, scores[r.id], verdicts[r.id], judge_checks=checks.get(r.id, ()))
            for r in found
        ]

    return {"runs": await asyncio.to_thread(read), "limit": limit, "offset": offset}


@router.get("/runs/{run_id}", responses=problems(404, 422, 503))
async def run(run_id: RunId, db: Store) -> dict[str, Any]:
    def read() -> dict[str, Any] | None:
        found = db.get_run(run_id)
        if found is None:
            return None
        return run_document(
            found,
            db.run_scores([run_id])[run_id],
            db.run_verdicts([run_id])[run_id],
            judge_checks=db.judge_checks([run_id]).get(run_id, ()),
        )

    doc = await asyncio.to_thread(read)
    if doc is None:
        raise HTTPException(404, f"no run {run_id}")
    return doc


@router.get("/runs/{run_id}/rescores", responses=problems(404, 422, 503))
async def run_rescores(
    run_id: RunId, db: Store, *, items: Annotated[bool, Query()] = False
) -> dict[str, Any]:
    """The scorers applied to this run's stored outputs afterwards, oldest first; with
    `items=true` their per-item scores and a judge's reasons."""

    def read() -> list[dict[str, Any]] | None:
        if db.get_run(run_id) is None:
            return None
        return [rescore_document(r, items=items) for r in db.rescores([run_id]).get(run_id, [])]

    docs = await asyncio.to_thread(read)
    if docs is None:
        raise HTTPException(404, f"no run {run_id}")
    return {"run_id": run_id, "rescores": docs}


@router.get("/runs/{run_id}/items", responses=problems(404, 422, 503))
async def run_items(
    run_id: RunId,
    *,
    daemon: Daemon,
    db: Store,
    changed: bool = False,
    # with changed=true: only the items one verdict flipped, e.g. a slice's
    # (`exact_match[category=refund]`, the name its verdict has in the run document)
    scorer: Annotated[str | None, Query(max_length=300)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> dict[str, Any]:
    def read() -> dict[str, Any] | None:
        found = db.get_run(run_id)
        if found is None:
            return None
        compared_with: dict[str, Any] | None = None
        if changed:
            items = db.item_results(run_id)
            flips = _changed_items(db, found, items, scorer)
            compared_with = flips["against"]
            keys = flips["keys"]
            items = [i for i in items if i.item_key in keys]
            total, page = len(items), items[offset : offset + limit]
        else:  # only the page is read: a run may hold 10,000 items (benchmarks/history.py)
            total = db.count_item_results(run_id)
            page = db.item_results(run_id, limit=limit, offset=offset)
        stored = db.items_by_key(
            found.benchmark, found.benchmark_version, [i.item_key for i in page]
        )
        return {
            "run_id": run_id,
            "total": total,
            "limit": limit,
            "offset": offset,
            "compared_with": compared_with,
            "items": [
                {
                    "item_key": i.item_key,
                    "input": None if i.item_key not in stored else dict(stored[i.item_key].fields),
                    "reference": None if i.item_key not in stored else stored[i.item_key].reference,
                    "split": None if i.item_key not in stored else stored[i.item_key].split,
                    "output": i.output,
                    "scores": dict(i.scores),
                    "latency_s": i.latency_s,
                    "error": i.error.value if i.error else None,
                    "error_detail": i.error_detail and masked(daemon, i.error_detail),
                    "attempts": i.attempts,
                    "repeats": repeats_document(i),
                }
                for i in page
            ],
        }

    doc = await asyncio.to_thread(read)
    if doc is None:
        raise HTTPException(404, f"no run {run_id}")
    return doc


def _changed_items(
    db: SqlStore, run: Run, items: list[ItemResult], scorer: str | None = None
) -> dict[str, Any]:
    """Items whose outcome differs from the baseline (verdict evidence) or the previous run;
    with `scorer`, as that verdict (or that scorer's scores) says."""
    verdicts = [
        v for v in db.run_verdicts([run.id])[run.id] if scorer is None or v.scorer == scorer
    ]
    flipped = {k for v in verdicts for k in (*v.changed.pass_to_fail, *v.changed.fail_to_pass)}
    if verdicts and any(v.baseline for v in verdicts):
        return {"keys": flipped, "against": {"kind": "baseline", "baseline": verdicts[0].baseline}}
    previous = [
        r
        for r in db.list_runs(monitor=run.monitor, endpoint=run.endpoint, limit=50)
        if r.id < run.id and r.status is RunStatus.SUCCEEDED
    ]
    if not previous:
        return {"keys": set(), "against": None}
    prev = previous[0]
    before = {i.item_key: i for i in db.item_results(prev.id)}
    keys = set()
    for item in items:
        old = before.get(item.item_key)
        if old is None:
            continue
        for name, value in item.scores.items():
            if scorer is not None and name != scorer:
                continue
            if name in old.scores and (value >= 0.5) != (old.scores[name] >= 0.5):
                keys.add(item.item_key)
    return {"keys": keys, "against": {"kind": "previous_run", "run_id": prev.id}}
