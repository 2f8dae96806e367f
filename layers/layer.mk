# The build of a layer, shared by layers/*/Makefile. `sam build` (Metadata BuildMethod: makefile in
# template.yaml) runs `make --makefile layers/<name>/Makefile build-<LogicalId>` with ARTIFACTS_DIR
# set, in a scratch copy of the layer's directory; the layer's content goes to
# $(ARTIFACTS_DIR)/python, which Lambda puts on sys.path.
#
# A layer's Makefile sets, then includes this file:
#   SRC     its own directory (the sources; this file is $(SRC)/../layer.mk)
#   LAYER   the template's logical id (the target is build-$(LAYER))
#   PACKAGE the package directory it ships
#   DROP    the distributions another part of the function already provides (removed after pip)
#   PRUNE   (optional) commands that remove what the layer does not need, run after the copy
#
# pip downloads wheels for the Lambda target (CPython 3.13, Linux arm64) whatever
# interpreter runs pip, so no python3.13 and no Docker is needed (docs/adr/0001).
# PLATFORM / PY_VERSION can be overridden from the environment: `make artifacts-check` builds
# the same layers for the host (docs/adr/0008-layer-package-owners.md).

PYTHON      ?= python3
PY_VERSION  ?= 3.13
PLATFORM    ?= manylinux2014_aarch64
# Provided by the Lambda Python runtime (boto3 and its dependencies): a copy in a layer would
# shadow the runtime's under botocore. Distribution names as in *.dist-info (docs/adr/0008).
RUNTIME_PROVIDED := boto3 botocore s3transfer jmespath python_dateutil six urllib3
# Owned by the CoreLayer, which every function has (docs/adr/0008): one copy per function.
CORE_PROVIDED := cryptography cffi pycparser typing_extensions requests certifi idna charset_normalizer

# After the install and the copy: drop the dependencies' console scripts (bin/), what the layer's
# PRUNE removes, the distributions in DROP and any bytecode caches pip left; then bytecode for the
# runtime's Python (layers/bytecode.sh, docs/adr/0011): Lambda's /opt is read-only, so a layer
# without it is compiled at every cold start.
.PHONY: build-$(LAYER)
build-$(LAYER):
	$(PYTHON) -m pip install --quiet --disable-pip-version-check --no-compile \
	  --target "$(ARTIFACTS_DIR)/python" \
	  --platform $(PLATFORM) --implementation cp --python-version $(PY_VERSION) \
	  --only-binary=:all: -r "$(SRC)/requirements.txt"
	cp -R "$(SRC)/$(PACKAGE)" "$(ARTIFACTS_DIR)/python/"
	rm -rf "$(ARTIFACTS_DIR)/python/bin"
	$(PRUNE)
	sh "$(SRC)/../remove-dists.sh" "$(ARTIFACTS_DIR)/python" $(DROP)
	find "$(ARTIFACTS_DIR)/python" -name __pycache__ -type d -prune -exec rm -rf {} +
	PY_VERSION=$(PY_VERSION) sh "$(SRC)/../bytecode.sh" "$(ARTIFACTS_DIR)/python"
