// invert_images: invert face crops with hs::Inverter and write the reconstructions.
//
//   invert_images [--config tiny] [--checkpoint P --w-encoder P | --export DIR] [--executor torch] [--device cpu]
//                 [--precision fp32] [--max-batch 8] [--iters 5] [--format png|raw] --out DIR FILE...
//
// FILE: a PNG/JPEG (read through the embedded Python's PIL: RGB, resized to the model's input size with PIL's
// bilinear filter, as hyperstyle_trt.runtime.Inverter does for uint8 images) or a raw RGB file (*.rgb / *.raw: exactly S*S*3 bytes
// of uint8 HWC, S = the input size). Writes DIR/<stem>.png, or DIR/<stem>.rgb (uint8 HWC size*size*3) with
// --format raw, atomically (hyperstyle_trt.core.atomic). A bad file is reported ("error: <file>: <msg>") and the others are still
// inverted; the exit status is 1 if any failed, 2 for bad arguments or a model that cannot be built. -h / --help
// prints the usage and the options (exit 0).
#include <pybind11/embed.h>
#include <pybind11/numpy.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "hs/inverter.hpp"

namespace py = pybind11;

namespace {

struct Args {
    hs::Options opt;
    std::string checkpoint, export_dir, out, format = "png";
    std::vector<std::string> files;
};

const char *const kUsage =
    "usage: invert_images [--config NAME] [--checkpoint P --w-encoder P | --export DIR] [--executor E] [--device D]\n"
    "                     [--precision P] [--max-batch N] [--iters T] [--format png|raw] --out DIR FILE...\n";

const char *const kHelp =
    "Invert face crops with hs::Inverter and write the reconstructions to DIR/<stem>.png (or .rgb with --format raw).\n"
    "FILE: a PNG/JPEG (resized to the model's input size) or a raw RGB file (*.rgb / *.raw, S*S*3 bytes of uint8 HWC).\n"
    "  --config NAME       model preset without a checkpoint (embedded default weights), e.g. tiny, ffhq1024\n"
    "  --checkpoint P      HyperStyle checkpoint (with --w-encoder P); --export DIR: an hs-export directory\n"
    "  --executor E        torch | tensorrt | onnxruntime;  --device D: cpu | cuda[:N];  --precision P: fp32 | fp16\n"
    "  --max-batch N       images per Inverter call;  --iters T: HyperStyle iterations (default 5)\n"
    "  --format png|raw    output files (default png);  --out DIR: where they go (required)\n"
    "  -h, --help          this text\n"
    "Exit status: 0 all inverted, 1 some failed, 2 bad arguments or a model that cannot be built.\n";

[[noreturn]] void usage(const std::string &msg) {
    std::fprintf(stderr, "error: %s\n%s", msg.c_str(), kUsage);
    std::exit(2);
}

int to_int(const std::string &flag, const std::string &v) {
    try {
        size_t used = 0;
        int n = std::stoi(v, &used);
        if (used == v.size()) return n;
    } catch (...) {
    }
    usage(flag + " expects an integer, got '" + v + "'");
}

Args parse(int argc, char **argv) {
    Args a;
    a.opt.n_iters = 5;
    for (int i = 1; i < argc; ++i) {
        std::string f = argv[i];
        auto val = [&]() -> std::string {
            if (i + 1 >= argc) usage(f + " needs a value");
            return argv[++i];
        };
        if (f == "-h" || f == "--help") {
            std::printf("%s%s", kUsage, kHelp);
            std::exit(0);
        }
        if (f == "--config") a.opt.config = val();
        else if (f == "--checkpoint") a.checkpoint = val();
        else if (f == "--w-encoder") a.opt.w_encoder = val();
        else if (f == "--export") a.export_dir = val();
        else if (f == "--executor") a.opt.executor = val();
        else if (f == "--device") a.opt.device = val();
        else if (f == "--precision") a.opt.precision = val();
        else if (f == "--max-batch") a.opt.max_batch = to_int(f, val());
        else if (f == "--iters") a.opt.n_iters = to_int(f, val());
        else if (f == "--format") a.format = val();
        else if (f == "--out") a.out = val();
        else if (f.rfind("--", 0) == 0) usage("unknown option " + f);
        else a.files.push_back(f);
    }
    if (a.out.empty()) usage("--out DIR is required");
    if (a.files.empty()) usage("no input files");
    if (a.format != "png" && a.format != "raw") usage("--format must be png or raw, got " + a.format);
    return a;
}

bool is_raw(const std::string &p) {
    auto dot = p.rfind('.');
    std::string ext = dot == std::string::npos ? "" : p.substr(dot);
    return ext == ".rgb" || ext == ".raw";
}

std::string stem(const std::string &p) {
    std::string base = p.substr(p.find_last_of('/') + 1);
    auto dot = base.rfind('.');
    return dot == std::string::npos || dot == 0 ? base : base.substr(0, dot);
}

// One file -> S*S*3 uint8 HWC bytes; throws hs::Error(User) with a one-line message.
std::vector<uint8_t> load(const std::string &path, int s) {
    if (is_raw(path)) {
        std::ifstream f(path, std::ios::binary);
        if (!f) throw hs::Error(hs::Status::User, "cannot open " + path);
        std::vector<uint8_t> v((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
        size_t want = static_cast<size_t>(s) * s * 3;
        if (v.size() != want) {
            throw hs::Error(hs::Status::User, path + ": " + std::to_string(v.size()) + " bytes, expected " +
                                                  std::to_string(want) + " (raw uint8 RGB " + std::to_string(s) + "x" +
                                                  std::to_string(s) + ", HWC)");
        }
        return v;
    }
    py::gil_scoped_acquire gil;  // PIL through the embedded interpreter (no image library to link)
    try {
        py::dict l;
        l["path"] = path;
        l["s"] = s;
        py::exec(R"(
import numpy as np
from PIL import Image, UnidentifiedImageError
from hyperstyle_trt.core.errors import HsError
try:
    with Image.open(path) as im:
        im = im.convert("RGB")
        if im.size != (s, s):
            im = im.resize((s, s), Image.BILINEAR)
        arr = np.ascontiguousarray(np.asarray(im, dtype=np.uint8))
except FileNotFoundError:
    raise HsError(f"input image not found: {path}") from None
except (UnidentifiedImageError, OSError) as e:
    raise HsError(f"cannot read {path} as an image ({type(e).__name__}); expected a PNG/JPEG face crop") from None
)", py::globals(), l);
        auto arr = l["arr"].cast<py::array_t<uint8_t, py::array::c_style>>();
        return std::vector<uint8_t>(arr.data(), arr.data() + arr.size());
    } catch (py::error_already_set &e) {
        throw hs::Error(hs::Status::User, py::str(e.value()).cast<std::string>());
    }
}

// size*size*3 uint8 HWC -> DIR/<stem>.png|.rgb, written atomically by hyperstyle_trt.core.atomic.
void save(const std::string &path, const uint8_t *hwc, int size, bool png) {
    py::gil_scoped_acquire gil;
    try {
        py::dict l;
        l["path"] = path;
        l["data"] = py::bytes(reinterpret_cast<const char *>(hwc), static_cast<size_t>(size) * size * 3);
        l["size"] = size;
        l["png"] = png;
        py::exec(R"(
import io
import numpy as np
from PIL import Image
from hyperstyle_trt.core.atomic import write_bytes_atomic
if png:
    buf = io.BytesIO()
    Image.fromarray(np.frombuffer(data, np.uint8).reshape(size, size, 3)).save(buf, format="PNG")
    data = buf.getvalue()
write_bytes_atomic(path, data)
)", py::globals(), l);
    } catch (py::error_already_set &e) {
        throw hs::Error(hs::Status::User, py::str(e.value()).cast<std::string>());
    }
}

}  // namespace

int main(int argc, char **argv) {
    Args a = parse(argc, argv);
    hs::Inverter inv = [&] {
        try {
            return a.export_dir.empty() ? hs::Inverter::from_checkpoint(a.checkpoint, a.opt)
                                        : hs::Inverter::from_export(a.export_dir, a.opt);
        } catch (const hs::Error &e) {
            std::fprintf(stderr, "error: %s\n", e.what());
            std::exit(2);
        }
    }();
    const hs::Info info = inv.info();
    const int s = info.input_size, n = info.size;
    int failed = 0, done = 0;

    // Load every file (a bad one is reported and skipped), then invert in batches of up to max_batch.
    std::vector<std::string> names;
    std::vector<uint8_t> pixels;
    for (const auto &f : a.files) {
        try {
            std::vector<uint8_t> v = load(f, s);
            pixels.insert(pixels.end(), v.begin(), v.end());
            names.push_back(f);
        } catch (const hs::Error &e) {
            std::fprintf(stderr, "error: %s\n", e.what());
            ++failed;
        }
    }
    const size_t in_bytes = static_cast<size_t>(s) * s * 3, out_bytes = static_cast<size_t>(n) * n * 3;
    std::vector<uint8_t> out;
    for (size_t i = 0; i < names.size(); i += info.max_batch) {
        int b = static_cast<int>(std::min(names.size() - i, static_cast<size_t>(info.max_batch)));
        out.assign(b * out_bytes, 0);
        try {
            inv.invert(hs::Tensor::host(pixels.data() + i * in_bytes, hs::DType::UInt8, {b, s, s, 3}),
                       hs::Tensor::host(out.data(), hs::DType::UInt8, {b, n, n, 3}));
        } catch (const hs::Error &e) {
            std::fprintf(stderr, "error: %s\n", e.what());
            failed += b;
            continue;
        }
        for (int j = 0; j < b; ++j) {
            const std::string &src = names[i + j];
            std::string dst = a.out + "/" + stem(src) + (a.format == "png" ? ".png" : ".rgb");
            try {
                save(dst, out.data() + j * out_bytes, n, a.format == "png");
                std::printf("%s -> %s\n", src.c_str(), dst.c_str());
                ++done;
            } catch (const hs::Error &e) {
                std::fprintf(stderr, "error: %s\n", e.what());
                ++failed;
            }
        }
    }
    std::printf("inverted %d of %zu file(s) (%dx%d -> %dx%d, T=%d)\n", done, a.files.size(), s, s, n, n,
                info.n_iters);
    return failed == 0 ? 0 : 1;
}
