#!/usr/bin/env bash
# Usage: scripts/make-dev-cert.sh [DIR [NAME...]]
#
# Makes a local certificate authority and a server certificate it signs, for
# trying TLS (default DIR: ./dev-cert). The certificate is valid for
# localhost, 127.0.0.1 and ::1, and for every extra NAME (a host name or an
# IP address). Writes:
#   DIR/ca.pem          the CA certificate: give it to clients (--ca DIR/ca.pem)
#   DIR/ca.key          the CA's private key (keep it, or delete it once done)
#   DIR/server.pem      the server certificate (--tls-cert)
#   DIR/server.key      its private key (--tls-key)
# An existing CA in DIR is reused, so new server certificates stay trusted.
#
#   scripts/make-dev-cert.sh dev-cert
#   tessenger-server 127.0.0.1 5000 3 --tls-cert dev-cert/server.pem --tls-key dev-cert/server.key
#   tessenger-client 127.0.0.1 5000 0 --tls --ca dev-cert/ca.pem
set -euo pipefail

dir="${1:-dev-cert}"
[ $# -gt 0 ] && shift
command -v openssl >/dev/null || { echo "make-dev-cert.sh: openssl is not installed" >&2; exit 1; }
mkdir -p "$dir"
umask 077

names="DNS:localhost,IP:127.0.0.1,IP:::1"
for name in "$@"; do
  if [[ "$name" =~ ^[0-9.]+$ || "$name" == *:* ]]; then
    names+=",IP:$name"
  else
    names+=",DNS:$name"
  fi
done

if [ ! -f "$dir/ca.pem" ] || [ ! -f "$dir/ca.key" ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 825 \
    -subj "/CN=TESSENGER development CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
fi

openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -subj "/CN=TESSENGER development server" \
  -keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null
extensions="$(mktemp)"
trap 'rm -f "$extensions" "$dir/server.csr"' EXIT
cat >"$extensions" <<EOF
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=$names
EOF
openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
  -CAcreateserial -days 825 -extfile "$extensions" -out "$dir/server.pem" 2>/dev/null
chmod 644 "$dir/ca.pem" "$dir/server.pem"

echo "make-dev-cert.sh: $dir/server.pem for ${names//,/, } signed by $dir/ca.pem"
