#!/bin/sh
# Entrypoint of the registry image.
#   no arguments: apply migrations (unless SWR_MIGRATE_ON_START is false), then
#                 serve with gunicorn on port 8000 (gunicorn.conf.py)
#   arguments:    apply migrations likewise, then run the arguments instead of
#                 gunicorn, e.g. python manage.py swr_token --tenant demo --user demo
set -eu

migrate_on_start=$(printf '%s' "${SWR_MIGRATE_ON_START:-true}" | tr '[:upper:]' '[:lower:]' | tr -d '[:space:]')
case "$migrate_on_start" in
    1 | true | yes | on | "")
        python manage.py migrate --noinput
        ;;
    0 | false | no | off) ;;
    *)
        echo "SWR_MIGRATE_ON_START must be a boolean (true/false), got '${SWR_MIGRATE_ON_START}'" >&2
        exit 2
        ;;
esac

if [ "$#" -gt 0 ]; then
    exec "$@"
fi

# gevent workers sized to the machine by gunicorn.conf.py (GUNICORN_WORKERS and friends override it):
# registry.gunicorn_workers.GeventWorker, gunicorn's own whose answers to malformed requests are the SWR error body.
exec gunicorn -c gunicorn.conf.py registry.wsgi:application
