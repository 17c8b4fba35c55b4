# rehearse: upgrade dress rehearsals on sandboxed copies of production.
#   make rehearse   build images, run the bundled rehearsal
#   make test       run every test (needs a Docker engine)
#   make bench      benchmarks, printed as ratios against baselines

GO      ?= go
WORLD   ?= fixtures/billing/compose.yaml
BIN     := bin/rehearse
RUN_ID  ?= make-rehearse-$(shell date +%s)

# No Ryuk (its image cannot be pulled; rehearse owns cleanup), and reach
# published ports through 127.0.0.1 only.
export TESTCONTAINERS_RYUK_DISABLED = true
export TESTCONTAINERS_HOST_OVERRIDE = 127.0.0.1

.PHONY: all build images rehearse test bench vet clean gc

all: build

build:
	$(GO) build -o $(BIN) ./cmd/rehearse

# Build every image of the bundled world once, before tests share them.
images: build
	$(BIN) images -f $(WORLD)

# For now the rehearsal is: the bundled world comes up healthy and goes away
# without leaving anything behind.
rehearse: images
	@mkdir -p out
	@set -e; trap '$(BIN) down --run-id $(RUN_ID) >/dev/null 2>&1 || true' EXIT; \
	$(BIN) up -f $(WORLD) --run-id $(RUN_ID) --format json > out/up.json; \
	cat out/up.json; \
	$(BIN) down --run-id $(RUN_ID); \
	left=$$(docker ps -aq --filter label=rehearse.run=$(RUN_ID) | wc -l); \
	test "$$left" -eq 0 || { echo "containers left behind: $$left"; exit 1; }; \
	echo "rehearsal passed: $(WORLD) came up healthy and was removed"

test: images vet
	$(GO) test -count=1 -timeout 20m ./...

vet:
	$(GO) vet ./...

bench: images
	$(GO) test -run '^$$' -bench . -benchtime 3x -timeout 20m ./...

gc: build
	$(BIN) gc

clean:
	rm -rf bin out
