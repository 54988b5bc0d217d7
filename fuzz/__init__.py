"""Fuzzing Vigil's readers of untrusted input: hash lists, archives, images, videos.

One target per parser family (`fuzz.targets`), each a function of one input that returns when the
input ends in a result or a named error and raises otherwise. `fuzz.isolate` runs targets in a
child process, so a crash, an abort, a hang or a memory blow-up is a finding with its input saved,
not a dead test session. `python -m fuzz.run TARGET --seconds N` runs a long campaign (atheris);
`tests/fuzz` runs short Hypothesis properties over the same targets in CI.
"""
