"""Input pipeline speed: the harness's streamed ImageFolder training loader against timm's
`create_loader` on the same JPEGs, in one process, interleaved (not a timed test).

Both pipelines do the same work per image: read + JPEG decode, RandomResizedCrop (area
0.08-1, ratio 3/4-4/3, bilinear antialiased) to --size px, horizontal flip (p 0.5), uint8
collate in N DataLoader workers (persistent), then in the main process the copy to --device
(pinned + non-blocking on a GPU) and normalisation to float there:

  harness   tasks/classification.py's `batches` on a RunSettings with the imagefolder dataset
            (data/imagefolder.py: torchvision.io.decode_jpeg, torch's uint8 resize kernel,
            per-sample generators), channels_last, exactly what the training loop receives
  timm      timm.data.create_loader(is_training=True, color_jitter 0, no auto-augment, no
            random erasing, interpolation bilinear, use_prefetcher=True, persistent workers):
            PIL decode, PIL crop + resize, uint8 collate, timm's PrefetchLoader normalises;
            then .contiguous(memory_format=channels_last), as a channels_last training loop
            must (the harness's batches arrive channels_last)

A round is one epoch of each pipeline; rounds alternate which goes first; round 0 starts and
warms the workers and is not counted.
Two rates per pipeline, medians over rounds:
  wall     images/s by the wall clock: what a training run would see on this machine now
  per core images per CPU-second of the workers + the main process (from /proc): the rate
           one idle core sustains. On a shared machine the wall rate mostly measures the
           neighbours, the CPU rate does not.
The ratio harness/timm is printed for both (target >= 0.95).

    python perf/loader.py                     # 1,024 JPEGs ~330-500 px generated in a temp dir
    python perf/loader.py --data DIR          # an ImageFolder: DIR/<class>/*.jpg (e.g. ImageNet train/)
    python perf/loader.py --device cuda --workers 16 --batch 256 --images 8192
    python perf/loader.py --tiny              # seconds: a dry run of the script itself
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def worker_pids(loader) -> list[int]:
    """PIDs of a DataLoader's persistent workers (private attribute, read for measuring only)."""
    it = getattr(loader, "_iterator", None)
    return [w.pid for w in getattr(it, "_workers", [])]


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of processes, from /proc/<pid>/stat (fields 14 and 15, clock ticks)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick  # fields 14, 15 counted from 1
    return total


def harness_pipeline(data_root: Path, folder: str, size: int, workers: int, batch: int, device: str):
    """A Classification task on the folder; yields (loader for pids, epoch iterator factory)."""
    import torch

    from benchmark.suite import RunSettings
    from benchmark.tasks.classification import Classification

    s = RunSettings.model_validate({
        "task": "classification", "threads": 1, "device": device,
        "data": {"dataset": "imagefolder", "root": str(data_root), "holdout": 0,
                 "kwargs": {"path": folder, "image_size": size, "workers": workers}},
        "student": {"name": "resnet8"},
        "train": {"epochs": 1, "batch_size": batch, "channels_last": True},
        "targets": {"metric": "accuracy", "direction": "higher", "thresholds": [50]},
    })
    task = Classification(s, seeds={"init": 0, "data_order": 1, "augment": 2}, device=torch.device(device))
    epoch = [0]

    def one_epoch():
        epoch[0] += 1
        return task.batches(epoch[0], 0)

    def loader():
        return task.data._loader("train", task.device.type == "cuda")[0]

    return loader, one_epoch


def timm_pipeline(train_dir: Path, size: int, workers: int, batch: int, device: str):
    import torch
    from timm.data import ImageDataset, create_loader

    ds = ImageDataset(str(train_dir))
    cuda = device.startswith("cuda")
    pl = create_loader(ds, input_size=(3, size, size), batch_size=batch, is_training=True,
                       color_jitter=0.0, auto_augment=None, re_prob=0.0, interpolation="bilinear",
                       num_workers=workers, pin_memory=cuda, device=torch.device(device),
                       use_prefetcher=True, persistent_workers=workers > 0)

    def one_epoch():
        # the training loop's channels_last conversion of each batch (what the harness's
        # batches already are), so that both sides hand the model the same tensor
        return ((x.contiguous(memory_format=torch.channels_last), y) for x, y in pl)

    return (lambda: pl.loader), one_epoch


