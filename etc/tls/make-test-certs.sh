#!/usr/bin/env sh
# A test CA and certificates for etc/tls.toml, made with openssl in DIR (default etc/tls/certs/):
#   ca.pem                 the CA (give it to clients and to the router's [tls.client] ca_list)
#   server.pem server.key  the router's certificate for 127.0.0.1 and localhost
#   other.pem other.key    a second certificate, chosen by SNI name "other.localhost"
#   client.pem client.key  a client certificate signed by the CA (mutual TLS)
# Test use only: the keys are not protected. Run from anywhere; existing files are replaced.
# Usage: make-test-certs.sh [DIR]
set -eu
dir="${1:-$(cd "$(dirname "$0")" && pwd)/certs}"
mkdir -p "$dir"
cd "$dir"
days=825
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days "$days" \
  -subj "/CN=kamrouter test CA" -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
issue() {  # name, subject CN, subjectAltName, extendedKeyUsage
  openssl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "/CN=$2" 2>/dev/null
  printf 'subjectAltName=%s\nextendedKeyUsage=%s\nbasicConstraints=CA:FALSE\n' "$3" "$4" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -out "$1.pem" \
    -days "$days" -extfile "$1.ext" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}
issue server localhost "DNS:localhost,IP:127.0.0.1" serverAuth,clientAuth
issue other other.localhost "DNS:other.localhost" serverAuth
issue client "sip client" "DNS:client.localhost" clientAuth
rm -f ca.srl
chmod 600 ./*.key
echo "certificates in $dir"
