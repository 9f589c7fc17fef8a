"""What storage raises; ``app.py`` maps each to its HTTP answer (storage knows no HTTP)."""


class RunNotFound(LookupError):
    def __init__(self, run_id: str) -> None:
        super().__init__(f"no run with id {run_id!r}")
        self.run_id = run_id


class SeriesKindConflict(ValueError):
    """Every series of a batch was left out, at least one because its key already names a
    series of the other kind (scalar vs histogram); ``refused`` says, per key, why."""

    def __init__(self, refused: dict[str, str]) -> None:
        super().__init__("; ".join(refused.values()))
        self.refused = refused


class StaleSeriesIds(Exception):
    """Cached series ids named series that are gone (another server process deleted their
    run): they are forgotten, and the transaction, rolled back, can be tried again."""

    def __init__(self, run_id: str) -> None:
        super().__init__(f"cached series ids of run {run_id!r} were stale")
        self.run_id = run_id
