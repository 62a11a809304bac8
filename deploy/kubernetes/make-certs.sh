#!/usr/bin/env bash
# The gate's TLS material, with openssl only: a CA, the serving certificate of the Service
# signet-gate.signet-gate.svc signed by it, the Secret signet-gate-tls that the Deployment mounts,
# and copies of the webhook configurations (deploy/kubernetes/webhooks/) with the CA as their
# caBundle. Without --apply it only writes files (no cluster needed); with --apply it applies
# them with kubectl, in an order that keeps the webhooks answerable. See docs/gate.md.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: make-certs.sh [--out DIR] [--days N] [--new-ca] [--apply] [--validate-only]

  --out DIR         where to write (default ./signet-gate-tls); made if missing, mode 700
  --days N          lifetime of the serving certificate in days (default 365)
  --new-ca          make a new CA even if DIR holds one (the old one is kept as
                    ca-previous.crt and stays in the caBundle, for a rotation without refusals)
  --apply           apply the Secret and the webhook configurations with kubectl ($KUBECTL,
                    default kubectl), restarting the gate so that it serves the new certificate
  --validate-only   with --apply: apply the validating webhook only (no mutation)

Writes DIR/ca.key, ca.crt, tls.key, tls.crt, tls-secret.yaml, validating-webhook.yaml,
mutating-webhook.yaml, and prints the caBundle (base64 of the CA certificates, PEM). A CA found in
DIR is reused, so re-running renews the serving certificate without changing the caBundle.
EOF
}

NAMESPACE=signet-gate
SERVICE=signet-gate
SECRET=signet-gate-tls
DEPLOYMENT=signet-gate
WEBHOOK_CONFIG=signet-gate
# What the templates hold in caBundle: base64 of "signet-gate: run make-certs.sh".
PLACEHOLDER='c2lnbmV0LWdhdGU6IHJ1biBtYWtlLWNlcnRzLnNoCg=='
CA_DAYS=3650

out=./signet-gate-tls
days=365
new_ca=false
apply=false
validate_only=false
while [ $# -gt 0 ]; do
  case "$1" in
    --out) [ $# -ge 2 ] || { echo "make-certs.sh: --out needs a directory" >&2; exit 2; }; out=$2; shift 2 ;;
    --days) [ $# -ge 2 ] || { echo "make-certs.sh: --days needs a number" >&2; exit 2; }; days=$2; shift 2 ;;
    --new-ca) new_ca=true; shift ;;
    --apply) apply=true; shift ;;
    --validate-only) validate_only=true; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "make-certs.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
done
case "$days" in ''|*[!0-9]*) echo "make-certs.sh: --days must be a whole number of days, got $days" >&2; exit 2 ;; esac
[ "$days" -ge 1 ] && [ "$days" -le "$CA_DAYS" ] || { echo "make-certs.sh: --days must be from 1 to $CA_DAYS" >&2; exit 2; }
if [ "$validate_only" = true ] && [ "$apply" = false ]; then echo "make-certs.sh: --validate-only goes with --apply" >&2; exit 2; fi
command -v openssl >/dev/null || { echo "make-certs.sh: openssl is needed" >&2; exit 1; }

here=$(cd "$(dirname "$0")" && pwd)
templates="$here/webhooks"
for t in validating-webhook.yaml mutating-webhook.yaml; do
  grep -q "caBundle: $PLACEHOLDER" "$templates/$t" || { echo "make-certs.sh: $templates/$t has no caBundle placeholder" >&2; exit 1; }
done

umask 077
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

dns="DNS:$SERVICE, DNS:$SERVICE.$NAMESPACE, DNS:$SERVICE.$NAMESPACE.svc, DNS:$SERVICE.$NAMESPACE.svc.cluster.local"

# The CA: reused when present, unless --new-ca.
if [ "$new_ca" = true ] && [ -f "$out/ca.crt" ]; then
  mv "$out/ca.crt" "$out/ca-previous.crt"
  rm -f "$out/ca.key"
fi
if [ ! -f "$out/ca.key" ] || [ ! -f "$out/ca.crt" ]; then
  cat >"$work/ca.cnf" <<EOF
[req]
distinguished_name = dn
prompt = no
x509_extensions = ca
[dn]
CN = signet-gate webhook CA
[ca]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
EOF
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$out/ca.key" 2>/dev/null
  openssl req -x509 -new -config "$work/ca.cnf" -key "$out/ca.key" -sha256 -days "$CA_DAYS" -out "$out/ca.crt"
  echo "wrote $out/ca.key, $out/ca.crt (new CA, $CA_DAYS days)"
