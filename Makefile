# Two commands do everything on a fresh machine:
#   make run   - set up .venv, migrate, create a demo tenant and token, serve the API and the registry on
#                http://127.0.0.1:8000 (SQLite, blobs under var/blobs; gunicorn, which streams chunked uploads),
#                with django-q2's cluster beside it for the scheduled garbage collection
#   make test  - set up .venv with the test tools and run the test suite
#   make conformance - the OCI distribution-spec conformance suite against a fresh server (see README);
#                      make conformance-s3 the same with the blobs on SeaweedFS
# Set DATABASE_URL to use PostgreSQL instead of the SQLite file under var/.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run serve test lint migrate bench bench-registry bench-upload-memory conformance conformance-s3 clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.base-installed: requirements/base.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements/base.txt
	touch $@

$(VENV)/.test-installed: requirements/base.txt requirements/test.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements/test.txt
	touch $@ $(VENV)/.base-installed

migrate: $(VENV)/.base-installed
	$(BIN)/python manage.py migrate --noinput

run: migrate
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	@OUT=$$($(BIN)/python manage.py swr_token --tenant demo --user demo --namespace group) || exit 1; \
	TOKEN=$$(printf '%s\n' "$$OUT" | tail -n 1); \
	PROJECT_ID=$$(printf '%s\n' "$$OUT" | sed -n 's/.*(project id \([0-9a-f]*\)).*/\1/p' | tail -n 1); \
	echo ""; \
	echo "Demo tenant 'demo' (project id $$PROJECT_ID), user 'demo', organization 'group'. Token (valid 24 hours):"; \
	echo "  export TOKEN=$$TOKEN PROJECT_ID=$$PROJECT_ID"; \
	echo "Create an image repository:"; \
	echo "  curl -X POST http://$(HOST):$(PORT)/v2/manage/namespaces/group/repos \\"; \
	echo "    -H \"X-Auth-Token: \$$TOKEN\" -H \"Content-Type: application/json\" \\"; \
	echo "    -d '{\"repository\":\"busybox\",\"category\":\"linux\",\"description\":\"this is a busybox repository\",\"is_public\":true}'"; \
	echo "AK/SK for the SDK (with PROJECT_ID above; last line 'AK SK'):"; \
	echo "  $(BIN)/python manage.py swr_accesskey --tenant demo --user demo"; \
	echo "A password for POST /v3/auth/tokens (user demo, domain demo; asked twice, not echoed):"; \
	echo "  $(BIN)/python manage.py swr_token --tenant demo --user demo --password"; \
	echo "Admin site: http://$(HOST):$(PORT)/admin/ (make an account with: $(BIN)/python manage.py createsuperuser)"; \
	echo "The registry is $(HOST):$(PORT) (plain HTTP; docker and podman accept 127.0.0.1 without TLS). Log in with the"; \
	echo "user name and the token as password, then push and pull (a push creates the repository):"; \
	echo "  echo \$$TOKEN | docker login $(HOST):$(PORT) -u demo --password-stdin"; \
	echo "  docker tag busybox $(HOST):$(PORT)/group/busybox:1.0 && docker push $(HOST):$(PORT)/group/busybox:1.0"; \
	echo "  skopeo copy --dest-creds demo:\$$TOKEN --dest-tls-verify=false \\"; \
	echo "    docker://docker.io/library/busybox:latest docker://$(HOST):$(PORT)/group/busybox:1.0"; \
	echo ""
	@# The scheduled garbage collection (README: swr_gc): django-q2's cluster beside gunicorn, stopped with it.
	@# In a session of its own (setsid), so that only the trap signals it, once: Ctrl-C or a TERM to the whole
	@# group (docker stop, kill -TERM -<group>) reached its worker processes too and hung its stop. A KILL to the
	@# group, which no trap sees, does not reach it then: stop make run with Ctrl-C or TERM.
	@DJANGO_LOG_FORMAT=plain setsid $(BIN)/python manage.py qcluster & QCLUSTER=$$!; \
	trap 'kill $$QCLUSTER 2>/dev/null; wait $$QCLUSTER 2>/dev/null' EXIT INT TERM; \
	DJANGO_LOG_FORMAT=plain GUNICORN_BIND=$(HOST):$(PORT) GUNICORN_WORKERS=$${GUNICORN_WORKERS:-2} \
		$(BIN)/gunicorn -c gunicorn.conf.py registry.wsgi:application

