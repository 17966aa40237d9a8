"""ONNX -> TensorRT network through Polygraphy's loaders, bound to the flavor this process builds with.

    net = parse_onnx(Path("hypernet_plugin_fp16.onnx"))      # strongly typed; plugin creators registered first
    net.network.num_layers, net.network.get_output(0).dtype  # inspect it
    blob = builder.build_network(net, BuildOptions(...))     # engines/builder.py
    net.close()                                              # parser, network, builder: in that order

Polygraphy picks its TensorRT module once, when `polygraphy.backend.trt` is first imported
(`polygraphy.config.USE_TENSORRT_RTX`, from the env var POLYGRAPHY_USE_TENSORRT_RTX); `polygraphy_trt(flavor)` sets
it from core.flavor before that import and refuses a process where Polygraphy was already bound to the other flavor.
Polygraphy prints its log to stdout; `polygraphy_log()` keeps its ERROR / CRITICAL messages in a list instead (for
one-line HsErrors) and prints nothing, so CLI output stays clean.

Hand-written where Polygraphy has no equivalent: an in-memory model whose external weights lie beside a file
(`external_data_path`; the AOT route, plugins/qdp.py): Polygraphy's NetworkFromOnnxBytes calls
`parser.parse(model_bytes)` with no path, so this uses Polygraphy's `create_network` and logger with
`OnnxParser.parse(blob, path)`.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from pathlib import Path

from hyperstyle_trt.core.errors import HsError, one_line
from hyperstyle_trt.core.flavor import Flavor, get_flavor


def polygraphy_trt(fl: Flavor):
    """`polygraphy.backend.trt` driving `fl.module` (tensorrt or tensorrt_rtx). HsError (one line) when Polygraphy
    was imported earlier in this process for the other flavor, or cannot drive this one."""
    import polygraphy.config as pcfg

    if "polygraphy.backend.trt" not in sys.modules:
        pcfg.USE_TENSORRT_RTX = fl.is_rtx  # read when polygraphy.backend.trt binds its lazy TensorRT module
    from polygraphy.backend import trt as ptrt
    from polygraphy.backend.trt import loader

    try:
        bound = loader.trt.Builder is fl.module.Builder
    except Exception as e:  # the other flavor's lazy module failed to import
        bound, why = False, f": {type(e).__name__}: {one_line(e)}"
    else:
        why = ""
    if not bound and bool(pcfg.USE_TENSORRT_RTX) == fl.is_rtx:
        raise HsError(f"Polygraphy cannot drive {fl.name} {fl.version}{why}")
    if not bound:
        other = "tensorrt_rtx" if pcfg.USE_TENSORRT_RTX else "tensorrt"
        raise HsError(f"Polygraphy is bound to {other} in this process, but engines are built with {fl.name}{why}; "
                      f"set POLYGRAPHY_USE_TENSORRT_RTX={int(fl.is_rtx)} before anything imports polygraphy")
    return ptrt


@contextlib.contextmanager
def polygraphy_log():
    """While inside: Polygraphy prints nothing, and its ERROR / CRITICAL messages (TensorRT's errors, the parser's
    errors, the reason it raised) are appended, plain text, to the yielded list. Restores the logger on exit."""
    from polygraphy.logger import G_LOGGER

    kept: list[str] = []

    class _Keep(logging.Handler):
        def emit(self, record):
            kept.append(record.getMessage())

    py = logging.getLogger("Polygraphy")
    handler = _Keep(logging.ERROR)
    saved = (G_LOGGER.use_python_logging_system, G_LOGGER.letter, G_LOGGER.colors, py.propagate)
    py.addHandler(handler)
    py.propagate = False
    G_LOGGER.use_python_logging_system, G_LOGGER.letter, G_LOGGER.colors = True, False, False
    try:
        with G_LOGGER.verbosity(G_LOGGER.ERROR):
            yield kept
    finally:
        G_LOGGER.use_python_logging_system, G_LOGGER.letter, G_LOGGER.colors, py.propagate = saved
        py.removeHandler(handler)


def last_error(kept: list[str], exc: BaseException) -> str:
    """The last error TensorRT / the parser reported before Polygraphy raised `exc`, as one line (else `exc`)."""
    errs = [m for m in kept if m.strip() and m != str(exc)]
    return one_line(errs[-1] if errs else exc)


class Network:
    """A parsed, strongly typed TensorRT network: `builder`, `network`, `parser` (the parser owns the network's
    weights), `flavor`, `name` (for messages). `close()` frees them parser, network, builder, in that order (a
    builder freed before its network leaves the network dangling: a crash at some later, unrelated point); leaving
    a `with` block or garbage collection closes it too."""

    def __init__(self, flavor: Flavor, name: str, builder, network, parser):
        self.flavor, self.name = flavor, name
        self.builder, self.network, self.parser = builder, network, parser

    def close(self) -> None:
        self.parser = None
        self.network = None
        self.builder = None

    def __enter__(self) -> "Network":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        self.close()


def _register_python_plugins(fl: Flavor, source) -> None:
    """Register the IPluginV3 creators when the graph has hyperstyle plugin nodes (before the parser meets them)."""
    if isinstance(source, Path):
        from hyperstyle_trt.export.onnx_io import plugin_versions

        uses = bool(plugin_versions(source))
    else:
        from hyperstyle_trt.plugins.onnx_export import is_plugin_node

        uses = any(is_plugin_node(n) for n in source.graph.node)
    if uses:
        from hyperstyle_trt.plugins.trt_common import register_plugins

        register_plugins(fl.name)


def parse_onnx(source, flavor: Flavor | None = None, external_data_path: Path | None = None,
               register: bool = True) -> Network:
    """Parse `source` into a strongly typed network (precision comes from the ONNX tensor types): a Path (external
    data beside it: Polygraphy's NetworkFromOnnxPath), an onnx.ModelProto or serialized bytes (NetworkFromOnnxBytes;
    with `external_data_path`, the file whose directory holds the external weights). `register`: register the
    Python plugin creators first when the graph uses hyperstyle plugins (bytes are not inspected). HsError with the
    parser's last error, in one line, on failure."""
    fl = flavor or get_flavor()
    ptrt = polygraphy_trt(fl)
    if isinstance(source, (str, Path)):
        source = Path(source)
        name, blob = source.name, None
    else:
        blob = source if isinstance(source, (bytes, bytearray)) else source.SerializeToString()
        name = Path(external_data_path).name if external_data_path else "the in-memory model"
    if register and not isinstance(source, (bytes, bytearray)):
        _register_python_plugins(fl, source)
    from polygraphy.exception import PolygraphyException

    with polygraphy_log() as kept:
        try:
            if blob is None:
                builder, network, parser = ptrt.NetworkFromOnnxPath(str(source), strongly_typed=True)()
            elif external_data_path is None:
                builder, network, parser = ptrt.NetworkFromOnnxBytes(bytes(blob), strongly_typed=True)()
            else:
                builder, network, parser = _parse_bytes_at(ptrt, fl.module, bytes(blob), Path(external_data_path))
        except PolygraphyException as e:
            raise HsError(f"TensorRT ({fl.name}) could not parse {name}: {last_error(kept, e)}") from None
    return Network(fl, name, builder, network, parser)


def _parse_bytes_at(ptrt, trt, blob: bytes, path: Path):
    """(builder, network, parser) of `blob`, its external weights located by `path` (no Polygraphy loader takes
    both). Raises PolygraphyException as Polygraphy's loaders do."""
    from polygraphy.backend.trt import util as trt_util

    builder, network = ptrt.create_network(strongly_typed=True)
    parser = trt.OnnxParser(network, trt_util.get_trt_logger())
    try:
        trt_util.check_onnx_parser_errors(parser, parser.parse(blob, str(path)))
    except BaseException:
        del parser, network, builder  # in dependency order
        raise
    return builder, network, parser
