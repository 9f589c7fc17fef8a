"""``optimizer.step(closure)``: gradients are made inside the step (LBFGS, PyTorch Lightning),
so the hook must measure them after the closure has run, at the step they belong to."""

from __future__ import annotations

import json
import textwrap

import pytest

from tests.support.hook import run_script

CODE = textwrap.dedent("""
    import json
    import torch
    from torch import nn
    import fitscope

    torch.manual_seed(0)
    x, y = torch.randn(64, 4), torch.randint(0, 3, (64,))
    model = nn.Linear(4, 3)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    crit = nn.CrossEntropyLoss()
    run = fitscope.watch(model, opt, crit, name="closure")
    norms = []

    def closure():
        opt.zero_grad()
        loss = crit(model(x), y)
        loss.backward()
        norms.append(torch.cat([p.grad.flatten() for p in model.parameters()]).norm().item())
        return loss

    for i in range(5):
        opt.step(closure) if i % 2 else opt.step(closure=closure)
    run.finish()
    print("RUN", run.id)
    print("NORMS", json.dumps(norms))
""")


def test_grad_norms_of_a_closure_step_belong_to_that_step(server, tmp_path):
    proc = run_script(CODE, tmp_path, server.url)
    assert proc.returncode == 0, proc.stderr
    lines = dict(ln.split(" ", 1) for ln in proc.stdout.splitlines())
    run_id, norms = lines["RUN"], json.loads(lines["NORMS"])
    g = server.api(f"/api/v1/runs/{run_id}/series", key="grad_norm/total")
    assert g["steps"] == [1, 2, 3, 4, 5]
    assert g["values"] == pytest.approx(norms, rel=1e-5)
    assert server.api(f"/api/v1/runs/{run_id}/series", key="train/loss")["steps"] == [1, 2, 3, 4, 5]