# The production setup: DEBUG off, static files by whitenoise, gunicorn with gevent workers sized to the machine
# (gunicorn.conf.py: slow clients hold a greenlet each, not a worker; database connections from a pool per worker).
# Behind a TLS proxy, also set DJANGO_SECURE_SSL=true, DJANGO_SECRET_KEY and DJANGO_ALLOWED_HOSTS.
serve: migrate
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	DJANGO_DEBUG=false $(BIN)/gunicorn -c gunicorn.conf.py registry.wsgi:application

# skopeo (Debian's package) copies images in and out of the registry in tests/test_registry_clients.py; nginx
# (nginx-light) runs docker/nginx.conf in tests/test_several_nodes.py.
test: $(VENV)/.test-installed
	@command -v skopeo >/dev/null || (echo "Installing skopeo (a registry client the tests drive) with apt-get" && \
		apt-get install -y -qq skopeo >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq skopeo))
	@command -v nginx >/dev/null || test -x /usr/sbin/nginx || (echo "Installing nginx-light (docker/nginx.conf runs in front of two nodes in tests/test_several_nodes.py) with apt-get" && \
		apt-get install -y -qq nginx-light >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq nginx-light))
	$(BIN)/pytest

# The OCI distribution-spec conformance suite (conformance/run.py) against gunicorn on a spare port, with a fresh
# database (SQLite, or a throwaway PostgreSQL database on the server of DATABASE_URL), for OCI_VERSION 1.1 and dev.
# The suite: the program OCI_CONFORMANCE names, default ../shared/tools/oci-conformance; results under var/conformance/.
conformance: $(VENV)/.base-installed
	$(BIN)/python conformance/run.py

# The same with the blobs on SeaweedFS (weed mini from requirements/test.txt, started by conformance/run.py), pulls
# redirected to signed URLs of the object store (OCI_VERSION dev: served through the registry, see run.py).
conformance-s3: $(VENV)/.test-installed
	$(BIN)/python conformance/run.py --storage s3

# Benchmark on PostgreSQL (BENCH_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/swr_bench, which it
# drops and re-creates) through gunicorn with wrk; writes bench/results/<date>.json and docs/performance.md.
bench: $(VENV)/.test-installed
	@command -v wrk >/dev/null || (echo "Installing wrk (the load generator) with apt-get" && \
		apt-get install -y -qq wrk >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq wrk))
	$(BIN)/python bench/run.py
	$(MAKE) bench-registry

# The registry against CNCF distribution 2.8 (Debian's docker-registry, started here) in one run: skopeo pushes and
# pulls of 1 x 200 MB and 200 x 100 KB, on the folder and on SeaweedFS (S3, signed-URL pulls), best of 3; and a
# worker's peak memory during a 1 GiB push. PostgreSQL beside BENCH_DATABASE_URL's database (throwaway ones).
# Writes bench/results/<date>-registry.json and its section of docs/performance.md.
bench-registry: $(VENV)/.test-installed
	@command -v skopeo >/dev/null || (echo "Installing skopeo (the registry client the bench drives) with apt-get" && \
		apt-get install -y -qq skopeo >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq skopeo))
	@command -v docker-registry >/dev/null || (echo "Installing docker-registry (CNCF distribution) with apt-get" && \
		apt-get install -y -qq docker-registry >/dev/null 2>&1 || \
		(apt-get update -qq && apt-get install -y -qq docker-registry))
	$(BIN)/python bench/pushpull.py

# A gunicorn worker's peak memory (VmHWM) while a 1 GiB blob is pushed, streamed and monolithic (must stay under
# 100 MB); on SQLite, or on a throwaway PostgreSQL database beside DATABASE_URL's.
bench-upload-memory: $(VENV)/.base-installed
	$(BIN)/python bench/upload_memory.py

lint: $(VENV)/.test-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python manage.py makemigrations --check --dry-run

clean:
	rm -rf $(VENV) var
