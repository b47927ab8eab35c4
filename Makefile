# The two commands of the README: `make demo` and `make test`. Both set up .venv by themselves.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# torch goes in first and pinned: an unpinned torch pulls several GB of CUDA wheels.
TORCH_SPEC ?= torch==2.13.0

.PHONY: install test demo lint format bench clean firmware-tools

# Unitree's own IDL and CRC (unitree-sdk2py-dimos), the independent reference the Unitree bridge's tests compare bytes
# with, installs without its declared dependencies: it asks for opencv-python, whose cv2 would replace the headless
# OpenCV the project uses (and needs libGL); its IDL and CRC import with cyclonedds and numpy only.
UNITREE_REFERENCE ?= unitree-sdk2py-dimos==1.0.3

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[dev]"
	$(PY) -m pip install -q --no-deps "$(UNITREE_REFERENCE)"
	touch $(STAMP)

install: $(STAMP)

# The on-board checks (tests/firmware) need a Cortex-M cross compiler and QEMU: Debian packages, installed here when
# missing (sudo unless root). `make test` makes those tests fail, not skip, where the tools are absent.
FIRMWARE_TOOLS := arm-none-eabi-gcc arm-none-eabi-size arm-none-eabi-nm qemu-system-arm

firmware-tools:
	@missing=""; for t in $(FIRMWARE_TOOLS); do command -v $$t >/dev/null 2>&1 || missing="$$missing $$t"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing gcc-arm-none-eabi qemu-system-arm (missing:$$missing)"; \
		sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
		$$sudo apt-get update -q && \
		$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
			gcc-arm-none-eabi qemu-system-arm; \
	fi

# The suite in two phases at once (tests/run_suite.sh, docs/testing.md): the tests that run in real time (SIL
# flights, the runtime's timeouts and latencies) one at a time at normal priority, beside them every other test at
# nice 19, which takes only what the real-time tests leave of the cores.
test: $(STAMP) firmware-tools
	$(VENV)/bin/ruff check .
	SIM2REAL_REQUIRE_FIRMWARE_TOOLS=1 tests/run_suite.sh $(PY)

demo: $(STAMP)
	$(PY) sim2real.py demo --out runs/demo

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: $(STAMP)
	$(PY) benchmarks/sim_throughput.py

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
