"""Get every dataset the lessons use now, rather than in the middle of a lesson: `bash course.sh data`.

    bash course.sh data                      # all of them (about 250 MB to download, 0.8 GB on disk)
    bash course.sh data MNIST CIFAR-10       # only these

Each dataset is found as the lessons find it (helpers.data): in data/ (COURSE_DATA_ROOT), else
copied or decoded from the mirror COURSE_DATA_MIRROR names, else downloaded into data/. CIFAR-10 is
also decoded once into its cache (data/CIFAR10/), which the lessons otherwise build in their first
CIFAR-10 cell. Downloaded (no mirror), every dataset is then in data/, and a copy of that folder is
all a machine without network needs (site/data.md).
"""
import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# name -> (what the download is, how to get it); the sizes are the downloads'
DATASETS = {
    "MNIST": ("about 12 MB", lambda data: (data.mnist(True), data.mnist(False))),
    "FashionMNIST": ("about 30 MB", lambda data: (data.fashion_mnist(True), data.fashion_mnist(False))),
    "CIFAR-10": ("about 170 MB, then decoded into a cache: about a minute",
                 lambda data: (data.cifar10_tensors(True), data.cifar10_test_sets())),
    "ants/bees": ("about 45 MB", lambda data: (data.hymenoptera("train"), data.hymenoptera("val"))),
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("datasets", nargs="*", metavar="DATASET", help=f"some of {', '.join(DATASETS)} (default: all)")
    args = parser.parse_args(argv)
    unknown = [name for name in args.datasets if name not in DATASETS]
    if unknown:
        parser.error(f"unknown dataset {', '.join(unknown)}: choose from {', '.join(DATASETS)}")
    from helpers import config, data

    mirror = config.data_mirror()
    print(f"datasets go to {config.data_root()}; mirror: {mirror or 'none (COURSE_DATA_MIRROR is not set)'}",
          flush=True)
    failed = []
    for name in args.datasets or DATASETS:
        size, get = DATASETS[name]
        print(f"{name}: getting it ({size} when downloaded) ...", flush=True)
        start = time.perf_counter()
        try:
            get(data)
        except data.DatasetNotFoundError as error:
            print(f"{name}: FAILED\n{error}", flush=True)
            failed.append(name)
            continue
        print(f"{name}: ready ({time.perf_counter() - start:.0f} s)", flush=True)
    if failed:
        print(f"not ready: {', '.join(failed)} (the messages above say why and what to do)")
        return 1
    print("every dataset is ready")
    return 0


if __name__ == "__main__":
    sys.exit(main())