else
  echo "kept the CA in $out/ca.crt"
fi

# The serving certificate, for the Service's DNS names (the API server checks the SANs).
cat >"$work/tls.cnf" <<EOF
[req]
distinguished_name = dn
prompt = no
[dn]
CN = $SERVICE.$NAMESPACE.svc
[serving]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = $dns
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$out/tls.key" 2>/dev/null
openssl req -new -config "$work/tls.cnf" -key "$out/tls.key" -out "$work/tls.csr"
openssl x509 -req -in "$work/tls.csr" -CA "$out/ca.crt" -CAkey "$out/ca.key" -set_serial "0x$(openssl rand -hex 16)" \
  -days "$days" -sha256 -extfile "$work/tls.cnf" -extensions serving -out "$out/tls.crt" 2>/dev/null
openssl verify -CAfile "$out/ca.crt" "$out/tls.crt" >/dev/null
echo "wrote $out/tls.key, $out/tls.crt ($SERVICE.$NAMESPACE.svc, $days days)"

b64() { openssl base64 -A <"$1"; }

cat >"$out/tls-secret.yaml" <<EOF
# The gate's serving certificate and key, written by make-certs.sh.
apiVersion: v1
kind: Secret
metadata:
  name: $SECRET
  namespace: $NAMESPACE
  labels:
    app.kubernetes.io/name: signet-gate
    app.kubernetes.io/part-of: signet
type: kubernetes.io/tls
data:
  tls.crt: $(b64 "$out/tls.crt")
  tls.key: $(b64 "$out/tls.key")
EOF
echo "wrote $out/tls-secret.yaml"

# The caBundle: the CA, and the previous one while a rotation is under way.
cat "$out/ca.crt" >"$work/bundle.pem"
[ -f "$out/ca-previous.crt" ] && cat "$out/ca-previous.crt" >>"$work/bundle.pem"
bundle=$(b64 "$work/bundle.pem")
for t in validating-webhook.yaml mutating-webhook.yaml; do
  sed "s|caBundle: $PLACEHOLDER|caBundle: $bundle|" "$templates/$t" >"$out/$t"
  echo "wrote $out/$t"
done
chmod 644 "$out/ca.crt" "$out/tls.crt" "$out/validating-webhook.yaml" "$out/mutating-webhook.yaml"
[ -f "$out/ca-previous.crt" ] && chmod 644 "$out/ca-previous.crt"
echo "caBundle: $bundle"

[ "$apply" = true ] || exit 0

kubectl=${KUBECTL:-kubectl}
webhooks=("$out/validating-webhook.yaml")
[ "$validate_only" = true ] || webhooks+=("$out/mutating-webhook.yaml")
apply_webhooks() {
  for f in "${webhooks[@]}"; do "$kubectl" apply -f "$f"; done
}
if ! "$kubectl" -n "$NAMESPACE" get deployment "$DEPLOYMENT" >/dev/null 2>&1; then
  echo "make-certs.sh: no deployment $NAMESPACE/$DEPLOYMENT: apply deploy/kubernetes/ first (kubectl apply -f deploy/kubernetes/); nothing applied" >&2
  exit 1
fi
# Webhooks already registered (a renewal): give them the new caBundle first, which trusts the
# certificate the gate serves now and the one it will serve. A first install registers them last,
# once the gate answers, so that no request meets a webhook with no gate behind it.
renewal=false
"$kubectl" get validatingwebhookconfiguration "$WEBHOOK_CONFIG" >/dev/null 2>&1 && renewal=true
"$kubectl" get mutatingwebhookconfiguration "$WEBHOOK_CONFIG" >/dev/null 2>&1 && renewal=true
[ "$renewal" = true ] && apply_webhooks
"$kubectl" apply -f "$out/tls-secret.yaml"
# The gate reads its certificate when it starts.
"$kubectl" -n "$NAMESPACE" rollout restart deployment "$DEPLOYMENT"
"$kubectl" -n "$NAMESPACE" rollout status deployment "$DEPLOYMENT" --timeout=300s
[ "$renewal" = true ] || apply_webhooks
echo "applied: $SECRET, ${webhooks[*]##*/}"
