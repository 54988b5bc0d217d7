"""Image, video and animation decoders over mutated seeds: a result, UnreadableItem or
LimitExceeded, in a child process (a crash or a hang of the C decoders is a failure, its input
saved under fuzz/artifacts)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from fuzz import headers, seeds
from fuzz.isolate import Runner
from fuzz.strategies import DIMENSIONS, budget, mutated


@budget(160)
@given(data=mutated(seeds.image_seeds()))
def test_image_decoding_of_mutated_images(runner: Runner, data: bytes) -> None:
    runner.check("image", data)


@budget(40)
@given(
    seed=st.sampled_from(sorted(seeds.image_seeds())),
    width=DIMENSIONS,
    height=DIMENSIONS,
)
def test_image_decoding_of_absurd_declared_sizes(
    runner: Runner, seed: str, width: int, height: int
) -> None:
    runner.check("image", headers.with_size(seeds.image_seeds()[seed], width, height))


@budget(50)
@given(data=mutated(seeds.video_seeds()), on_disk=st.booleans())
def test_video_decoding_of_mutated_videos(runner: Runner, data: bytes, on_disk: bool) -> None:
    runner.check("video-file" if on_disk else "video", data)


@budget(60)
@given(data=mutated(seeds.animation_seeds()))
def test_animation_decoding_of_mutated_animations(runner: Runner, data: bytes) -> None:
    runner.check("animation", data)


@budget(30)
@given(
    seed=st.sampled_from(sorted(seeds.animation_seeds())),
    width=DIMENSIONS,
    height=DIMENSIONS,
    frame=st.integers(0, 3),
)
def test_animation_decoding_of_absurd_frame_sizes(
    runner: Runner, seed: str, width: int, height: int, frame: int
) -> None:
    data = headers.with_size(seeds.animation_seeds()[seed], width, height, frame)
    runner.check("animation", data)
