GO ?= go
BIN := bin/segfs
VERSION ?= $(shell git describe --always --dirty 2>/dev/null)
REVISION ?= $(shell r=$$(git rev-parse HEAD 2>/dev/null) && { git diff --quiet HEAD && echo $$r || echo $$r-dirty; })
# Stamped here because this environment's GOFLAGS carries -buildvcs=false; a plain go build takes them
# from the toolchain's VCS stamp instead (segfs --version says which it got).
LDFLAGS := -X main.version=$(VERSION) -X main.revision=$(REVISION)
# Overridable so a developer can run the race/stress tests for minutes: make test STRESS=2m
STRESS ?= 3s

.PHONY: build test bench bench-limits lint clean

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) .

test: build
	$(GO) vet ./...
	@[ -e /dev/fuse ] || echo "*** /dev/fuse is absent: every test that mounts segfs will SKIP ***"
	SEGFS_STRESS_DURATION=$(STRESS) $(GO) test -race -count=1 -timeout 30m ./...

bench: build
	$(GO) test -run '^$$' -bench . -benchmem ./directio/ ./segments/

# How close segfs gets to the disk's and the kernel's limits, each measured against its baseline, full size (several minutes; needs root and fio).
# Extra flags: make bench-limits LIMITS_FLAGS="--targets 1,4 --json /tmp/limits.json"
bench-limits: build
	$(BIN) bench-limits $(LIMITS_FLAGS)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) run honnef.co/go/tools/cmd/staticcheck@latest ./...

clean:
	rm -rf bin
