# rehearse: upgrade dress rehearsals on sandboxed copies of production.
#   make rehearse   build images, run the bundled rehearsal
#   make test       run every test (needs a Docker engine)
#   make bench      benchmarks, printed as ratios against baselines

GO      ?= go
WORLD   ?= fixtures/billing/compose.yaml
BIN     := bin/rehearse

.PHONY: all build images packages rehearse test bench vet clean gc up

all: build

build:
	$(GO) build -o $(BIN) ./cmd/rehearse

# Build every image of the bundled world and the harness's own once, before
# tests share them (concurrently; progress on stderr, timings at the end).
images: build
	$(BIN) images -f $(WORLD)

# The billing 3.0 upgrade packages, signed under a freshly generated,
# rotated vendor PKI (out/pki; no key is ever committed).
packages:
	$(GO) run ./fixtures/billing/packages/build -out out

# The bundled rehearsals: every feature under features/; under out/ the
# HTML report (report.html), JUnit (rehearse.xml), a Markdown summary and
# one record per scenario (timelines/).
rehearse: images packages
	@mkdir -p out
	$(BIN) run features --out out

test: images packages vet
	$(GO) test -count=1 -timeout 20m ./...

vet:
	$(GO) vet ./...

bench: images packages
	$(GO) test -p 1 -run '^$$' -bench . -skip '^(BenchmarkColdBuild|BenchmarkFeatures)$$' -benchtime 3x -timeout 30m ./...
	# Cold image builds, one at a time and then concurrently, under private
	# tags: minutes per iteration, so one.
	$(GO) test -run '^$$' -bench '^BenchmarkColdBuild$$' -benchtime 1x -timeout 40m ./harness/image/
	# The bundled features at concurrency 1 and at the default: about ten
	# minutes per iteration, so one.
	$(GO) test -run '^$$' -bench '^BenchmarkFeatures$$' -benchtime 1x -timeout 40m ./features/

# Bring the bundled world up and leave it running (rehearse down to remove).
up: images
	$(BIN) up -f $(WORLD)

gc: build
	$(BIN) gc

clean:
	rm -rf bin out
