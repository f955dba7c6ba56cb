#!/usr/bin/env bash
# Test certificates for the opt-in TLS listeners of the local stack (never for production):
#   tls-certs.sh DIR   make (once) in DIR:
#     ca.crt / ca.key          a private certificate authority
#     server.crt / server.key  a server certificate signed by it, for 127.0.0.1, ::1 and localhost
#     server.p12               the same key and chain as a PKCS#12 keystore for Kafka
#     keystore.password        the keystore's password
#     other-ca.crt             an unrelated CA (to show that a wrong CA is refused)
# Made with openssl only; existing files are kept, so the call is idempotent.
set -euo pipefail
dir="${1:?usage: tls-certs.sh DIR}"
mkdir -p "$dir"
cd "$dir"
command -v openssl >/dev/null 2>&1 || { echo "tls-certs.sh: openssl not found (apt-get install openssl)" >&2; exit 1; }
if [ -s server.p12 ] && [ -s other-ca.crt ]; then
    exit 0
fi
umask 077
days=3650
openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days "$days" -subj "/CN=dispatch-ingest local test CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout ca.key -out ca.crt 2>/dev/null
openssl req -newkey rsa:2048 -nodes -sha256 -subj "/CN=localhost" -keyout server.key -out server.csr 2>/dev/null
cat >server.ext <<EXT
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost
EXT
openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days "$days" -sha256 \
    -extfile server.ext -out server.crt 2>/dev/null
openssl rand -hex 16 >keystore.password
openssl pkcs12 -export -in server.crt -inkey server.key -certfile ca.crt -name server \
    -passout "file:keystore.password" -out server.p12
openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days "$days" -subj "/CN=some other CA" \
    -keyout other-ca.key -out other-ca.crt 2>/dev/null
rm -f server.csr server.ext ca.srl
# The servers run as this user; the certificates are public, the keys stay private.
chmod 644 ca.crt server.crt other-ca.crt
echo "tls-certs.sh: test certificates in $dir" >&2
