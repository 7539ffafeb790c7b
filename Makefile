# vrid: `make` builds bin/vrid and lib/libvrid.so; `make test` runs every
# test; `make bench` prints native-against-vrid figures.

GO      ?= go
export PATH := $(PATH):/usr/local/go/bin
CC      ?= gcc
PREFIX  ?= /usr/local

PRELOAD_DIR := vresource/preload
PRELOAD_SRC := $(wildcard $(PRELOAD_DIR)/*.c)
PRELOAD_HDR := $(wildcard $(PRELOAD_DIR)/*.h)
PRELOAD_MAP := $(PRELOAD_DIR)/libvrid.map

# The library lives inside every application process: strict, small, and
# exporting only what it interposes.  Its build id names it in snapshot
# images: vrid restore refuses an image made under another build.
CFLAGS_PRELOAD := -std=gnu11 -D_GNU_SOURCE -O2 -g -fPIC -fvisibility=hidden -fno-semantic-interposition \
	-Wall -Wextra -Werror -Wshadow -Wmissing-prototypes -Wstrict-prototypes \
	-fno-stack-protector -D_FORTIFY_SOURCE=0
LDFLAGS_PRELOAD := -shared -Wl,--build-id=sha1 -Wl,--version-script=$(PRELOAD_MAP) -Wl,-z,now -Wl,-z,relro -ldl -lpthread

GO_BINS := bin/vrid bin/containerd-shim-vrid-v1 bin/vrid-hook
# urfave/cli without its man-page generator, whose markdown package costs
# every start of vrid and vrid-hook 0.7 ms of init.
GO_TAGS := urfave_cli_no_docs
# Package vresource builds the preload library's table engine through cgo.
export CGO_ENABLED := 1
# Package vresource #includes the engine's sources from $(PRELOAD_DIR),
# which Go's build cache does not watch: their hash in CGO_CFLAGS does
# (vresource's TestEngineIsCurrent checks it).
ENGINE_SOURCES := 0x$(shell cat $(sort $(PRELOAD_SRC) $(PRELOAD_HDR)) | sha256sum | cut -c1-15)
export CGO_CFLAGS := -O2 -g -DVRID_ENGINE_SOURCES=$(ENGINE_SOURCES)
GO_SRC  := $(shell find . -name '*.go' -not -path './_output/*' 2>/dev/null) go.mod go.sum \
	$(wildcard vresource/*.c vresource/*.h) $(PRELOAD_SRC) $(PRELOAD_HDR)

.PHONY: all test test-unit test-integration test-containerd-suite test-cri-suite bench clean install demo

all: lib/libvrid.so $(GO_BINS)

lib/libvrid.so: $(PRELOAD_SRC) $(PRELOAD_HDR) $(PRELOAD_MAP)
	@mkdir -p lib
	$(CC) $(CFLAGS_PRELOAD) -o $@.tmp $(PRELOAD_SRC) $(LDFLAGS_PRELOAD)
	mv $@.tmp $@

bin/%: $(GO_SRC)
	@mkdir -p bin
	@if [ -d cmd/$* ]; then $(GO) build -tags $(GO_TAGS) -o $@ ./cmd/$*; fi

# Both set up what they need themselves (scripts/install-stack.sh).
test:
	scripts/test.sh

demo:
	scripts/demo.sh

# The peers' own suites against vrid, offline, with totals side by side:
# containerd's integration/client (runc.v2 against vrid.v1, about 20
# minutes each) and critest (handler runc, then vrid with ids = "system"
# and "sequential"). Not part of `make test`.
test-containerd-suite:
	scripts/test-containerd-suite.sh

test-cri-suite:
	scripts/test-cri-suite.sh

# ns per call native against vrid, container start runc against vrid,
# snapshot and restore vrid against plain CRIU, application throughput
# native against vrid, and the Go table operations.
bench: all
	bench/calls.sh
	bench/start.sh
	bench/run.sh
	bench/snapshot.sh
	bench/checkpoint.sh
	bench/apps.sh
	$(GO) test -run '^$$' -bench . ./vresource/

install: all
	install -D -m 0755 bin/vrid $(PREFIX)/bin/vrid
	install -D -m 0755 bin/vrid-hook $(PREFIX)/bin/vrid-hook
	install -D -m 0755 bin/containerd-shim-vrid-v1 $(PREFIX)/bin/containerd-shim-vrid-v1
	install -D -m 0644 lib/libvrid.so $(PREFIX)/lib/vrid/libvrid.so

clean:
	rm -rf bin lib _output
