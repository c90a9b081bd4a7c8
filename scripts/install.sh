#!/usr/bin/env bash
# Create (or update) the project's virtual environment in .venv with the pinned dependencies.
# Usage: scripts/install.sh [extras]   e.g. scripts/install.sh test   (demo and test also add aisfx, --no-deps)
# CPU-only machines: AVZSL_TORCH_INDEX=https://download.pytorch.org/whl/cpu scripts/install.sh
#   installs the pinned torch/torchvision/torchaudio from PyTorch's CPU wheel index first: no NVIDIA CUDA libraries
#   (3.2 GB) or triton (0.9 GB) in .venv, which is about 6 GB by default; see README "Install".
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
python="${PYTHON:-python3}"
# setuptools' notice about editable installs is not for users of this script.
export PYTHONWARNINGS="${PYTHONWARNINGS:-ignore:Editable installation}"
step() { printf '[install %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
"$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "avzsl needs Python >= 3.11")'
if [ ! -x .venv/bin/python ]; then
  step "creating .venv with $("$python" --version)"
  "$python" -m venv .venv
fi
step "upgrading pip"
.venv/bin/python -m pip install --quiet --upgrade pip
if [ -n "${AVZSL_TORCH_INDEX:-}" ]; then
  step "torch, torchvision, torchaudio from ${AVZSL_TORCH_INDEX}"
  .venv/bin/python -m pip install --progress-bar on --index-url "$AVZSL_TORCH_INDEX" \
    torch==2.14.1 torchvision==0.29.1 torchaudio==2.11.0
fi
step "avzsl${extras:+[$extras]} and its pinned dependencies (a first install downloads several GB, mostly torch's CUDA libraries: minutes)"
if [ -n "$extras" ]; then
  .venv/bin/python -m pip install --progress-bar on -e ".[${extras}]"
else
  .venv/bin/python -m pip install --progress-bar on -e .
fi
case ",${extras}," in
  *,demo,*|*,test,*)
    # aisfx's metadata pins numpy 1.23 / librosa 0.9.2; avzsl reads only its checkpoint file (extractors/encoders/packaged.py).
    step "aisfx 0.1.2 (packaged audio weights of the real-media demo) without its dependencies"
    .venv/bin/python -m pip install --progress-bar on --no-deps aisfx==0.1.2
    ;;
esac
step "done: .venv holds $(du -sh .venv 2>/dev/null | cut -f1) ($(.venv/bin/python -c 'import torch; print("torch", torch.__version__, "CUDA" if torch.version.cuda else "CPU-only")'))"
