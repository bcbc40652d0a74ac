# The project's two commands live here so the README, CI and people run the
# same thing. PYTHON must be an interpreter with Debian's python3-torch.
PYTHON ?= /usr/bin/python3

.PHONY: test test-go test-python data

# test runs every test: Go (vet + unit, golden and known-answer tests) and the
# training code's smoke tests.
test: test-go test-python

test-go:
	go vet ./...
	go test -timeout 30m ./...

test-python:
	$(PYTHON) -m unittest discover -s models/training -t . -v

# data downloads, verifies and splits the corpora into $$CIPHERPRUNE_DATA.
data:
	go run ./cmd/cipherprune data
