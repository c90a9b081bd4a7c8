"""Prompt templates of the ClipClap-GZSL text embeddings (dkurzend/ClipClap-GZSL,
``clip_embeddings_extraction/get_clip_embeddings_{ucf,activitynet,vggsound}.py``), copied verbatim.

Each class name is formatted into every template of a set, each prompt is embedded and L2-normalised, the
mean over templates is L2-normalised again (the CLIP zero-shot recipe). ``*_visual`` sets go through the CLIP
text tower, ``*_audio`` sets through the CLAP text tower. ``plain`` is the bare class name.
"""

from __future__ import annotations

# ClipClap's UCF and ActivityNet scripts use the same two template sets (both are person-action datasets).
_PERSON_ACTION_VISUAL: tuple[str, ...] = (
    'a photo of a person {}.',
    'a video of a person {}.',
    'a example of a person {}.',
    'a demonstration of a person {}.',
    'a photo of the person {}.',
    'a video of the person {}.',
    'a example of the person {}.',
    'a demonstration of the person {}.',
    'a photo of a person using {}.',
    'a video of a person using {}.',
    'a example of a person using {}.',
    'a demonstration of a person using {}.',
    'a photo of the person using {}.',
    'a video of the person using {}.',
    'a example of the person using {}.',
    'a demonstration of the person using {}.',
    'a photo of a person doing {}.',
    'a video of a person doing {}.',
    'a example of a person doing {}.',
    'a demonstration of a person doing {}.',
    'a photo of the person doing {}.',
    'a video of the person doing {}.',
    'a example of the person doing {}.',
    'a demonstration of the person doing {}.',
    'a photo of a person during {}.',
    'a video of a person during {}.',
    'a example of a person during {}.',
    'a demonstration of a person during {}.',
    'a photo of the person during {}.',
    'a video of the person during {}.',
    'a example of the person during {}.',
    'a demonstration of the person during {}.',
    'a photo of a person performing {}.',
    'a video of a person performing {}.',
    'a example of a person performing {}.',
    'a demonstration of a person performing {}.',
    'a photo of the person performing {}.',
    'a video of the person performing {}.',
    'a example of the person performing {}.',
    'a demonstration of the person performing {}.',
    'a photo of a person practicing {}.',
    'a video of a person practicing {}.',
    'a example of a person practicing {}.',
    'a demonstration of a person practicing {}.',
    'a photo of the person practicing {}.',
    'a video of the person practicing {}.',
    'a example of the person practicing {}.',
    'a demonstration of the person practicing {}.',
)

_PERSON_ACTION_AUDIO: tuple[str, ...] = (
    'a person {} can be heard.',
    'a example of a person {} can be heard.',
    'a demonstration of a person {} can be heard.',
    'the person {} can be heard.',
    'a example of the person {} can be heard.',
    'a demonstration of the person {} can be heard.',
    'a person using {} can be heard.',
    'a example of a person using {} can be heard.',
    'a demonstration of a person using {} can be heard.',
    'a example of the person using {} can be heard.',
    'a demonstration of the person using {} can be heard.',
    'a person doing {} can be heard.',
    'a example of a person doing {} can be heard.',
    'a demonstration of a person doing {} can be heard.',
    'a example of the person doing {} can be heard.',
    'a demonstration of the person doing {} can be heard.',
    'a example of a person during {} can be heard.',
    'a demonstration of a person during {} can be heard.',
    'a example of the person during {} can be heard.',
    'a demonstration of the person during {} can be heard.',
    'a person performing {} can be heard.',
    'a example of a person performing {} can be heard.',
    'a demonstration of a person performing {} can be heard.',
    'a example of the person performing {} can be heard.',
    'a demonstration of the person performing {} can be heard.',
    'a person practicing {} can be heard.',
    'a example of a person practicing {} can be heard.',
    'a demonstration of a person practicing {} can be heard.',
    'a example of the person practicing {} can be heard.',
    'a demonstration of the person practicing {} can be heard.',
)


TEMPLATES: dict[str, tuple[str, ...]] = {
    "ucf_visual": _PERSON_ACTION_VISUAL,
    "ucf_audio": _PERSON_ACTION_AUDIO,
    "activitynet_visual": _PERSON_ACTION_VISUAL,
    "activitynet_audio": _PERSON_ACTION_AUDIO,
    "vggsound_visual": (
        'a photo of {}.',
        'a video of {}.',
        'a example of {}.',
        'a demonstration of {}.',
        'a photo of the person {}.',
        'a video of the {}.',
        'a example of the {}.',
        'a demonstration of the {}.',
    ),
    "vggsound_audio": (
        'a {} can be heard.',
        'a example of a {} can be heard.',
        'a demonstration of a {} can be heard.',
        'the {} can be heard.',
        'a example of the {} can be heard.',
        'a demonstration of the {} can be heard.',
        '{} can be heard.',
        'a example of {} can be heard.',
        'a demonstration of {} can be heard.',
    ),
    "plain": ("{}",),
}


def template_set(name: str) -> tuple[str, ...]:
    """The templates registered under ``name``; ``KeyError`` lists the known names."""
    if name not in TEMPLATES:
        raise KeyError(f"unknown template set {name!r}; known: {', '.join(sorted(TEMPLATES))}")
    return TEMPLATES[name]
