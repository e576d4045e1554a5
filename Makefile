# Two entry points for a fresh checkout: `make run` and `make test`.
# Both create the environment at .venv/ first (once; again when pyproject.toml or constraints.txt change).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# llama-cpp-python compiles llama.cpp. Two of its CPU paths misbehaved on this project's
# machines (Xeon with AMX, in a VM): a -march=native build crashed in its AMX kernels (SIGSEGV
# in decode), and the llamafile sgemm path evaluated batched prompts differently from
# token-by-token (greedy SmolLM2 answered in French instead of "Paris"). Build for AVX2 without
# llamafile; both paths then agree with the transformers reference.
# Set CMAKE_ARGS yourself for a GPU build, e.g. CMAKE_ARGS="-DGGML_CUDA=on" make run.
ifeq ($(shell uname -m),x86_64)
CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_LLAMAFILE=OFF
endif
export CMAKE_ARGS
STAMP := $(VENV)/.hearth-installed

.PHONY: run test bench env clean-env installer installer-check

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first, pinned: a bare `torch` requirement could pull a multi-GB build on CPU-only machines.
	$(PY) -m pip install --quiet -c constraints.txt "torch==2.13.0"
	$(PY) -m pip install --quiet -c constraints.txt llama-cpp-python
	$(PY) -m pip install --quiet -c constraints.txt -e ".[test]"
	touch $(STAMP)

env: $(STAMP)

run: $(STAMP)
	$(PY) main.py

# Two pytest processes: the GUI tests assert that the GUI process never imports torch & co.,
# which only means something in a process where the engine tests have not imported them.
test: $(STAMP)
	$(VENV)/bin/lint-imports   # the layering contracts in pyproject.toml
	QT_QPA_PLATFORM=offscreen HF_HUB_OFFLINE=1 $(PY) -m pytest --ignore-glob='tests/test_gui_*.py'
	QT_QPA_PLATFORM=offscreen HF_HUB_OFFLINE=1 $(PY) -m pytest tests/test_gui_*.py

bench: $(STAMP)
	for b in benchmarks/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

# The PyInstaller bundle dist/Hearth (executable dist/Hearth/hearth) and its archive; see packaging/README.md.
INSTALLER_STAMP := $(VENV)/.hearth-installer-tools
$(INSTALLER_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -c constraints.txt -e ".[installer]"
	touch $(INSTALLER_STAMP)

installer: $(INSTALLER_STAMP)
	rm -rf dist/Hearth dist/Hearth-*.tar.gz
	$(PY) -m PyInstaller packaging/hearth.spec --noconfirm --distpath dist --workpath build/pyinstaller --log-level WARN
	$(PY) packaging/make_archive.py

# The frozen self-test in a clean environment (no venv, temporary HOME, offline where unshare -n works).
installer-check: installer
	bash packaging/check_frozen.sh dist/Hearth-*.tar.gz

clean-env:
	rm -rf $(VENV)
