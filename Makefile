# Every target runs over all modules of go.work; see scripts/.
SHELL := /bin/bash
.DEFAULT_GOAL := test

.PHONY: deps test vet fmt run gen gen-check bench

## deps: install clickhouse-server (Debian) and build the pinned tools into .bin/
deps:
	@scripts/deps.sh

## test: gen-check, gofmt, go vet and go test over every module
test: deps gen-check
	@scripts/test.sh

## vet: go vet over every module
vet:
	@set -e; for dir in $$(go list -m -f '{{.Dir}}'); do \
		if [ -n "$$(cd $$dir && go list -e ./... 2>/dev/null)" ]; then \
			echo "go vet: $${dir#$(CURDIR)/}"; (cd $$dir && go vet ./...); \
		fi; \
	done

## fmt: gofmt -w every module
fmt:
	@find $$(go list -m -f '{{.Dir}}') -name '*.go' -not -path '*/testdata/*' -print0 | xargs -0 -r gofmt -l -w

## run: the whole system on this machine, state under ./.mcpgw/
run: deps
	go run ./tools/cmd/devstack

## gen: regenerate code from proto/ with the pinned buf
gen: deps
	@scripts/gen.sh

## gen-check: fail if generated code differs from the tree
gen-check: deps
	@scripts/gen.sh --check

## bench: the benchmark tool
bench: deps
	go run ./tools/cmd/bench
