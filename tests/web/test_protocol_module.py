"""The web's one source of metric keys, float strings and API paths: ``/static/protocol.js``,
generated from ``fitscope.protocol``; the dashboard's own files spell none of them out."""

from __future__ import annotations

import json
import re

from fitscope import protocol
from fitscope_server.security import CSP
from fitscope_web import STATIC_DIR


def _constants(namespace: type) -> dict[str, str]:
    return {k: v for k, v in vars(namespace).items() if k.isupper() and isinstance(v, str)}


def test_protocol_module_is_served_as_javascript_from_the_protocol(client):
    r = client.get("/static/protocol.js")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/javascript")
    assert r.headers["content-security-policy"] == CSP
    text = r.text
    for name, value in {**_constants(protocol.KEYS), **_constants(protocol.PREFIXES)}.items():
        assert f"{json.dumps(name)}: {json.dumps(value)}" in text, name
    for value in (protocol.NAN, protocol.POS_INF, protocol.NEG_INF, protocol.paths.RUNS):
        assert json.dumps(value) in text, value
    assert f"export const PROTOCOL_VERSION = {protocol.PROTOCOL_VERSION};" in text
    # the other static files are still served from the folder
    assert client.get("/static/common.js").status_code == 200


def test_pages_load_one_entry_module_and_no_inline_script():
    for page, entry in (
        ("index.html", "runs.js"),
        ("run.html", "run.js"),
        ("compare.html", "compare.js"),
    ):
        html = (STATIC_DIR / page).read_text()
        modules = re.findall(r'<script type="module" src="/static/([\w.-]+)"></script>', html)
        assert modules == [entry], page
        assert not re.search(r"<script(?![^>]*\bsrc=)", html), f"inline script in {page}"


def test_web_files_do_not_spell_out_keys_paths_or_float_strings():
    literals = [*_constants(protocol.KEYS).values(), *_constants(protocol.PREFIXES).values()]
    literals = [v for v in literals if "/" in v]  # "epoch" is also the x axis mode's name
    literals += [protocol.API_PREFIX, protocol.POS_INF, protocol.NEG_INF]
    for path in sorted(STATIC_DIR.glob("*.js")):
        code = re.sub(r"(^|\s)//.*", "", path.read_text())  # comments may name them
        for value in literals:
            quoted = re.search(rf"""["'`]{re.escape(value)}""", code)
            assert quoted is None, f"{path.name} spells out {value!r}: import it from protocol.js"
