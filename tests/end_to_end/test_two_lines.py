"""The walking skeleton end to end: a real training script with the two lines, a real server."""

from __future__ import annotations

import textwrap

from tests.support.hook import run_script

TRAIN = textwrap.dedent("""
    import torch
    from torch import nn
    import fitscope

    torch.manual_seed(0)
    x = torch.randn(256, 10)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
    xv, yv = torch.randn(128, 10), torch.randint(0, 3, (128,))
    model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 3))
    optimizer = torch.optim.SGD([
        {"params": model[0].parameters(), "lr": 0.1},
        {"params": model[2].parameters(), "lr": 0.05},
    ], momentum=0.9)
    criterion = nn.CrossEntropyLoss()

    run = fitscope.watch(model, optimizer, criterion, project="e2e", name="tiny", config={"epochs": 3})
    print("URL", run.url)
    for epoch in range(3):
        model.train()
        for i in range(0, 256, 32):           # 8 steps per epoch
            optimizer.zero_grad()
            loss = criterion(model(x[i:i + 32]), y[i:i + 32])
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            for i in range(0, 128, 64):       # one evaluation pass of 2 batches
                criterion(model(xv[i:i + 64]), yv[i:i + 64])
    run.log({"custom/metric": 1.5})
    # no run.finish(): it must happen at interpreter exit
""")


def test_two_lines_stream_every_key(server, tmp_path):
    proc = run_script(TRAIN, tmp_path, server.url)
    assert proc.returncode == 0, proc.stderr
    assert "could not be delivered" not in proc.stderr
    url = next(line.split()[1] for line in proc.stdout.splitlines() if line.startswith("URL"))
    run_id = url.rsplit("/", 1)[1]
    assert url == f"{server.url}/runs/{run_id}"

    runs = server.api("/api/v1/runs")
    assert [r["id"] for r in runs] == [run_id]
    assert (
        runs[0]["status"] == "finished"
        and runs[0]["project"] == "e2e"
        and runs[0]["name"] == "tiny"
    )
    run = server.api(f"/api/v1/runs/{run_id}")
    assert run["config"]["epochs"] == 3
    assert run["config"]["fitscope"]["optimizer"]["class"] == "SGD"

    counts = {k["key"]: (k["kind"], k["count"]) for k in server.api(f"/api/v1/runs/{run_id}/keys")}
    expected = {
        "train/loss": 24,
        "grad_norm/total": 24,
        "grad_norm/0": 24,
        "grad_norm/2": 24,
        "lr/0": 24,
        "lr/1": 24,
        "val/loss": 3,
        "val/accuracy": 3,
    }
    for key, n in expected.items():
        assert counts.get(key) == ("scalar", n), (key, counts.get(key))
    assert counts["val/confidence"] == ("histogram", 3)
    assert counts["custom/metric"] == ("scalar", 1)

    loss = server.api(f"/api/v1/runs/{run_id}/series", key="train/loss")
    assert loss["steps"] == list(range(1, 25))
    assert all(isinstance(v, float) and 0 < v < 5 for v in loss["values"])
    val = server.api(f"/api/v1/runs/{run_id}/series", key="val/loss")
    assert val["steps"] == [8, 16, 24]
    lr1 = server.api(f"/api/v1/runs/{run_id}/series", key="lr/1")
    assert set(lr1["values"]) == {0.05}
    acc = server.api(f"/api/v1/runs/{run_id}/series", key="val/accuracy")
    hist = server.api(f"/api/v1/runs/{run_id}/histograms", key="val/confidence")["histograms"]
    assert [h["step"] for h in hist] == [8, 16, 24]
    for h, a in zip(hist, acc["values"], strict=True):
        assert sum(h["counts"]) == 128
        assert abs(sum(h["correct"]) / 128 - a) < 1e-9
    assert server.api(f"/api/v1/runs/{run_id}/alerts") == []
