"""The hs-invert workflow (photos -> aligned, inverted, edited outputs and results.json) behind a frozen config:

    from hyperstyle_trt.core.source import ModelSource
    from hyperstyle_trt.runtime.invert import InvertJob, invert_photos

    report = invert_photos(InvertJob(photos=("photos/",), out="out", source=ModelSource(config="tiny"),
                                     edits=("seed:0:-3,3",)))
    report.failed                      # records of photos that failed; OUT/results.json has every record

`job`: InvertJob, EditSpec, parse_edit, seed_direction, collect_photos; `workflow`: InvertWorkflow (load / run);
`events`: RunEvents, what a run reports as it goes; `outputs`: the file writers, the grid, InvertReport and the
manifest of what a run owns. hs-invert (cli/invert.py) is the command line on top.
"""

from hyperstyle_trt.runtime.invert.events import RunEvents
from hyperstyle_trt.runtime.invert.job import EditSpec, InvertJob, collect_photos, parse_edit, seed_direction
from hyperstyle_trt.runtime.invert.outputs import InvertReport
from hyperstyle_trt.runtime.invert.workflow import InvertWorkflow, invert_photos

__all__ = ["EditSpec", "InvertJob", "InvertReport", "InvertWorkflow", "RunEvents", "collect_photos",
           "invert_photos", "parse_edit", "seed_direction"]
