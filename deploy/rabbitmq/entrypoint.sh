#!/bin/sh
# The broker's users, one per Gather service, with passwords from the environment: definitions.json is
# the template (@RABBITMQ_<NAME>_PASSWORD@), this fills it in where RabbitMQ loads it at boot, readable
# by the rabbitmq user only, then starts the image's own entrypoint.
set -eu
umask 077
definitions=/etc/rabbitmq/gather-definitions.json
cp /gather/rabbitmq/definitions.json "$definitions"
for name in ADMIN EVENTS SIGNUP NOTIFICATIONS PAGES; do
  variable="RABBITMQ_${name}_PASSWORD"
  password=$(printenv "$variable" || true)
  # The password is also part of a service's GATHER_BROKER_URL: only characters a URL keeps as they are.
  case $password in
    ''|*[!A-Za-z0-9_-]*)
      echo "$variable must be set, with letters, digits, - and _ only (python3 deploy/new-env.py makes one)" >&2
      exit 1 ;;
  esac
  sed -i "s/@${variable}@/${password}/" "$definitions"
done
chown rabbitmq:rabbitmq "$definitions"
exec docker-entrypoint.sh rabbitmq-server
