"""core.atomic: the one atomic-write helper (temp file in the target's directory, fsync, rename; nothing left
behind)."""

import os

import pytest

from hyperstyle_trt.core.atomic import atomic_path, file_mode, write_bytes_atomic, write_json_atomic
from hyperstyle_trt.core.errors import HsError


def _leftovers(d):
    return sorted(p.name for p in d.iterdir() if p.name.startswith("."))


def test_writes_with_the_mode_open_would_give_and_leaves_no_temp(tmp_path):
    p = write_bytes_atomic(tmp_path / "sub" / "a.bin", b"abc")
    assert p.read_bytes() == b"abc"
    assert (p.stat().st_mode & 0o777) == file_mode()
    assert _leftovers(p.parent) == []


def test_failure_inside_the_block_keeps_the_old_file_and_removes_the_temp(tmp_path):
    p = tmp_path / "a.json"
    write_json_atomic(p, {"v": 1})
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_path(p) as tmp:
            tmp.write_text("half")
            assert tmp.parent == p.parent  # same directory: the rename is atomic
            raise RuntimeError("boom")
    assert p.read_text() == '{\n  "v": 1\n}\n'
    assert _leftovers(tmp_path) == []


def test_os_errors_become_one_line_hs_errors(tmp_path):
    (tmp_path / "dir").mkdir()
    with pytest.raises(HsError, match=r"cannot write .*dir: it is a directory"):
        write_bytes_atomic(tmp_path / "dir", b"x")
    (tmp_path / "file").write_text("x")
    with pytest.raises(HsError, match=r"cannot write .*file/b\.bin"):
        write_bytes_atomic(tmp_path / "file" / "b.bin", b"x")
    assert _leftovers(tmp_path) == []


def test_writer_oserror_is_mapped_too(tmp_path):
    with pytest.raises(HsError, match=r"cannot write .*c\.bin: No space left on device"):
        with atomic_path(tmp_path / "c.bin"):
            raise OSError(28, os.strerror(28))
    assert list(tmp_path.iterdir()) == []
