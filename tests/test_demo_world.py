"""The demo world: compositional class groups and reproducible real videos."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from avzsl.extractors.decode.probe import probe_video
from avzsl.pipeline.synth.demo_videos import demo_classes, generate_demo_videos


def test_unseen_classes_combine_attributes_seen_in_training() -> None:
    groups = demo_classes()
    assert len(groups.seen) == 8 and len(groups.val_unseen) == 4 and len(groups.test_unseen) == 4
    assert len(set(groups.all)) == 16
    seen_colours = {c.split("_")[0] for c in groups.seen}
    seen_sounds = {c.split("_")[1] for c in groups.seen}
    for name in groups.val_unseen + groups.test_unseen:
        colour, sound = name.split("_")
        assert colour in seen_colours and sound in seen_sounds


def _frames(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def test_generated_videos_are_real_and_reproducible(tmp_path: Path) -> None:
    first = generate_demo_videos(tmp_path / "a", videos_per_class=1)
    generate_demo_videos(tmp_path / "b", videos_per_class=1)
    rel = first["blue_drum"][0]
    probe = probe_video(tmp_path / "a" / rel)
    assert probe.status == "ok" and probe.video_codec == "h264" and probe.audio_codec == "aac"
    for name in ("blue_drum", "red_bell", "yellow_siren"):
        video = first[name][0]
        np.testing.assert_array_equal(_frames(tmp_path / "a" / video), _frames(tmp_path / "b" / video))
