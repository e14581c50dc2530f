# Two commands do all the set-up on a fresh machine:
#   make run    virtualenv + install + index of seeds/ (when missing or stale) + the app (rag serve)
#   make test   virtualenv + install + browser for UI tests + the test suite
# and one more checks retrieval quality on real data (before a release, after any retrieval change):
#   make eval-smoke   the tests marked `eval` (PIAF from ../shared/data), left out of `make test`
# The optional local language model is never on those paths (compiling llama.cpp takes ~8 minutes):
#   make run-llm      as `make run`, plus the `local-llm` extra (once) and the app with --llm local
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
INDEX  ?= index
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
# The bundled models for the tests, prepared once per install like the virtualenv (minutes the first time).
TEST_MODELS := $(VENV)/test-models

# No model hub is reachable: every model comes from an installed package.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_HUB_DISABLE_TELEMETRY := 1
export OMP_WAIT_POLICY := PASSIVE
export GRADIO_ANALYTICS_ENABLED := False

.PHONY: run run-llm install-llm test eval-smoke install browser index bench clean

run: $(STAMP) $(INDEX)/manifest.json
	$(BIN)/rag serve --index $(INDEX)

# A non-native build with the instruction sets named: a GGML_NATIVE build crashed in llama_decode on
# these virtual CPUs. A CPU without AVX2 needs LLM_CMAKE_ARGS="-DGGML_NATIVE=OFF" (slower).
LLM_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
LLM_STAMP := $(VENV)/.local-llm-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

run-llm: $(STAMP) $(INDEX)/manifest.json $(LLM_STAMP)
	$(BIN)/rag setup --llm local
	$(BIN)/python app.py --index $(INDEX) --llm local

install-llm: $(LLM_STAMP)

# llama-cpp-python is compiled only when it is not importable yet; the model parts are plain wheels.
$(LLM_STAMP): $(STAMP)
	@$(BIN)/python -c "import llama_cpp" 2>/dev/null || { \
	  echo "compiling llama-cpp-python (about 8 minutes on 2 idle cores)…"; \
	  CMAKE_ARGS="$(LLM_CMAKE_ARGS)" $(BIN)/python -m pip install --no-binary llama-cpp-python \
	    "$$(grep -o 'llama-cpp-python==[0-9.]*' pyproject.toml | head -1)"; }
	CMAKE_ARGS="$(LLM_CMAKE_ARGS)" $(BIN)/python -m pip install --quiet -e '.[dev,milvus,local-llm]'
	@rm -f $(VENV)/.local-llm-*
	@touch $@

test: $(STAMP) browser $(TEST_MODELS)/.ready
	RAG_TEST_MODEL_CACHE=$(abspath $(TEST_MODELS)) $(BIN)/python -m pytest $(PYTEST_ARGS)

$(TEST_MODELS)/.ready: $(STAMP)
	RAG_CACHE_DIR=$(abspath $(TEST_MODELS)) $(BIN)/rag setup
	@touch $@

# pyproject's addopts deselect `eval`; a later -m wins. Without the data the tests would only skip.
EVAL_DATA := ../shared/data
eval-smoke: $(STAMP) $(TEST_MODELS)/.ready
	@test -f $(EVAL_DATA)/piaf/piaf-v1.0.json || { echo "make eval-smoke needs $(EVAL_DATA)/piaf/piaf-v1.0.json (README: Data)" >&2; exit 1; }
	RAG_TEST_MODEL_CACHE=$(abspath $(TEST_MODELS)) $(BIN)/python -m pytest -m eval $(PYTEST_ARGS)

# The UI tests drive Debian's Chromium (playwright's own browser download cannot work offline).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@command -v chromium >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium; }

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first, pinned: it resolves to the local CPU wheel instead of a multi-GB CUDA build.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	# milvus: the second index backend, so the backend contract tests run on both (~200 MB, mostly pyarrow)
	$(BIN)/python -m pip install --quiet -e '.[dev,milvus]'
	@rm -f $(VENV)/.installed-*
	@touch $@

# Rebuilt only when a seed article changed (re-adding unchanged articles is a no-op).
$(INDEX)/manifest.json: $(STAMP) $(wildcard seeds/*)
	$(BIN)/rag index add seeds --index $(INDEX)

index: $(INDEX)/manifest.json

clean:
	rm -rf $(VENV) $(INDEX) .pytest_cache
