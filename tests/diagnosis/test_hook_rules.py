"""``fitscope.watch(..., rules=...)`` reaches the server as config["fitscope"]["rules"]."""

from __future__ import annotations

import textwrap

from tests.support.hook import run_script

SCRIPT = textwrap.dedent("""
    import math, torch
    from torch import nn
    import fitscope

    for name, rules in (("off", {"non_finite": False}), ("default", None)):
        model = nn.Linear(4, 2)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        crit = nn.CrossEntropyLoss()
        run = fitscope.watch(model, opt, crit, name=name, rules=rules)
        x, y = torch.randn(8, 4), torch.randint(0, 2, (8,))
        for i in range(60):
            opt.zero_grad()
            loss = crit(model(x * (math.nan if i >= 30 else 1.0)), y)
            loss.backward()
            opt.step()
        run.finish()
        print("RUN", name, run.id)
""")


def test_rules_keyword_is_stored_and_applied(server, tmp_path) -> None:
    proc = run_script(SCRIPT, tmp_path, server.url)
    assert proc.returncode == 0, proc.stderr
    ids = dict(ln.split()[1:] for ln in proc.stdout.splitlines() if ln.startswith("RUN"))
    run = server.api(f"/api/v1/runs/{ids['off']}")
    assert run["config"]["fitscope"]["rules"] == {"non_finite": False}
    assert run["config"]["fitscope"]["optimizer"]["class"] == "SGD"
    off = [a["rule"] for a in server.api(f"/api/v1/runs/{ids['off']}/alerts")]
    default = [a["rule"] for a in server.api(f"/api/v1/runs/{ids['default']}/alerts")]
    assert "non_finite" not in off and "non_finite" in default
