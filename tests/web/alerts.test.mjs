import assert from "node:assert/strict";
import { test } from "node:test";

import { load } from "./static.mjs";

const alerts = await load("alerts.js");

const alert = (id, fields = {}) => ({ id, status: "open", severity: "warning", step: 10, rule: `rule${id}`, message: "m", ...fields });
const causedBy = (id) => ({ caused_by: { alert_id: id } });

test("zoomRange pads a short condition on both sides", () => {
  assert.deepEqual(alerts.zoomRange(alert(1, { step: 120, evidence: { start_step: 100, end_step: 120 } })), [97, 123]);
  assert.deepEqual(alerts.zoomRange(alert(1, { step: 5 })), [3, 7], "at least 2 steps either side");
  assert.deepEqual(alerts.zoomRange(alert(1, { step: 1, evidence: { start_step: 0, end_step: 1 } })), [0, 3], "never before step 0");
});

test("zoomRange centres a long condition on its onset", () => {
  const a = alert(1, { step: 1000, onset_step: 400, evidence: { start_step: 0, end_step: 1000 } });
  assert.deepEqual(alerts.zoomRange(a), [300, 500]);
  const noOnset = alert(2, { step: 1000, evidence: { start_step: 200, end_step: 1000 } });
  assert.deepEqual(alerts.zoomRange(noOnset), [120, 280], "from the evidence start");
  const early = alert(3, { step: 500, onset_step: 10, evidence: { start_step: 100, end_step: 500 } });
  assert.deepEqual(alerts.zoomRange(early), [60, 140], "an onset outside the evidence is clamped into it");
});

test("zoomRange accepts a reversed evidence range", () => {
  assert.deepEqual(alerts.zoomRange(alert(1, { step: 0, evidence: { start_step: 20, end_step: 10 } })), [8, 22]);
});

test("sorted: open first, then severity, then latest", () => {
  const list = [
    alert(1, { status: "resolved", severity: "critical" }),
    alert(2, { severity: "info", step: 50 }),
    alert(3, { severity: "critical", step: 5 }),
    alert(4, { severity: "critical", step: 9 }),
  ];
  assert.deepEqual(alerts.sorted(list).map((a) => a.id), [4, 3, 2, 1]);
});

test("health is the worst open alert, headlined by its root cause", () => {
  assert.deepEqual(alerts.health([alert(1, { status: "resolved" })]).level, "ok");
  const list = [
    alert(1, { rule: "exploding_gradients", severity: "warning" }),
    alert(2, { rule: "nan_loss", severity: "critical", evidence: causedBy(1) }),
    alert(3, { rule: "lr_too_high", severity: "info" }),
  ];
  const h = alerts.health(list);
  assert.equal(h.level, "critical");
  assert.equal(h.worst.id, 1);
  assert.deepEqual(h.effects.map((a) => a.id), [2]);
  assert.equal(h.label, "critical: exploding_gradients +2");
});

test("health ignores a cause that is not open, and survives a cycle", () => {
  const h = alerts.health([alert(2, { severity: "critical", evidence: causedBy(1) })]);
  assert.equal(h.worst.id, 2);
  const loop = alerts.health([alert(1, { evidence: causedBy(2) }), alert(2, { evidence: causedBy(1) })]);
  assert.ok([1, 2].includes(loop.worst.id));
});

test("causalOrder puts each cause before its effects", () => {
  const list = [alert(3, { evidence: causedBy(2) }), alert(2, { evidence: causedBy(1) }), alert(1), alert(4)];
  assert.deepEqual(alerts.causalOrder(list).map((a) => a.id), [1, 2, 3, 4]);
});

test("label prefers the alert's own evidence label, then ours, then the key", () => {
  assert.equal(alerts.label({ evidence_labels: { gl: "GL" } }, "gl"), "GL");
  assert.equal(alerts.label({}, "gl"), "generalization loss");
  assert.equal(alerts.label(null, "some_key"), "some key");
});
