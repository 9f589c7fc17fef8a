"""``tags=`` on ``fitscope.watch`` / ``fitscope.init``: the run arrives tagged, and odd tags
are cleaned rather than failing the run."""

from __future__ import annotations

import torch

from tests.support.hook import classification_data, mlp


def test_watch_sends_tags_with_the_run(app_server):
    x, y = classification_data(64)
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    crit = torch.nn.CrossEntropyLoss()
    run = app_server.watch(
        model, opt, crit, project="t", name="tagged", tags=["baseline", "seed-1"]
    )
    for i in range(0, 64, 16):
        opt.zero_grad()
        crit(model(x[i : i + 16]), y[i : i + 16]).backward()
        opt.step()
    run.finish()
    got = app_server.api(f"/api/v1/runs/{run.id}")
    assert got["tags"] == ["baseline", "seed-1"]
    listed = app_server.api("/api/v1/runs", tag="seed-1")
    assert [r["id"] for r in listed] == [run.id]
    assert listed[0]["last_step"] == 4


def test_init_cleans_odd_tags_instead_of_losing_the_run(app_server):
    class Weird:
        def __str__(self) -> str:
            return "weird\x00one"

    tags = ("  a  ", "a", "", "b\nc", "x" * 100, 7, Weird(), *(f"t{i}" for i in range(40)))
    run = app_server.init(project="t", name="odd", tags=tags)
    run.log({"custom/x": 1.0}, step=1)
    run.finish()
    got = app_server.api(f"/api/v1/runs/{run.id}")["tags"]
    assert got[:5] == ["a", "bc", "x" * 64, "7", "weirdone"]
    assert len(got) == 32
    single = app_server.init(project="t", name="one", tags="solo")
    single.finish()
    assert app_server.api(f"/api/v1/runs/{single.id}")["tags"] == ["solo"]
    none = app_server.init(project="t", name="none", tags=42)  # not a list: no tags, a run
    none.finish()
    assert app_server.api(f"/api/v1/runs/{none.id}")["tags"] == []
