#!/usr/bin/env bash
# Makes a CA and one certificate per service for mutual TLS between the
# services (STEVEDORE_GRPC_TLS_*) and for the API's TCP listener
# (STEVEDORE_TLS_*), and for the shared Redis (redis.pem). Usage: infra/gen-certs.sh DIR [EXTRA_DNS_NAME...]
set -euo pipefail
dir=${1:?usage: gen-certs.sh DIR [NAMES...]}
shift
mkdir -p "$dir"
cd "$dir"
[ -f ca.pem ] || openssl req -x509 -newkey rsa:3072 -nodes -days 825 -subj "/CN=stevedore-ca" -keyout ca-key.pem -out ca.pem
for name in api-edge events image-store container-runtime build-worker client redis "$@"; do
  [ -f "$name.pem" ] && continue
  openssl req -newkey rsa:3072 -nodes -subj "/CN=$name" -keyout "$name-key.pem" -out "$name.csr"
  printf 'subjectAltName=DNS:%s,DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n' "$name" > "$name.ext"
  openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 825 -extfile "$name.ext" -out "$name.pem"
  rm -f "$name.csr" "$name.ext"
done
chmod 600 ./*-key.pem
# The redis image runs its server as uid 999.
chown 999 redis-key.pem 2>/dev/null || echo "gen-certs: give redis-key.pem to uid 999 (the redis image's user)" >&2
