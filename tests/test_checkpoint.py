"The persistence layer: one format with a version, migration of version-1 files, clear errors for damaged files and other architectures."
import argparse, dataclasses
from pathlib import Path
import pytest
import torch
from dualdistill.checkpoint import (CHECKPOINT_FORMAT, CheckpointError, check_state_dict, checkpoints, load_run, load_student, load_student_weights,
                                    read_checkpoint, save_student)
from dualdistill.student import ArchitectureError, Student
from dualdistill.sensors import DEO_BANDS, DualDistillError
from dualdistill.train import Trainer
from test_train import ema_of, tiny, weights

def as_version_1(ck: dict) -> dict:
    "A current pretraining checkpoint written the way version 1 wrote it (key layout of the code before the backbone seam)."
    old = {k: v for k, v in ck.items() if k not in ("version", "kind", "band_set", "architecture")}
    strip = lambda sd, prefix: None if sd is None else {k.replace(prefix, prefix.replace("backbone.", ""), 1): v for k, v in sd.items()}
    old.update(format="dualdistill.pretrain/1", student=strip(ck["student"], "backbone."), ema=strip(ck["ema"], "module.backbone."),
               student_config={k: v for k, v in ck["student_config"].items() if k != "backbone"},
               objective={k.replace(".fn.", ".", 1): v for k, v in ck["objective"].items()},
               stats={k: v for k, v in ck["stats"].items() if k != "rgb_max_scaled"})
    assert any(k.startswith("body.") for k in old["student"]) and any(k.startswith("module.body.") for k in old["ema"])
    return old

def test_format_is_versioned_and_plain(tmp_path):
    Trainer(tiny(steps=2), tmp_path).fit(progress=False)
    raw = torch.load(checkpoints(tmp_path)[-1], weights_only=True)
    assert (raw["format"], raw["version"], raw["kind"]) == (CHECKPOINT_FORMAT, 2, "pretrain")
    assert raw["stats"]["rgb_max_scaled"] is True and raw["band_set"]["name"] and raw["architecture"]["backbone"] == "vit"

def test_version_1_checkpoint_loads_and_resumes_exactly(tmp_path):
    full = Trainer(tiny(steps=4), tmp_path / "full"); full.fit(progress=False)
    part = Trainer(tiny(steps=4), tmp_path / "part"); part.fit(until=2, progress=False)
    path = checkpoints(tmp_path / "part")[-1]
    torch.save(as_version_1(read_checkpoint(path)), path)
    assert torch.load(path, weights_only=True)["format"] == "dualdistill.pretrain/1"
    run = load_run(path)
    assert all(torch.equal(a, b) for a, b in zip(run.student.state_dict().values(), part.student.state_dict().values()))
    assert all(torch.equal(a, b) for a, b in zip(run.ema.state_dict().values(), ema_of(part).module.state_dict().values()))
    resumed = Trainer(tiny(steps=4), tmp_path / "part", resume=True)
    assert resumed.step == 2
    resumed.fit(progress=False)
    a, b = weights(full), weights(resumed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

def test_version_1_student_file_loads(tmp_path):
    torch.manual_seed(0)
    st = Student(DEO_BANDS, "tiny", depth=1, mid_block=0, head_hidden=8, teacher_dim=8)
    old = dict(format="dualdistill.student/1", config={k: v for k, v in st.config.items() if k != "backbone"}, architecture={},
               bands=dict(name=DEO_BANDS.name, rgb=list(DEO_BANDS.rgb), bands=[[b.name, b.common_name, b.wavelength, b.bandwidth, b.gsd] for b in DEO_BANDS]),
               state_dict={k.removeprefix("backbone."): v for k, v in st.state_dict().items()})
    torch.save(old, tmp_path / "old.pt")
    again = load_student(tmp_path / "old.pt")
    assert again.bands.names == DEO_BANDS.names and all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), st.state_dict().values()))

@pytest.mark.parametrize("content,fragment", [(b"", "found an empty file"), (b"garbage", "found a damaged or foreign file"),
                                              (None, "never unpickled")])
def test_damaged_files_get_one_clear_line(tmp_path, content, fragment):
    path = tmp_path / "checkpoint_00000001.pt"
    if content is None: torch.save({"format": CHECKPOINT_FORMAT, "x": argparse.Namespace(a=1)}, path)
    else: path.write_bytes(content)
    with pytest.raises(CheckpointError, match=fragment) as e: read_checkpoint(path)
    assert isinstance(e.value, DualDistillError) and "\n" not in str(e.value) and "weights_only=False" not in str(e.value)

def test_truncated_checkpoint(tmp_path):
    Trainer(tiny(steps=2), tmp_path).fit(progress=False)
    path = checkpoints(tmp_path)[-1]
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="damaged or foreign"): load_run(path)

def test_another_architecture_names_keys_and_shapes(tmp_path):
    Trainer(tiny(steps=2), tmp_path).fit(progress=False)
    ck = read_checkpoint(checkpoints(tmp_path)[-1])
    other = Student(DEO_BANDS, "tiny", depth=3, mid_block=0, head_hidden=32, teacher_dim=ck["student_config"]["teacher_dim"])
    with pytest.raises(ArchitectureError, match=r"depth: expected 3, found 2;.*missing \['backbone\.body\.blocks\.2\."):
        load_student_weights(other, ck)
    wide = torch.nn.Linear(4, 3)
    with pytest.raises(ArchitectureError, match=r"weight: expected \(3, 4\), found \(3, 5\)"):
        check_state_dict(wide, {"weight": torch.zeros(3, 5), "bias": torch.zeros(3)}, "a state")

def test_student_file_is_not_a_run(tmp_path):
    st = Student(DEO_BANDS, "tiny", depth=1, mid_block=0, head_hidden=8, teacher_dim=8)
    save_student(st, tmp_path / "s.pt")
    with pytest.raises(CheckpointError, match="kind 'student'"): load_run(tmp_path / "s.pt")

def test_evaluation_and_maps_do_not_import_training():
    import subprocess, sys
    code = "import sys, dualdistill.evaluate, dualdistill.maps, dualdistill.benchmarks; print('dualdistill.train' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"
