# kiln — build and test entry points. `make image` and `make test` do all the
# set-up a fresh machine needs beyond Go and the Debian packages in .ci/deps.
SHELL := /bin/bash
GO ?= go
PROFILE ?= profiles/default.yaml
ARCH ?= amd64
OUT ?= out
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -buildid= -X main.version=$(VERSION)

.PHONY: all kiln image test unit boot e2e bench fuzz clean deps deps-check

all: kiln

bin/kiln: FORCE
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $@ ./cmd/kiln
kiln: bin/kiln

# Builds the default image (PROFILE, ARCH) into $(OUT)/.
image: deps-check bin/kiln
	bin/kiln build -p $(PROFILE) --arch $(ARCH) -o $(OUT)

# Unit tests, short fuzzing of the parsers, then the QEMU boot tests.
test: deps-check unit fuzz boot

unit:
	$(GO) vet ./...
	$(GO) test -count=1 -short $$($(GO) list ./... | grep -v /test/qemu)
	cd components/probe && GOWORK=off $(GO) vet ./... && GOWORK=off $(GO) test -count=1 ./...
	cd components/bootstrap && GOWORK=off GOFLAGS=-mod=readonly $(GO) vet . && GOWORK=off GOFLAGS=-mod=readonly $(GO) test -count=1 .

fuzz:
	@bash .ci/fuzz-short

boot:
	$(GO) test -count=1 -timeout 80m -v -run 'Test' ./test/qemu/ 2>&1 | tee $(OUT)-boot.log | grep -E '^(=== RUN|--- |PASS|FAIL|ok|panic|\s+\S+_test\.go:[0-9]+:)' ; exit $${PIPESTATUS[0]}

# End to end: builds the default profile, boots an init node and a worker
# under QEMU (TCG) on a virtual segment and checks the cluster they form by
# themselves, then reboots the init node (test/qemu/cluster_test.go).
# Long: the control plane takes many minutes under emulation.
e2e: deps-check
	KILN_E2E=1 $(GO) test -count=1 -timeout 150m -v -run 'TestCluster$$' ./test/qemu/ 2>&1 | tee $(OUT)-e2e.log ; exit $${PIPESTATUS[0]}

# The per-format and boot figures are the minimal profile's (boot path only);
# the default profile's build time and sizes get their own section.
BENCH_PROFILE ?= profiles/minimal.yaml
bench: bin/kiln
	PROFILE=$(BENCH_PROFILE) ARCH=$(ARCH) bash test/bench/run.sh

deps:
	bash .ci/deps

# Installs the build and test tools when one is missing (root, or sudo):
# the C toolchains and static libseccomp runc links, QEMU and the oracles.
deps-check:
	@for t in qemu-system-x86_64 qemu-system-aarch64 qemu-img xorriso mcopy fsck.vfat unsquashfs sgdisk cpio gcc \
	    aarch64-linux-gnu-gcc /usr/lib/x86_64-linux-gnu/libseccomp.a /usr/lib/aarch64-linux-gnu/libseccomp.a; do \
	  { command -v $$t || test -e $$t; } >/dev/null || { echo "installing dependencies ($$t missing)"; \
	    if [ $$(id -u) = 0 ]; then bash .ci/deps; else sudo bash .ci/deps; fi; break; }; done

clean:
	rm -rf bin $(OUT)

FORCE:
