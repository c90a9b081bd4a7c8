"""``avzsl-app``: a local web page to label videos with any class names, on trained runs or the zero-shot towers."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import sys
from pathlib import Path

from avzsl.extractors.encoders.weights import CheckpointError
from avzsl.pipeline.cli.errors import report_user_error, user_errors
from avzsl.pipeline.cli.helptext import HelpFormatter, add_version_option
from avzsl.pipeline.cli.logs import pick_device, setup_logging
from avzsl.pipeline.cli.option_words import in_flag_words
from avzsl.pipeline.cli.predict import add_zero_shot_arguments

_logger = logging.getLogger(__name__)

EXTRA_HINT = "avzsl-app needs the app extra: pip install 'avzsl[app]' (or scripts/install.sh app)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="avzsl-app",
        description=(
            "Serve a local web page where videos are uploaded (or picked under --videos-root), class names are typed "
            "or picked from ready lists, and each video gets its ranked classes with the scores of the model's "
            "visual and audio branches and a per-second strip of the windows that support them (the computation of "
            "avzsl-predict --json; the batch downloads as CSV or that JSON). Models and encoders load once, at "
            "start. Bound to 127.0.0.1 unless --host says otherwise. Exit code 2 for a usage error."
        ),
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--run", type=Path, action="append", default=None, metavar="RUN",
                        help="run directory written by avzsl-train (repeat for several; the page offers each)")
    add_zero_shot_arguments(parser)
    next(a for a in parser._actions if a.dest == "zero_shot").help = (
        "offer the frozen CLIP/CLAP text towers too (or alone): --clip-checkpoint and --clap-checkpoint"
    )
    # The page offers the CLIP/CLAP towers only (not avzsl-predict's ConSE default): its encoder is one of theirs.
    next(a for a in parser._actions if a.dest == "encoder").help = "--zero-shot towers: clip_clap, clip_clap_per_second"
    parser.set_defaults(encoder="clip_clap")
    weights = parser.add_mutually_exclusive_group()
    weights.add_argument("--selavi-checkpoint", type=Path,
                         help="the SeLaVi checkpoint the runs' caches were extracted with (sha256 checked)")
    weights.add_argument("--random-weights", action="store_true",
                         help="the runs (or towers) use random encoder weights (tests only: meaningless predictions)")
    parser.add_argument("--word-vectors", default=None,
                        help="word2vec/fastText file the runs' class names were embedded with (None: bundled GloVe)")
    parser.add_argument("--videos-root", type=Path, default=None,
                        help="a folder whose videos the page may list and label (nothing outside it is reachable)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on; anything but loopback exposes the page to the network (warning)")
    parser.add_argument("--port", type=int, default=8765, help="port to listen on")
    parser.add_argument("--max-upload-mb", type=float, default=100.0, help="largest uploaded file, MiB")
    parser.add_argument("--max-files", type=int, default=16, help="most videos in one request")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:N")
    parser.add_argument("--verbose", action="store_true", help="debug logging")
    add_version_option(parser)
    return parser


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def main(argv: list[str] | None = None) -> int:
    """Entry point: serve until interrupted; returns the exit code (0 stopped, 2 usage error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(verbose=args.verbose)
    if not args.run and not args.zero_shot:
        parser.error("give --run RUN (several allowed) and/or --zero-shot")
    if not 0 < args.port < 65536:
        parser.error("--port must be in 1..65535")
    if args.max_upload_mb <= 0 or args.max_files < 1:
        parser.error("--max-upload-mb must be > 0 and --max-files >= 1")
    if args.videos_root is not None and not args.videos_root.is_dir():
        return report_user_error(NotADirectoryError(20, "--videos-root is not a folder", str(args.videos_root)))
    try:
        import uvicorn  # noqa: F401 - checked before any model loads

        from avzsl.pipeline.app.server import AppSettings, create_app  # lazy: pulls in torch and fastapi
    except ImportError as exc:
        _logger.error("%s (%s)", EXTRA_HINT, exc)
        return 2
    from avzsl.pipeline.app.models import Models, WeightOptions, load_models  # lazy: pulls in torch

    weights = WeightOptions(args.selavi_checkpoint, args.random_weights, args.word_vectors, args.clip_checkpoint,
                            args.clap_checkpoint, args.encoder, args.text_templates, args.audio_weight)
    try:
        models = Models(load_models(args.run or [], args.zero_shot, weights, pick_device(args.device)))
        settings = AppSettings(args.videos_root, int(args.max_upload_mb * 2**20), args.max_files)
        app = create_app(models, settings)
    except (*user_errors(), CheckpointError) as exc:
        return report_user_error(in_flag_words(exc))
    if not is_loopback(args.host):
        _logger.warning(
            "listening on %s: anyone who can reach this address can upload videos and use this computer's CPU; "
            "there is no login. Use the default 127.0.0.1 unless the network is yours", args.host,
        )
    _logger.info("avzsl-app: open http://%s:%d/ (Ctrl-C stops)", _url_host(args.host), args.port)
    uvicorn.run(app, host=args.host, port=args.port, log_level="debug" if args.verbose else "warning")
    return 0


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


if __name__ == "__main__":
    sys.exit(main())
