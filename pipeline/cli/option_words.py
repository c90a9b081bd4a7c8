"""Library words <-> command-line options, for the CLIs that build encoders and embed class names.

The library (``avzsl.extractors``) names weights by ``EncoderSpec.weight_keys`` and its messages use Python terms
(``random_weights=True``, ``oov='skip'``). Here the options map onto those keys, the weight options are checked
in option terms before anything loads, and a library error caught by a CLI is re-worded with the options.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from avzsl.extractors.encoders.registry import get_encoder_spec
from avzsl.extractors.encoders.weights import MissingWeightsError
from avzsl.pipeline.core.errors import UserError

# The option of each weight key of EncoderSpec.weight_keys (the library takes weights={key: path}).
WEIGHT_FLAGS = {"selavi": "--selavi-checkpoint", "clip": "--clip-checkpoint", "clap": "--clap-checkpoint"}
# What the command line offers where the library's out-of-vocabulary message offers phrases or oov='skip'.
OOV_FLAG_HINT = "pass --class-phrases FILE (columns original,manual), or --oov skip to drop missing words"


def weight_files(args: argparse.Namespace) -> dict[str, Path]:
    """The ``weights`` of :func:`~avzsl.extractors.encoders.registry.build_encoder`: weight key -> given file
    (``--selavi-checkpoint``, ``--clip-checkpoint``, ``--clap-checkpoint``; avzsl-extract and avzsl-predict)."""
    given = {"selavi": args.selavi_checkpoint, "clip": args.clip_checkpoint, "clap": args.clap_checkpoint}
    return {key: path for key, path in given.items() if path is not None}


def in_flag_words(exc: BaseException) -> BaseException:
    """``exc``, or a :class:`UserError` saying the same with the options a command-line user needs where the
    library's message names Python arguments (missing weight files, the out-of-vocabulary hint)."""
    # Lazy: class_names imports numpy; this runs only when an error is reported, never for --help.
    from avzsl.extractors.text.class_names import OOVError

    if isinstance(exc, MissingWeightsError):
        noun = "towers" if get_encoder_spec(exc.encoder).text_towers else "encoders"
        reworded = UserError(
            f"{exc.encoder} needs {' and '.join(WEIGHT_FLAGS[k] for k in exc.keys)} (files you download, see "
            f"docs/encoders.md); --random-weights builds seeded random {noun} for tests only"
        )
    else:
        oov = exc if isinstance(exc, OOVError) else exc.__cause__
        if not (isinstance(oov, OOVError) and oov.hint):
            return exc
        reworded = UserError(str(exc).replace(oov.hint, OOV_FLAG_HINT))
    reworded.__cause__ = exc  # the --verbose details keep the library's error and traceback
    return reworded


def check_weight_options(args: argparse.Namespace) -> None:
    """Refuse an unknown ``--encoder``, weight options the encoder set does not take, missing weights (without
    ``--random-weights``) and weight files that do not exist, in option terms.

    Raises:
        UserError: what is wrong, naming the options.
    """
    try:
        spec = get_encoder_spec(args.encoder)
    except KeyError as exc:
        raise UserError(f"--encoder: {exc.args[0]}") from exc
    given = weight_files(args)
    foreign = [WEIGHT_FLAGS[key] for key in given if key not in spec.weight_keys]
    if foreign and spec.packaged_weights:
        raise UserError(f"{args.encoder} takes its weights from installed packages; drop {', '.join(foreign)}")
    if foreign:
        raise UserError(
            f"{' and '.join(foreign)} {'is' if len(foreign) == 1 else 'are'} not for {args.encoder}, which takes "
            + " and ".join(WEIGHT_FLAGS[key] for key in spec.weight_keys)
        )
    missing = [WEIGHT_FLAGS[key] for key in spec.weight_keys if key not in given]
    if missing and not args.random_weights and "selavi" in spec.weight_keys:
        raise UserError(
            "no encoder weights given: pass --selavi-checkpoint selavi_vgg_sound.pth (the SeLaVi VGG-Sound "
            "checkpoint, see docs/encoders.md for where to get it), or --random-weights for a pipeline test whose "
            "features mean nothing"
        )
    if missing and not args.random_weights:
        raise UserError(
            f"{args.encoder} needs {' and '.join(missing)} (files you download, see docs/encoders.md), "
            "or --random-weights for a pipeline test whose features mean nothing"
        )
    for key, path in given.items():
        if key == "selavi" and not path.is_file():
            raise UserError(f"{path}: --selavi-checkpoint file not found")
        if not path.exists():
            raise UserError(f"{path}: {WEIGHT_FLAGS[key]} not found")
