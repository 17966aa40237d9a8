"""Run in the Triton-interpreter worker (plugins._triton.InterpreterWorker pickles arguments and results, so a
buffer the test passes in cannot show what the launcher wrote to it): launch the staged path into a workspace made
here and return it with the output."""

import torch


def staged_into_own_workspace(nbytes: int, fill: int, **kwargs):
    """(y, workspace after the launch): `nbytes` bytes filled with `fill` before mod_conv_staged(**kwargs)."""
    from hyperstyle_trt.plugins.mod_conv.staged import mod_conv_staged

    ws = torch.full((nbytes,), fill, dtype=torch.uint8)
    return mod_conv_staged(**kwargs, workspace=ws), ws
