"""What `InvertWorkflow.run` reports while it works: subclass `RunEvents` and override what you need (hs-invert's
console bar does; every method is a no-op here).

    class Log(RunEvents):
        def batch_done(self, names, seconds):
            print(f"{len(names)} faces in {seconds:.1f} s")

    InvertWorkflow(job).run(events=Log())
"""

from __future__ import annotations

from pathlib import Path


class RunEvents:
    """Callbacks, in the order a run calls them. photo_done: one photo loaded and aligned into `n_faces` faces (0:
    it failed); batch_start / batch_done: one inversion batch (the faces' output names; `seconds`: inversion, edits
    and writes of the batch); failed: a photo or face failed (its results.json record, with `input` and `error`),
    called when it happens; notice: one line worth telling the user (several faces without --all-faces, files
    removed from a previous run)."""

    def photo_done(self, path: Path, n_faces: int) -> None:
        pass

    def batch_start(self, names: list[str]) -> None:
        pass

    def batch_done(self, names: list[str], seconds: float) -> None:
        pass

    def failed(self, record: dict) -> None:
        pass

    def notice(self, text: str) -> None:
        pass
