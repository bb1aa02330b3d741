#!/bin/sh
# Upgrade the compose deployment without downtime: build the new image, apply the migrations
# once, then recreate the instances one at a time, each waited for until /healthz says it
# serves, so that the other one takes every update meanwhile.
#   deploy/rolling-upgrade.sh            (from the checkout holding compose.yaml and .env)
# The old instance still running during the upgrade meets the new schema: a release whose
# migration an older version cannot run on says so, and is upgraded with a full stop instead
# (README: Deployment).
set -eu

docker compose build
docker compose run --rm --no-deps migrate
for instance in bot1 bot2; do
    # SIGTERM: it refuses new updates (503), finishes what it accepted, hands its claims back.
    docker compose up -d --no-deps --wait --wait-timeout 120 "$instance"
done
docker compose ps
