# brewml: PGXS build of the extension, plus the two commands a user needs
# (make run, make test) and make stop / make bench.

PG_CONFIG ?= /usr/lib/postgresql/15/bin/pg_config

MODULE_big = brewml
OBJS = extension/brewml.o extension/moments.o extension/moments_by.o extension/sensor.o extension/sensor_cache.o extension/scores.o extension/readings.o extension/fetch.o extension/worker.o extension/forest.o extension/forest_predict.o extension/forest_train.o extension/model.o extension/predict.o
MODULEDIR = extension
DATA = extension/brewml.control extension/brewml--0.1.sql extension/brewml--0.1--0.2.sql extension/brewml--0.2--0.3.sql \
       extension/brewml--0.3--0.4.sql extension/brewml--0.4--0.5.sql
SHLIB_LINK = -lcurl
PG_CFLAGS = -Wall -Wextra -Werror
# PostgreSQL's own headers are not -Wextra clean (unused parameters in inline
# functions): mark them as system headers so -Wextra judges only our code.
PG_CPPFLAGS = -isystem $(shell $(PG_CONFIG) --includedir-server 2>/dev/null)
EXTRA_CLEAN = test/gen-collects test/gen-scores client/brewml-push

TOOLS = test/gen-collects test/gen-scores client/brewml-push

.DEFAULT_GOAL := all

# PGXS exists only once postgresql-server-dev-15 is installed: until then the
# targets below still work, because they install it first.
PGXS := $(wildcard $(shell $(PG_CONFIG) --pgxs 2>/dev/null))
ifneq ($(PGXS),)
include $(PGXS)
all: $(TOOLS)
else
all install:
	@echo "PostgreSQL 15 server headers are missing: run 'make run' or 'scripts/setup.sh' first" >&2
	@exit 1
endif

# PGXS does not track headers: every object depends on all of ours.
$(OBJS): $(wildcard extension/*.h)

test/gen-collects: test/gen_collects.c
	$(CC) -O2 -Wall -Wextra -Werror -std=c11 -o $@ $< -lm

test/gen-scores: test/gen_scores.c
	$(CC) -O2 -Wall -Wextra -Werror -std=c11 -o $@ $<

client/brewml-push: client/brewml_push.c
	$(CC) -O2 -Wall -Wextra -Werror -std=gnu11 -o $@ $< -lcurl

.PHONY: build run stop test bench notebook docker

# Install what is missing, then build and install the extension and the tools: the first
# half of make run, and the whole of the Docker image's build (docker/Dockerfile).
build:
	scripts/setup.sh run
	$(MAKE) all
	$(MAKE) install

# Install what is missing, build, install the extension, start the local stack.
run: build
	scripts/punkapi.sh start
	scripts/cluster.sh start
	scripts/http.sh start
	@scripts/http.sh examples

# Stop what make run started.
stop:
	scripts/http.sh stop
	scripts/cluster.sh stop
	scripts/punkapi.sh stop

# Every test, on temporary instances: never the cluster of make run.
test:
	scripts/setup.sh test
	$(MAKE) all
	$(MAKE) install
	test/run.sh

# The same stack in Docker: build the image, start database, Punk API, PostgREST and nginx.
docker:
	docker/run.sh up

# Run the notebook against the stack of make run, keeping its outputs in notebooks/.
notebook:
	scripts/setup.sh notebook
	eval "$$(scripts/cluster.sh env)" && export BREWML_URL=http://127.0.0.1:$${BREWML_HTTP_PORT:-8080} && \
	  cd notebooks && /usr/bin/python3 -m nbconvert --to notebook --execute --inplace \
	    --ExecutePreprocessor.timeout=600 ibu_classifier.ipynb

# Benchmarks against their anchors, measured in the same run.
bench:
	scripts/setup.sh bench
	$(MAKE) all
	$(MAKE) install
	bench/run.sh
