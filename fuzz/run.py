"""Run a fuzzing campaign against one target, or replay saved inputs.

    python -m fuzz.run TARGET --seconds 3600            # atheris (libFuzzer), coverage-guided
    python -m fuzz.run TARGET --seconds 600 --jobs 4     # four processes
    python -m fuzz.run TARGET --engine mutate            # no atheris: seeds mutated at random,
                                                         # each input run in a child process
    python -m fuzz.run TARGET --reproduce FILE...        # replay findings in a child process
    python -m fuzz.run --list

The corpus lives in fuzz/corpus/TARGET (seeded on first use from `fuzz.seeds`); findings go to
fuzz/artifacts/TARGET (crash-*, timeout-*, oom-* from libFuzzer; error-*, crash-*, hang-* from
the mutate engine). Exit status: 0 when nothing was found, 1 otherwise.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

from fuzz import isolate

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"
# Modules whose functions Numba compiles from their bytecode (instrumented, it cannot).
NOT_INSTRUMENTED = ["vigil.fingerprint.downscale", "vigil.fingerprint.pdq", "vigil.matching"]
TARGET_NAMES = ("hashlist", "archive", "image", "video", "video-file", "animation")


def main(argv: list[str] | None = None) -> int:
    """The command line; see the module's docstring."""
    parser = argparse.ArgumentParser(prog="python -m fuzz.run", description=__doc__.split("\n")[0])
    parser.add_argument("target", nargs="?", choices=TARGET_NAMES)
    parser.add_argument("--list", action="store_true", help="list the targets")
    parser.add_argument("--seconds", type=int, default=300, help="length of the campaign")
    parser.add_argument("--engine", choices=("atheris", "mutate"), default=None)
    parser.add_argument("--jobs", type=int, default=1, help="fuzzing processes (atheris)")
    parser.add_argument("--timeout", type=int, default=60, help="seconds one input may take")
    parser.add_argument("--rss-mb", type=int, default=4096, help="memory one process may use")
    parser.add_argument("--corpus", type=Path, help="corpus folder (default fuzz/corpus/TARGET)")
    parser.add_argument("--reproduce", nargs="+", type=Path, metavar="FILE")
    # Anything else (-dict=FILE, -max_len=N, ...) is handed to libFuzzer as it is.
    args, args.libfuzzer = parser.parse_known_args(argv)
    if args.list or args.target is None:
        print("\n".join(TARGET_NAMES))
        return 0
    if args.reproduce:
        return reproduce(args.target, args.reproduce, args.timeout)
    corpus = args.corpus or CORPUS / args.target
    seed_corpus(args.target, corpus)
    engine = args.engine or ("atheris" if _has_atheris() else "mutate")
    if engine == "atheris":
        return run_atheris(args, corpus)
    return run_mutate(args.target, corpus, args.seconds, args.timeout, args.rss_mb)


def _has_atheris() -> bool:
    try:
        import atheris  # noqa: F401
    except ImportError:
        return False
    return True


def seed_corpus(target: str, corpus: Path) -> None:
    """Write the target's seeds into an empty corpus folder."""
    corpus.mkdir(parents=True, exist_ok=True)
    if any(corpus.iterdir()):
        return
    from fuzz.seeds import seeds

    for name, data in seeds(target).items():
        (corpus / f"seed-{name}").write_bytes(data)


def reproduce(target: str, files: list[Path], timeout: int) -> int:
    """Run saved inputs in a child process and say what each does."""
    failed = 0
    with isolate.Runner(timeout=timeout) as runner:
        for path in files:
            outcome = runner.run(target, path.read_bytes(), save_findings=False)
            print(f"{path}: {outcome}")
            failed += not outcome.ok
    return 1 if failed else 0


def run_mutate(target: str, corpus: Path, seconds: int, timeout: int, rss_mb: int) -> int:
    """The fallback engine: corpus inputs mutated at random, each run in a child process."""
    from fuzz import mutate

    inputs = [p.read_bytes() for p in sorted(corpus.iterdir()) if p.is_file()]
    rnd = random.Random()
    runs = findings = 0
    seen: set[str] = set()
    deadline = time.monotonic() + seconds
    report_at = time.monotonic() + 10
    with isolate.Runner(timeout=timeout, memory_mb=rss_mb + 2048) as runner:
        while time.monotonic() < deadline:
            data = mutate.apply(
                rnd.choice(inputs), mutate.random_mutations(rnd), rnd.choice(inputs)
            )
            outcome = runner.run(target, data)
            runs += 1
            if not outcome.ok and outcome.saved is not None and outcome.saved.name not in seen:
                seen.add(outcome.saved.name)
                findings += 1
                print(f"finding: {outcome}", flush=True)
            if time.monotonic() > report_at:
                print(f"{runs} inputs, {findings} findings", flush=True)
                report_at += 10
    print(f"done: {runs} inputs, {findings} findings in {isolate.ARTIFACTS / target}")
    return 1 if findings else 0


def run_atheris(args: argparse.Namespace, corpus: Path) -> int:
    """libFuzzer through atheris, Vigil's Python code instrumented for coverage."""
    import atheris

    # Numba compiles these modules' kernels from their bytecode: it must stay as written.
    with atheris.instrument_imports(include=["vigil"], exclude=NOT_INSTRUMENTED):
        from fuzz import targets

        targets.warm()
    function = targets.TARGETS[args.target]
    artifacts = isolate.ARTIFACTS / args.target
    artifacts.mkdir(parents=True, exist_ok=True)

    def one_input(data: bytes) -> None:
        function(data)

    flags = [
        f"-max_total_time={args.seconds}",
        f"-timeout={args.timeout}",
        f"-rss_limit_mb={args.rss_mb}",
        f"-artifact_prefix={artifacts}/",
    ]
    if args.jobs > 1:
        flags += [f"-jobs={args.jobs}", f"-workers={args.jobs}"]
    extra = [flag for flag in args.libfuzzer if flag.startswith("-") and flag != "--"]
    atheris.Setup([sys.argv[0], *flags, *extra, str(corpus)], one_input)
    atheris.Fuzz()  # exits the process: libFuzzer's status (0, or non-zero on a finding)
    return 0  # pragma: no cover


if __name__ == "__main__":
    sys.exit(main())
