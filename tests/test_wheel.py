"""The wheel users build with `python -m build --wheel` and install with `pip install dist/dualdistill-*.whl`: it
carries the sample scene and the LICENSE, and its `dualdistill preview` works from a clean virtual environment with no repository around it."""
import configparser, csv, os, shlex, subprocess, sys, sysconfig, zipfile
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]

@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(ROOT)], check=True, capture_output=True)
    (whl,) = out.glob("dualdistill-*.whl")
    return whl

def test_wheel_carries_sample_and_requirements(wheel):
    cfg = configparser.ConfigParser(delimiters=["="]); cfg.read(ROOT / "settings.ini")
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        meta = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
        entry = z.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
        sample = z.getinfo("dualdistill/samples/s2_l1c_18SVG_20160112.tif")
        licence = [z.read(n).decode() for n in names if ".dist-info/" in n and n.rsplit("/", 1)[-1] == "LICENSE"]
    assert 10e6 < sample.file_size <= 15e6
    requires = [l.split(":", 1)[1].strip() for l in meta.splitlines() if l.startswith("Requires-Dist:") and "extra ==" not in l]
    assert sorted(requires) == sorted(shlex.split(cfg["DEFAULT"]["requirements"]))
    assert "dualdistill = dualdistill.cli:main" in entry
    assert licence == [(ROOT / "LICENSE").read_text()] and "Apache License" in licence[0] and "Version 2.0" in licence[0]
    assert cfg["DEFAULT"]["license"] == "apache2" and "Classifier: License :: OSI Approved :: Apache Software License" in meta
    assert not any(n.startswith(("nbs/", "tests/")) for n in names)

def test_wheel_runs_preview_in_clean_venv(wheel, tmp_path):
    env = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
    site = Path(subprocess.check_output([env / "bin/python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True).strip())
    # the wheel is pip-installed into the clean environment; its dependencies (torch, rasterio, ...) are borrowed from
    # this interpreter's site-packages by path, which does not activate the repository's editable install
    subprocess.run([env / "bin/python", "-m", "pip", "install", "--quiet", "--no-deps", str(wheel)], check=True, capture_output=True)
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    work = tmp_path / "elsewhere"; work.mkdir()
    run = lambda *a: subprocess.run([env / "bin/python", *a], cwd=work, capture_output=True, text=True, env={"PATH": os.environ["PATH"]})
    where = run("-c", "import dualdistill, dualdistill.data as d; print(dualdistill.__file__); print(d.SAMPLE_PATH)")
    assert where.returncode == 0, where.stderr
    assert all(str(site) in l and str(ROOT) not in l for l in where.stdout.split())
    res = subprocess.run([env / "bin/dualdistill", "preview", "--out", "prev"], cwd=work, capture_output=True, text=True, env={"PATH": os.environ["PATH"]})
    assert res.returncode == 0, res.stderr
    assert sorted(os.listdir(work / "prev")) == ["band_stats.csv", "false_colour.png", "true_colour.png"]
    rows = list(csv.DictReader(open(work / "prev/band_stats.csv")))
    assert len(rows) == 13 and rows[7]["band"] == "B08"