def measure(one_epoch, loader, device: str) -> tuple[int, float, float]:
    """(images, wall s, CPU s) of one whole epoch, from before the iterator exists (so no
    batch was prepared ahead outside the window) until its last batch is on the device (so
    the workers are idle again): the CPU seconds cover exactly the images counted."""
    import torch

    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    pids = worker_pids(loader())  # persistent workers: they exist after the warm-up round
    c0, p0, t0 = cpu_seconds(pids), time.process_time(), time.perf_counter()
    n = 0
    for x, _ in one_epoch():
        n += len(x)
    sync()
    wall = time.perf_counter() - t0
    cpu = cpu_seconds(pids) - c0 + time.process_time() - p0
    return n, wall, cpu


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", help="an ImageFolder train folder DIR/<class>/*.jpg (default: generate one)")
    p.add_argument("--images", type=int, default=1024, help="JPEGs to generate without --data (default 1024)")
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--rounds", type=int, default=4, help="rounds after the warm-up round (default 4)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--tiny", action="store_true", help="a dry run: 64 small JPEGs, 1 worker, 2 rounds")
    a = p.parse_args(argv)
    if a.tiny:
        a.images, a.size, a.workers, a.batch, a.rounds = 64, 64, 1, 8, 1

    import torch

    torch.set_num_threads(1)
    tmp = None
    if a.data:
        train_dir = Path(a.data).resolve()
        if not train_dir.is_dir():
            print(f"error: {train_dir} is not a folder (expected DIR/<class>/*.jpg)", file=sys.stderr)
            return 2
    else:
        from benchmark.data.make_imagefolder import write_procedural

        tmp = tempfile.TemporaryDirectory(prefix="w2s-loader-")
        train_dir = Path(tmp.name) / "jpegs" / "train"
        short = (60, 90) if a.tiny else (330, 400)  # ImageNet photos: typically 500x375 / 375x500
        write_procedural(train_dir.parent, classes=4, per_class={"train": max(1, a.images // 4)}, short=short)
    # the harness reads <root>/<path>/{train,val}: point val at train (it is not read here)
    link_root = Path(tempfile.mkdtemp(prefix="w2s-loader-root-"))
    (link_root / "set").mkdir()
    (link_root / "set" / "train").symlink_to(train_dir)
    (link_root / "set" / "val").symlink_to(train_dir)
    n_files = sum(1 for _ in train_dir.rglob("*.jp*g"))
    print(f"{n_files} JPEGs in {train_dir}; {a.size} px crops, batch {a.batch}, {a.workers} workers, "
          f"device {a.device}, {os.cpu_count()} CPU cores, load average {os.getloadavg()[0]:.1f}")

    pipes = {"harness": harness_pipeline(link_root, "set", a.size, a.workers, a.batch, a.device),
             "timm": timm_pipeline(train_dir, a.size, a.workers, a.batch, a.device)}
    rates: dict[str, dict[str, list[float]]] = {k: {"wall": [], "cpu": []} for k in pipes}
    names = list(pipes)
    for r in range(a.rounds + 1):
        order = names if r % 2 == 0 else names[::-1]
        for name in order:
            loader, one_epoch = pipes[name]
            n, wall, cpu = measure(one_epoch, loader, a.device)
            if r:
                rates[name]["wall"].append(n / wall)
                rates[name]["cpu"].append(n / cpu if cpu > 0 else float("nan"))
                print(f"  round {r} {name:8s} {n / wall:8.1f} img/s wall   {n / max(cpu, 1e-9):7.1f} img/CPU-s",
                      flush=True)
    med = {k: {m: statistics.median(v[m]) for m in v} for k, v in rates.items()}
    print(f"\n{'pipeline':10s} {'img/s (wall)':>13s} {'img/s per core (CPU)':>22s}")
    for k in names:
        print(f"{k:10s} {med[k]['wall']:13.1f} {med[k]['cpu']:22.1f}")
    print(f"ratio harness/timm: wall {med['harness']['wall'] / med['timm']['wall']:.2f}, "
          f"per core {med['harness']['cpu'] / med['timm']['cpu']:.2f} (target >= 0.95)")
    print(f"wall img/s per worker core: harness {med['harness']['wall'] / max(1, min(a.workers, os.cpu_count() or 1)):.1f}")
    shutil.rmtree(link_root)  # two symlinks; the JPEGs they point at are not touched
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
