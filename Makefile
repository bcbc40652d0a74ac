# The project's two commands live here so the README, CI and people run the
# same thing. PYTHON must be an interpreter with Debian's python3-torch;
# `make test` installs it (scripts/install-deps) when it is missing.
PYTHON ?= /usr/bin/python3
export PYTHON

.PHONY: test deps test-go test-python data

# test runs every test: Go (vet + unit, golden, end-to-end and known-answer
# tests) and the training code's smoke tests, after installing what they need.
test: deps test-go test-python

# deps installs Debian's PyTorch for the training code's tests if it is
# missing, or says which packages to install when it cannot.
deps:
	scripts/install-deps

test-go:
	go vet ./...
	go test -timeout 30m ./...

test-python: deps
	$(PYTHON) -m unittest discover -s models/training -t . -v

# data downloads, verifies and splits the corpora into $$CIPHERPRUNE_DATA.
data:
	go run ./cmd/cipherprune data
