"""Issue 15: signals and exact resume, output folders kept whole, OS trouble (full, read-only, file in the way, damaged tiles),
arguments checked before any work, degenerate data, no long silence, and one clear line for a bad checkpoint."""
import errno, json, os, re, shutil, signal, subprocess, sys, threading, time, warnings
from pathlib import Path
import numpy as np
import pytest
import rasterio
import torch
from dualdistill.cli import main
from dualdistill.data import ChipDataset, DamagedRasterError, DataWarning, FileSystemError, Scene, sample_scene, write_geotiff
from dualdistill.sensors import DualDistillError
from dualdistill.train import CheckpointError, DataConfig, Trainer, build_scenes, checkpoints, read_checkpoint, read_metrics, save_config
from test_train import DUALDISTILL, tiny

PY = sys.executable

# --- data -------------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def rasters(tmp_path_factory):
    "Small 13-band GeoTIFFs cut from the sample: good, all-NaN, all-zero, constant, without B08, and one with a damaged tile."
    d = tmp_path_factory.mktemp("rasters")
    sc = sample_scene()
    names = list(sc.bands.names)
    x = sc.read((0, 0, 512, 512))
    small = x[:, :64, :64]
    write_geotiff(d / "good.tif", small.astype(np.uint16), sc.crs, sc.transform, band_names=names)
    write_geotiff(d / "nan.tif", np.full(small.shape, np.nan, np.float32), sc.crs, sc.transform, band_names=names)
    write_geotiff(d / "zero.tif", np.zeros(small.shape, np.uint16), sc.crs, sc.transform, band_names=names)
    write_geotiff(d / "const.tif", np.full(small.shape, 1234, np.uint16), sc.crs, sc.transform, band_names=names)
    keep = [i for i, n in enumerate(names) if n != "B08"]
    write_geotiff(d / "nob08.tif", small[keep].astype(np.uint16), sc.crs, sc.transform, band_names=[names[i] for i in keep])
    # a tiled, compressed file whose header is valid and whose bottom-right 256 x 256 tile is overwritten in its middle
    p = write_geotiff(d / "damaged.tif", x.astype(np.uint16), sc.crs, sc.transform, band_names=names)
    with rasterio.open(p) as ds:
        assert ds.block_shapes[0] == (256, 256) and ds.compression is not None
        off, size = int(ds.get_tag_item("BLOCK_OFFSET_1_1", "TIFF", bidx=1)), int(ds.get_tag_item("BLOCK_SIZE_1_1", "TIFF", bidx=1))
    with open(p, "r+b") as f: f.seek(off + 10); f.write(b"\xff" * (size - 20))
    return d

def files_of(folder: Path) -> dict:
    "Every entry of `folder` (hidden ones too) with its bytes."
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}

def run_main(capsys, *argv) -> tuple[int, str]:
    "`dualdistill ARGV` in this process: exit status and stderr."
    status = main([str(a) for a in argv])
    return status, capsys.readouterr().err

def one_line(err: str) -> str:
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]

@pytest.fixture()
def tmpfs(tmp_path):
    "A 16 MiB tmpfs (needs root and a kernel that lets this process mount)."
    mnt = tmp_path / "disk"; mnt.mkdir()
    if not shutil.which("mount"): pytest.skip("no mount command here; the patched-writer tests cover the case")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode: pytest.skip(f"no tmpfs can be mounted here ({r.stderr.strip()}); the patched-writer tests cover the case")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=True)

def remount(mnt: Path, options: str):
    subprocess.run(["mount", "-o", f"remount,{options}", str(mnt)], check=True)

# --- 1. signals, exact resume, resume without a checkpoint, stale temporaries ----------------------------------------------

def signal_config(path: Path):
    "The tiny run of `test_train`, 10 steps, checkpoints only at the end (so the one a signal writes is the signal's)."
    cfg = tiny(steps=10); cfg.run.checkpoint_every = 100
    save_config(cfg, path)
    return cfg

