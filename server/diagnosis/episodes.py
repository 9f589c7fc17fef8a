"""Alert episodes: one alert per episode, updated while its condition holds, resolved when it
has not held for a while, re-opened (not duplicated) if it comes back soon after."""

from __future__ import annotations

from .base import SEVERITY_RANK, Finding, Rule, step_str
from .causes import CAUSES, ONSET_SLACK, RECENT, SILENCES
from .state import Episode, RunState

# literature §3.1(3): re-raising the same rule within 200 steps is merged into the last alert
MERGE_GAP = 200

LABELS = {
    "non_finite": "non-finite values",
    "divergence": "the diverging loss",
    "exploding_gradients": "exploding gradients",
    "vanishing_gradients": "vanishing gradients",
    "dead_units": "dead units",
    "no_update": "parameters not being updated",
    "grad_accumulating": "gradients accumulating across steps",
    "lr_jump": "the learning-rate jump",
    "not_learning": "the model not learning",
    "overfitting": "overfitting",
    "label_shift": "the train/validation label shift",
    "large_batch_no_warmup": "a large batch without warm-up",
    "lr_too_high": "a learning rate that is too high",
    "warmup_runaway": "the learning-rate ramp that does not stop",
    "initial_loss": "the initial loss far above chance level",
    "grad_clipping": "gradient clipping on most steps",
    "update_size": "updates far from the size of the weights",
}


def open_onsets(state: RunState) -> dict[str, int]:
    return {r: e.onset_step for r, e in state.episodes.items() if e.status == "open"}


def silenced(state: RunState, rule_id: str) -> bool:
    return any(
        rule_id in SILENCES.get(r, ()) for r, e in state.episodes.items() if e.status == "open"
    )


def record(state: RunState, rule: Rule, finding: Finding | None, step: int) -> bool:
    """Apply one evaluation of ``rule`` at ``step`` to its episode; True when an episode
    opened or closed (the set of open rules changed)."""
    ep = state.episodes.get(rule.id)
    n_eval = state.evals.count
    if finding is None:
        if ep is not None and ep.status == "open":
            since = (
                (n_eval - 1 - ep.last_hold_eval) if rule.on == "eval" else step - ep.last_hold_step
            )
            if since >= rule.clear_after:
                ep.status, ep.resolved_step, ep.dirty = "resolved", step, True
                return True
        return False
    is_open = ep is not None and ep.status == "open"
    if not is_open and silenced(state, rule.id):
        return False
    if ep is None or (ep.status == "resolved" and step - ep.resolved_step > MERGE_GAP):
        ep = state.episodes[rule.id] = Episode(rule.id, step=step, onset_step=finding.onset_step)
        fresh = True
    else:
        fresh = ep.status == "resolved"
        if fresh:
            ep.status = "open"
    if is_open and SEVERITY_RANK[ep.severity] > SEVERITY_RANK[finding.severity]:
        severity = ep.severity  # never downgrade while the episode lasts
    else:
        severity = finding.severity
    ep.severity = severity
    ep.onset_step = min(ep.onset_step, finding.onset_step) if not fresh else finding.onset_step
    ep.message, ep.remedy = finding.message, finding.remedy
    evidence = dict(finding.evidence)
    if "start_step" in evidence:
        evidence["start_step"] = ep.onset_step  # the card's "steps a-b" and the evidence agree
    cause = _cause(state, rule.id, ep.onset_step)
    if cause is not None:
        _blame(ep, cause)
        evidence["caused_by"] = cause
    ep.evidence = evidence
    ep.last_hold_step, ep.last_hold_eval = step, n_eval - 1
    ep.dirty = True
    if fresh or not is_open:
        _link_effects(state, rule.id)
    return not is_open


def _cause(state: RunState, rule_id: str, onset: int) -> dict | None:
    for c in CAUSES.get(rule_id, ()):
        ep = state.episodes.get(c)
        if ep is None or ep.onset_step > onset + ONSET_SLACK:
            continue
        if ep.status == "open" or onset - ep.resolved_step <= RECENT:
            return {"rule": c, "alert_id": ep.alert_id, "step": ep.onset_step}
    return None


def _link_effects(state: RunState, cause_id: str) -> None:
    """A cause raised after its effects: point the open effects at it."""
    cause = state.episodes[cause_id]
    for rid, ep in state.episodes.items():
        if (
            ep.status == "open"
            and rid != cause_id
            and cause_id in CAUSES.get(rid, ())
            and "caused_by" not in ep.evidence
            and cause.onset_step <= ep.onset_step + ONSET_SLACK
        ):
            link = {"rule": cause_id, "alert_id": cause.alert_id, "step": cause.onset_step}
            _blame(ep, link)
            ep.evidence["caused_by"] = link
            ep.dirty = True


def _blame(ep: Episode, cause: dict) -> None:
    """Name the cause in the message, and put "fix the cause first" ahead of the remedy, so a
    symptom's own remedy (e.g. "use He initialisation" for vanishing gradients caused by a
    too-high learning rate) is not read as the fix."""
    label = LABELS.get(cause["rule"], cause["rule"])
    note = f" Likely caused by {label} (step {step_str(cause['step'])})."
    if note not in ep.message:
        ep.message += note
    first = f"First fix the cause, {label} (see its alert); this is a symptom of it. "
    if not ep.remedy.startswith(first):
        ep.remedy = first + ep.remedy
