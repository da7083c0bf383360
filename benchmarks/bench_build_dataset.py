"""Benchmark ``build_corpus("iemocap", ...)`` on a generated 5,000-utterance IEMOCAP tree (1-3 s tones).

Prints utterances/s of the build (read labels, decode, trim, encode, write Arrow) and of ``save_to_disk``, and the
peak memory of the process plus its worker processes (PSS and RSS sampled with psutil every 50 ms; also the
``getrusage`` maxima). Target: >= 200 utterances/s on 2 cores, peak RSS < 1 GB.

    python benchmarks/bench_build_dataset.py [--repeats 25] [--num-proc 1 2]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Self

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from gemo_clap.processing import build_corpus, save_dataset
from iemocap_tree import write_iemocap_tree

FOUR_CLASS_LABELS = ("ang", "hap", "exc", "sad", "neu")  # every generated utterance is kept by the 4-class map


class PeakMemory:
    """Peak summed RSS and PSS of this process and its workers, sampled in a background thread.

    Forked workers share pages with the main process, so the RSS sum counts shared pages several times; PSS splits
    each shared page between the processes mapping it and is the honest total. Both include the memory-mapped Arrow
    pages ``datasets`` reads (reclaimable page cache).
    """

    def __init__(self, interval: float = 0.05):
        self.interval, self.rss, self.pss, self._stop = interval, 0, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        process = psutil.Process()
        while not self._stop.is_set():
            rss = pss = 0
            for p in [process, *process.children(recursive=True)]:
                try:
                    info = p.memory_full_info()
                except psutil.NoSuchProcess:
                    continue
                rss, pss = rss + info.rss, pss + info.pss
            self.rss, self.pss = max(self.rss, rss), max(self.pss, pss)
            time.sleep(self.interval)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=25, help="5 sessions x 4 dialogs x 2 genders x 5 labels each")
    parser.add_argument("--num-proc", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-build-") as tmp:
        tmp = Path(tmp)
        start = time.perf_counter()
        release = write_iemocap_tree(
            tmp / "tree",
            labels=FOUR_CLASS_LABELS,
            repeats=args.repeats,
            seconds=lambda index: 1.0 + 2.0 * ((index * 37) % 100) / 100,
            defects=False,
        )
        audio_bytes = sum(p.stat().st_size for p in release.rglob("*.wav") if not p.name.startswith("._"))
        print(f"generated tree: {audio_bytes / 1e6:.0f} MB of wav in {time.perf_counter() - start:.1f} s")
        print(f"cpu cores: {psutil.cpu_count()}  python: {sys.version.split()[0]}")
        for num_proc in args.num_proc:
            cache_dir = tmp / f"cache-{num_proc}"
            with PeakMemory() as build_memory:
                start = time.perf_counter()
                dataset, report = build_corpus("iemocap", release, num_proc=num_proc, cache_dir=cache_dir)
                built = time.perf_counter() - start
            with PeakMemory() as save_memory:
                start = time.perf_counter()
                save_dataset(dataset, tmp / f"out-{num_proc}")
                saved = time.perf_counter() - start
            hours = sum(dataset.data.column("duration").to_pylist()) / 3600
            print(
                f"num_proc={num_proc}: {len(dataset)} utterances ({hours:.2f} h, {len(report.skipped)} skipped) "
                f"built in {built:.1f} s = {len(dataset) / built:.0f} utt/s; save_to_disk {saved:.1f} s; "
                f"build+save {len(dataset) / (built + saved):.0f} utt/s\n"
                f"  peak memory of process + workers: build PSS {build_memory.pss / 2**20:.0f} MiB "
                f"(RSS sum {build_memory.rss / 2**20:.0f} MiB), save PSS {save_memory.pss / 2**20:.0f} MiB "
                f"(RSS sum {save_memory.rss / 2**20:.0f} MiB)"
            )
            del dataset
        self_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        child_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(f"getrusage maxrss: main process {self_peak:.0f} MiB, largest worker {child_peak:.0f} MiB")


if __name__ == "__main__":
    main()