def test_sigterm_and_sigint_checkpoint_then_resume_is_bit_identical(tmp_path):
    cfg = signal_config(tmp_path / "tiny.yaml")
    runs, lines = {}, []
    t0 = time.time()
    for sig, quiet in ((signal.SIGTERM, False), (signal.SIGINT, True)):  # both at once: two cores
        runs[sig] = subprocess.Popen([DUALDISTILL, "pretrain", "--config", tmp_path / "tiny.yaml", "--out", tmp_path / sig.name,
                                      *(["--quiet"] if quiet else [])], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    def read_stderr(pipe):  # the non-quiet run's stderr, with the time each line came
        for chunk in iter(lambda: pipe.readline(), ""):
            for l in chunk.replace("\r", "\n").splitlines(): lines.append((time.time() - t0, l))
    reader = threading.Thread(target=read_stderr, args=(runs[signal.SIGTERM].stderr,)); reader.start()
    waiting = dict(runs)
    while waiting:  # each gets its signal after its step 2, well before step 10
        for sig, p in list(waiting.items()):
            metrics = tmp_path / sig.name / "metrics.jsonl"
            if p.poll() is not None or (metrics.exists() and len(metrics.read_text().splitlines()) >= 2):
                p.send_signal(sig); del waiting[sig]
        time.sleep(0.05)
    ref = Trainer(cfg, tmp_path / "ref"); ref.fit(progress=False)  # the uninterrupted run, here, while they write their checkpoints
    err = {signal.SIGINT: runs[signal.SIGINT].communicate(timeout=120)[1]}
    runs[signal.SIGTERM].wait(timeout=120); reader.join(); err[signal.SIGTERM] = "\n".join(l for _, l in lines)
    a = read_checkpoint(checkpoints(tmp_path / "ref")[-1])
    for sig, p in runs.items():
        out = tmp_path / sig.name
        assert p.returncode == 128 + sig == {signal.SIGTERM: 143, signal.SIGINT: 130}[sig], err[sig]
        assert "Traceback" not in err[sig] and "KeyboardInterrupt" not in err[sig]
        (ck,) = checkpoints(out)
        step = read_checkpoint(ck)["step"]
        assert 2 <= step < 10
        assert f"stopped by {sig.name} after step {step}, checkpoint {ck}; continue with: dualdistill pretrain --out {out} --resume" in err[sig]
        (out / ".checkpoint_00000001.pt.k1ll3d.tmp").write_bytes(b"half a checkpoint")  # what a killed write leaves
        again = Trainer(cfg, out, resume=True)
        assert again.step == step and not list(out.glob(".checkpoint_*.tmp"))
        again.fit(progress=False)
        b = read_checkpoint(checkpoints(out)[-1])
        assert b["step"] == 10 and a["student"].keys() == b["student"].keys()
        assert all(torch.equal(a[s][k], b[s][k]) for s in ("student", "ema") for k in a[s])
        assert [r["loss"] for r in read_metrics(out)] == [r["loss"] for r in read_metrics(tmp_path / "ref")]
    # 5. no long silence: the first line within seconds, then what the run prepares, all before the first step
    first, text = lines[0], [l for _, l in lines]
    assert first[0] < 8 and first[1] == "dualdistill pretrain: loading torch and the training code", lines[:3]
    said = [next(i for i, l in enumerate(text) if l.startswith(w)) for w in
            ("dualdistill pretrain: opening the bundled sample", "dualdistill pretrain: statistics of 10 bands",
             "dualdistill pretrain: calibrating the optical teacher", "pretrain: ")]  # the last: the progress bar
    assert said == sorted(said), text[:8]

def test_resume_without_a_checkpoint_is_an_error_and_keeps_metrics(tmp_path, capsys):
    run = tmp_path / "run"; run.mkdir()
    save_config(tiny(steps=2), run / "config.yaml")
    (run / "metrics.jsonl").write_text('{"step": 1, "loss": -3.0}\n')
    before = files_of(run)
    with pytest.raises(CheckpointError, match=rf"expected a checkpoint_\*\.pt to resume from in {run}, found only its config.yaml and metrics.jsonl"):
        Trainer(tiny(steps=2), run, resume=True)
    status, err = run_main(capsys, "pretrain", "--out", run, "--resume", "--quiet")
    assert status == 2 and one_line(err).startswith(f"dualdistill pretrain: error: expected a checkpoint_*.pt to resume from in {run}")
    assert files_of(run) == before  # metrics.jsonl untouched, nothing added
    with pytest.raises(CheckpointError, match=rf"expected a run to resume in {tmp_path / 'none'} \(a checkpoint_\*\.pt\), found no folder"):
        Trainer(tiny(steps=2), tmp_path / "none", resume=True)
    assert not (tmp_path / "none").exists()

def test_stale_checkpoint_temporaries_removed_at_start(tmp_path):
    tmp_path.joinpath(".checkpoint_00000040.pt.a1b2c3.tmp").write_bytes(b"\0" * 100)
    tmp_path.joinpath("notes.tmp").write_text("mine")
    Trainer(tiny(steps=1), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.tmp"]

# --- 2. output folders stay whole -----------------------------------------------------------------------------------------

def test_failed_preview_keeps_the_previous_outputs(rasters, tmp_path, capsys):
    out = tmp_path / "pv"
    assert run_main(capsys, "preview", "--data", rasters / "good.tif", "--out", out)[0] == 0
    good = files_of(out)
    assert sorted(good) == ["band_stats.csv", "false_colour.png", "true_colour.png"]
    status, err = run_main(capsys, "preview", "--data", rasters / "nan.tif", "--out", out)
    assert status == 2 and "expected valid pixels in bands ['B04', 'B03', 'B02']" in one_line(err) and "found only NaN or nodata" in err
    assert files_of(out) == good  # byte-identical, nothing new
    status, err = run_main(capsys, "preview", "--data", rasters / "nan.tif", "--out", tmp_path / "new" / "pv")
    assert status == 2 and not (tmp_path / "new").exists()  # no empty folder left

def full_disk_after(n: int):
    "A `_write_bytes` that writes `n` files, then finds the disk full."
    from dualdistill import cli
    real, calls = cli._write_bytes, []
    def write(path, data):
        calls.append(path)
        if len(calls) > n: raise OSError(errno.ENOSPC, "No space left on device", path)
        real(path, data)
    return write

def test_disk_full_preview_leaves_nothing_new(rasters, tmp_path, capsys, monkeypatch):
    out = tmp_path / "pv"
    assert run_main(capsys, "preview", "--data", rasters / "good.tif", "--out", out)[0] == 0
    good = files_of(out)
    monkeypatch.setattr("dualdistill.cli._write_bytes", full_disk_after(1))
    status, err = run_main(capsys, "preview", "--data", rasters / "good.tif", "--out", out)
    assert status == 2 and "the disk is full: free some space or write elsewhere" in one_line(err) and str(out) in err
    assert files_of(out) == good
    monkeypatch.setattr("dualdistill.cli._write_bytes", full_disk_after(2))
    status, err = run_main(capsys, "preview", "--data", rasters / "good.tif", "--out", tmp_path / "a" / "b")
    assert status == 2 and not (tmp_path / "a").exists()

def torn_save(obj, f, *args, **kw):
    "`torch.save` on a full disk: half the bytes, then torch's own error."
    Path(f).write_bytes(b"PK\x03\x04" + b"\0" * 1000)
    raise RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos 1024 vs 2048")

def test_disk_full_pretrain_is_the_package_error(tmp_path, capsys, monkeypatch):
    save_config(tiny(steps=2), tmp_path / "tiny.yaml")
    monkeypatch.setattr(torch, "save", torn_save)
    status, err = run_main(capsys, "pretrain", "--config", tmp_path / "tiny.yaml", "--out", tmp_path / "run", "--quiet")
    line = one_line(err)
    assert status == 2 and f"expected to write checkpoint {tmp_path / 'run' / 'checkpoint_00000002.pt'}, found the write cut short" in line
    assert "free some space, or write the run to another folder (--out)" in line and "inline_container" not in line
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["config.yaml", "metrics.jsonl"]  # no checkpoint, no temporary

def test_full_tmpfs_preview_and_pretrain(rasters, tmpfs, capsys):
    out = tmpfs / "pv"
    assert run_main(capsys, "preview", "--data", rasters / "good.tif", "--out", out)[0] == 0
    good = files_of(out)
    st = os.statvfs(tmpfs)
    used = (st.f_blocks - st.f_bfree) * st.f_frsize
    remount(tmpfs, f"size={used + len(good['true_colour.png']) + 8192}")  # room for one more file, not three
    status, err = run_main(capsys, "preview", "--data", rasters / "good.tif", "--out", out)
    assert status == 2 and "the disk is full" in one_line(err)
    assert files_of(out) == good
    remount(tmpfs, "size=8m")  # config and metrics fit, a 25 MB checkpoint does not
    with pytest.raises(FileSystemError, match=r"checkpoint_00000002\.pt, found the write cut short with 0 MiB free"):
        Trainer(tiny(steps=2), tmpfs / "run").fit(progress=False)
    assert sorted(p.name for p in (tmpfs / "run").iterdir()) == ["config.yaml", "metrics.jsonl"]

# --- 3. everyday OS problems ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["preview", "pretrain"])
def test_out_that_is_a_file_or_lies_under_one(tmp_path, capsys, command):
    f = tmp_path / "results.txt"; f.write_text("keep me")
    status, err = run_main(capsys, command, "--out", f)
    assert status == 2 and one_line(err) == f"dualdistill {command}: error: expected --out {f} to be a folder, found a file there: choose another --out"
    status, err = run_main(capsys, command, "--out", f / "a" / "b")
    assert status == 2 and f"found a file at {f}, above it: choose another --out" in one_line(err)
    assert f.read_text() == "keep me" and sorted(p.name for p in tmp_path.iterdir()) == ["results.txt"]

def test_read_only_out_patched(tmp_path, capsys, monkeypatch, rasters):
    out = tmp_path / "pv"; out.mkdir()
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if Path(p) == out else real(p, mode, **kw))
    status, err = run_main(capsys, "preview", "--out", out / "sub")
    assert status == 2 and one_line(err).endswith(f"expected --out {out / 'sub'} to be writable, found {out} read-only or without write permission: choose another --out")
    monkeypatch.setattr(os, "access", real)
    from dualdistill import cli  # a folder that turns read-only during the write
    monkeypatch.setattr(cli, "_write_bytes", lambda path, data: (_ for _ in ()).throw(OSError(errno.EROFS, "Read-only file system", path)))
    status, err = run_main(capsys, "preview", "--data", rasters / "good.tif", "--out", out)
    assert status == 2 and "the file system is read-only: write to another folder" in one_line(err) and not any(out.iterdir())

def test_read_only_tmpfs(tmpfs, capsys):
    (tmpfs / "pv").mkdir()
    assert run_main(capsys, "preview", "--out", tmpfs / "pv")[0] == 0
    good = files_of(tmpfs / "pv")
    remount(tmpfs, "ro")
    for command, out in (("preview", tmpfs / "pv"), ("pretrain", tmpfs / "run")):
        status, err = run_main(capsys, command, "--out", out)
        assert status == 2 and "read-only or without write permission: choose another --out" in one_line(err)
    assert files_of(tmpfs / "pv") == good and not (tmpfs / "run").exists()

def test_damaged_tiles_name_file_and_window(rasters):
    sc = Scene.open(rasters / "damaged.tif")
    assert sc.read((0, 0, 64, 64)).shape == (13, 64, 64)  # the undamaged tiles read
    with pytest.raises(DamagedRasterError, match=rf"band B01 in {rasters / 'damaged.tif'} \(window rows 300..348, cols 290..338\), found damaged data"):
        sc.read((300, 290, 48, 48))
    with pytest.raises(DamagedRasterError, match=r"band B01 in .*damaged\.tif \(its overview\)"): sc.overview(4)
    with pytest.warns(DataWarning, match=r"damaged\.tif: damaged blocks left out of the overview \(NaN there\) of band\(s\) B01 \(1\), B02 \(1\)"):
        ov = sc.overview(4, on_read_error="skip")
    assert np.isnan(ov[:, 64:, 64:]).all() and np.isfinite(ov[:, :64]).all() and np.isfinite(ov[:, :, :64]).all()  # just the damaged tile
    ds = ChipDataset(sc, 48, length=64, seed=0)  # on_read_error="stop"
    with pytest.raises(DamagedRasterError, match=r"damaged\.tif \(window rows \d+\.\.\d+, cols \d+\.\.\d+\).*data\.on_read_error: skip"):
        for i in range(len(ds)): ds[i]
    ds = ChipDataset(sc, 48, length=64, seed=0, on_read_error="skip")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        items = [ds[i] for i in range(len(ds))]
    said = [str(w.message) for w in caught if w.category is DataWarning]
    assert re.match(r"skipped a chip \(1 so far in this process\): expected readable pixels of band B01 in .*damaged\.tif \(window rows", said[0])
    assert ds.skipped == len(said) > 0 and all(torch.isfinite(it["image"]).all() for it in items)
    assert all(not (it["window"][0] + 48 > 256 and it["window"][1] + 48 > 256) for it in items)  # none overlaps the damaged tile

def test_damaged_tiles_in_training_stop_or_skip(rasters, tmp_path, capsys):
    cfg = tiny(steps=2); cfg.data.paths = [str(rasters / "damaged.tif")]
    save_config(cfg, tmp_path / "stop.yaml")
    status, err = run_main(capsys, "pretrain", "--config", tmp_path / "stop.yaml", "--out", tmp_path / "stop", "--quiet")
    assert status == 2 and f"expected readable pixels of band B04 in {rasters / 'damaged.tif'}" in one_line(err) and "RasterioIOError" not in err
    assert not (tmp_path / "stop").exists()  # no empty run folder left
    cfg.data.on_read_error = "skip"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t = Trainer(cfg, tmp_path / "skip"); t.fit(progress=False)
    said = [str(w.message) for w in caught if w.category is DataWarning]
    assert any("damaged.tif: damaged blocks left out of the overview (NaN there) of band(s) B04 (1)" in m for m in said)
    assert t.dataset.skipped > 0 and any(m.startswith("skipped a chip") for m in said)
    assert t.step == 2 and checkpoints(tmp_path / "skip")

# --- 4. arguments checked before any work; degenerate data warns ----------------------------------------------------------------

CHECKS = {"pretrain --steps 0": "expected --steps to be a positive integer, found 0",
          "pretrain --steps -5": "expected --steps to be a positive integer, found -5",
          "pretrain --epochs -1": "expected --epochs to be a positive integer, found -1",
          "pretrain --steps=0 --out x": "expected --steps to be a positive integer, found 0",
          "evaluate --checkpoint c.pt --k 0": "expected --k to be a positive integer, found 0",
          "preview --sensor landsat8": "expected --data with --sensor landsat8 (the bundled sample is always sentinel2_l1c), found no --data"}

def test_arguments_checked_before_torch_loads(tmp_path):
    script = """
import contextlib, io, json, sys, time
from dualdistill.cli import main
res = {}
for argv in json.loads(sys.argv[1]):
    t, err = time.perf_counter(), io.StringIO()
    with contextlib.redirect_stderr(err): status = main(argv.split())
    res[argv] = [status, err.getvalue(), time.perf_counter() - t, 'torch' in sys.modules]
print(json.dumps(res))"""
    r = subprocess.run([PY, "-c", script, json.dumps(list(CHECKS))], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    res = json.loads(r.stdout)
    for argv, message in CHECKS.items():
        status, err, seconds, torch_loaded = res[argv]
        assert status == 2 and one_line(err) == f"dualdistill {argv.split()[0]}: error: {message}", (argv, err)
        assert not torch_loaded and seconds < 5, (argv, seconds)
    assert not list(tmp_path.iterdir())  # nothing made

@pytest.mark.parametrize("section, key, value", [("optim", "steps", 0), ("optim", "steps", -5), ("optim", "epochs", -1)])
def test_config_counts_checked_before_any_work(tmp_path, section, key, value):
    from dualdistill.train import ConfigError
    cfg = tiny(); setattr(getattr(cfg, section), key, value)
    with pytest.raises(ConfigError, match=rf"optim\.{key}"): Trainer(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()

def test_degenerate_scenes_warn(rasters, tmp_path, capsys):
    for name, value in (("zero.tif", "all 0"), ("const.tif", "all 1234")):
        with pytest.warns(DataWarning, match=rf"{name}: band\(s\) B04 \({value}\), B03 \({value}\).*hold a single value or none: nothing to learn"):
            build_scenes(DataConfig(paths=[str(rasters / name)]))
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        build_scenes(DataConfig(paths=[str(rasters / "good.tif")]))  # a usable scene: no warning
    status, err = run_main(capsys, "preview", "--data", rasters / "nob08.tif", "--out", tmp_path / "pv")
    assert status == 0 and one_line(err) == "dualdistill preview: warning: the false colour shows B8A as NIR: the scene has no B08"
    status, err = run_main(capsys, "preview", "--data", rasters / "good.tif", "--out", tmp_path / "pv2")
    assert status == 0 and err == ""

# --- 5. no long silence -------------------------------------------------------------------------------------------------------

def test_help_answers_without_torch():
    script = """
import contextlib, io, sys, time
t = time.perf_counter()
from dualdistill.cli import main
for argv in (["--help"], ["pretrain", "--help"], ["preview", "--help"]):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try: main(argv)
        except SystemExit as e: assert e.code == 0
    assert "usage: dualdistill" in out.getvalue()
assert "torch" not in sys.modules, "torch imported"
assert __import__("os").environ["OMP_WAIT_POLICY"] == "PASSIVE"
print(time.perf_counter() - t)"""
    r = subprocess.run([PY, "-c", script], capture_output=True, text=True, env={k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"})
    assert r.returncode == 0, r.stderr
    assert float(r.stdout) < 3

def test_omp_wait_policy_is_only_a_default():
    r = subprocess.run([PY, "-c", "import dualdistill, os; print(os.environ['OMP_WAIT_POLICY'])"], capture_output=True, text=True,
                       env=dict(os.environ, OMP_WAIT_POLICY="ACTIVE"))
    assert r.stdout.strip() == "ACTIVE"  # the user's choice wins

# --- 7. a bad checkpoint is one clear line ----------------------------------------------------------------------------------------

def test_bad_checkpoints_get_one_line(tmp_path):
    from dualdistill.checkpoint import load_run, load_student, save_student
    from dualdistill.student import Student
    st = Student(sample_scene().bands, size="tiny", depth=1, mid_block=0, head_hidden=8, teacher_dim=8)
    good = save_student(st, tmp_path / "student.pt")
    ck = torch.load(good, weights_only=True)
    shape = dict(ck, student=dict(ck["student"], **{"backbone.body.pos_embed": torch.zeros(1, 5, 192)}))
    torch.save(shape, tmp_path / "shape.pt")
    torch.save(dict(ck, student_config=dict(ck["student_config"], depth=3)), tmp_path / "depth.pt")
    data = good.read_bytes()
    (tmp_path / "truncated.pt").write_bytes(data[:len(data) // 2])
    (tmp_path / "overwritten.pt").write_bytes(data[:1000] + b"\0" * 5000 + data[6000:])
    (tmp_path / "empty.pt").write_bytes(b"")
    expected = {"shape.pt": r"expected the weights in .*shape\.pt to fit the student its config describes, found: .*pos_embed: expected \(1, 197, 192\), found \(1, 5, 192\)",
                "depth.pt": r"expected the weights in .*depth\.pt to fit the student its config describes, found: .*depth: expected 3, found 1",
                "truncated.pt": r"truncated\.pt, found a damaged or foreign file \(it ends early: the write or the copy that made it did not finish\)",
                "overwritten.pt": r"overwritten\.pt, found a damaged or foreign file \(its pickled data is damaged: ",
                "empty.pt": r"expected a dualdistill checkpoint at .*empty\.pt, found an empty file$"}
    for name, pattern in expected.items():
        for load in (load_student, load_run):
            if load is load_run and name in ("shape.pt", "depth.pt"): continue  # readable: load_run's own check (no statistics) comes first
            with pytest.raises(DualDistillError) as e: load(tmp_path / name)
            msg = str(e.value)
            assert "\n" not in msg and "weights_only" not in msg.lower() and "weights only" not in msg.lower(), msg
            assert re.search(pattern, msg), (name, msg)
