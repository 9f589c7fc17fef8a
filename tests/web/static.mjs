// The dashboard's modules, importable here: node loads them from a copy of web/static with the
// generated protocol.js beside them, since the server writes that module from fitscope.protocol
// rather than keeping a copy on disk. test_js_units.py builds the copy once and names it in
// FITSCOPE_WEB_STATIC; run alone (`node --test tests/web/`), each test file builds its own with
// the Python in FITSCOPE_PYTHON (default: python3), which must import fitscope_server.
import { execFileSync } from "node:child_process";
import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

function build() {
  const src = fileURLToPath(new URL("../../web/static/", import.meta.url));
  const dir = mkdtempSync(join(tmpdir(), "fitscope-web-"));
  process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
  cpSync(src, dir, { recursive: true, filter: (p) => !p.endsWith(".html") && !p.includes("__pycache__") });
  const code = "import sys; from fitscope_server.web import protocol_module; sys.stdout.write(protocol_module())";
  writeFileSync(join(dir, "protocol.js"), execFileSync(process.env.FITSCOPE_PYTHON || "python3", ["-c", code]));
  return dir;
}

const DIR = process.env.FITSCOPE_WEB_STATIC || build();

// The module web/static/<name>, e.g. `await load("series.js")`.
export function load(name) {
  return import(pathToFileURL(join(DIR, name)).href);
}
